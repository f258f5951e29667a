package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/meshcd/meshcd/renderer"
)

// renderFlags are the flags that change what a render makes of its input.
type renderFlags struct {
	namespace string
}

func (f *renderFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.namespace, "namespace", "n", "default", "namespace of every manifest of a namespaced kind that names none, as kubectl's --namespace")
}

// options returns the renderer's options with the flags applied.
func (f *renderFlags) options() renderer.Options {
	opts := renderer.DefaultOptions()
	if f.namespace != "" {
		opts.Namespace = f.namespace
	}
	return opts
}

// printNotes writes, one a line, the files a render did not read and why,
// then its warnings.
func printNotes(w io.Writer, n renderer.Notes) {
	for _, s := range n.Skipped {
		fmt.Fprintf(w, "skipped: %s: %s\n", s.Path, s.Reason)
	}
	for _, m := range n.Warnings {
		fmt.Fprintf(w, "warning: %s\n", m)
	}
}
