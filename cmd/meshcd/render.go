package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/meshcd/meshcd/renderer"
)

func newRenderCommand(stdout io.Writer) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "render DIR",
		Short: "Render a spec directory into the Kubernetes objects meshcd would apply",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := renderer.Render(args[0], renderer.DefaultOptions())
			if err != nil {
				return err
			}
			return printObjects(stdout, b, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "output format: yaml or json")
	return cmd
}

// printObjects writes the rendered objects as a YAML stream or a JSON list.
func printObjects(w io.Writer, b *renderer.Bundle, output string) error {
	switch output {
	case "yaml":
		for _, obj := range b.Objects {
			out, err := yaml.Marshal(obj.Object)
			if err != nil {
				return fmt.Errorf("%s %s encode failed: %w", obj.GetKind(), obj.GetName(), err)
			}
			if _, err := fmt.Fprintf(w, "---\n%s", out); err != nil {
				return err
			}
		}
		return nil
	case "json":
		items := make([]map[string]any, 0, len(b.Objects))
		for _, obj := range b.Objects {
			items = append(items, obj.Object)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
	}
	return fmt.Errorf("unknown output format %q: use yaml or json", output)
}
