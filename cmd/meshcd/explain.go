package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/meshcd/meshcd/meshspec/schema"
)

func newExplainCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "explain [KIND[.FIELD[.FIELD...]]]",
		Short: "Show the kinds of the spec API, or one kind or field: its type, description and fields",
		Long: "Explain is the reference of meshcd's spec API, meshcd.dev/v1alpha1, generated from its JSON Schema, in the manner of kubectl explain.\n\n" +
			"Without an argument it lists the kinds. With KIND it shows the kind and its fields; with KIND.FIELD.FIELD one field, its type, description, allowed values and fields. " +
			"Lists and maps are stepped through: MeshService.spec.routes.match is the match of a route.",
		Example: "  meshcd explain\n" +
			"  meshcd explain MeshService\n" +
			"  meshcd explain MeshService.spec.routes.backends\n" +
			"  meshcd explain meshnamespace.spec.waypoint",
		Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			path := ""
			if len(args) == 1 {
				path = args[0]
			}
			text, err := schema.Explain(path)
			if err != nil {
				return err
			}
			_, err = io.WriteString(stdout, text)
			return err
		},
	}
}
