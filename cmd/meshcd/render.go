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
		output *outputFormat
		flags  renderFlags
	)
	cmd := &cobra.Command{
		Use:   "render DIR",
		Short: "Render a spec directory into the Kubernetes objects meshcd would apply",
		Long:  "render prints, sorted, every object meshcd would apply for DIR: what the mesh spec generates and the plain\nmanifests and kustomize overlays beside it. It reads no cluster.",
		Example: "  meshcd render ./mesh\n" +
			"  meshcd render ./mesh -o json | jq '.items[].kind'",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := renderer.Render(args[0], flags.options())
			if err != nil {
				return err
			}
			if output.String() != "json" {
				printNotes(cmd.ErrOrStderr(), b.Notes)
			}
			return printObjects(stdout, b, output.String())
		},
	}
	output = addOutput(cmd, "yaml", "json")
	flags.register(cmd)
	return cmd
}

// printObjects writes the rendered objects as a YAML stream or a JSON list;
// the list carries the render's notes as the fields skipped and warnings.
func printObjects(w io.Writer, b *renderer.Bundle, output string) error {
	if output == "json" {
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
}
