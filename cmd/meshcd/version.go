package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/meshcd/meshcd/internal/version"
)

func newVersionCommand(stdout io.Writer) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show meshcd's version and commit, its Go, the Kubernetes and Istio versions it is tested against, and its proxy bundles",
		Example: "  meshcd version\n" +
			"  meshcd version -o json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printVersion(stdout, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func printVersion(w io.Writer, output string) error {
	info := version.Get()
	switch output {
	case "text":
		_, err := io.WriteString(w, info.String())
		return err
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	return fmt.Errorf("unknown output format %q: use text or json", output)
}
