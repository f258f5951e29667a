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
	var (
		output string
		flags  renderFlags
	)
	cmd := &cobra.Command{
		Use:   "render DIR",
		Short: "Render a spec directory into the Kubernetes objects meshcd would apply",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := renderer.Render(args[0], flags.options())
			if err != nil {
				return err
			}
			if output != "json" {
				printNotes(cmd.ErrOrStderr(), b.Notes)
			}
			return printObjects(stdout, b, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "output format: yaml or json")
	flags.register(cmd)
	return cmd
}

// printObjects writes the rendered objects as a YAML stream or a JSON list;
// the list carries the render's notes as the fields skipped and warnings.
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
		list := map[string]any{"apiVersion": "v1", "kind": "List", "items": items}
		if len(b.Notes.Skipped) > 0 {
			list["skipped"] = b.Notes.Skipped
		}
		if len(b.Notes.Warnings) > 0 {
			list["warnings"] = b.Notes.Warnings
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	return fmt.Errorf("unknown output format %q: use yaml or json", output)
}
