package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/drift"
)

func newDiffCommand(stdout io.Writer) *cobra.Command {
	var (
		flags  reconcileFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "diff DIR",
		Short: "Show what an apply of DIR would change in the cluster, judged by server-side dry-run",
		Long:  "Exit codes: 0 no change, 1 changes, 2 error.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, _, err := flags.reconciler()
			if err != nil {
				return err
			}
			d, err := r.Diff(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := writeDiff(stdout, d, output); err != nil {
				return err
			}
			if d.HasChanges() {
				return errNotClean
			}
			return nil
		},
	}
	flags.register(cmd)
	flags.render.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func writeDiff(w io.Writer, d *reconciler.Diff, output string) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	}
	if len(d.Changed) == 0 && len(d.Stale) == 0 {
		_, err := fmt.Fprintln(w, "no changes")
		return err
	}
	for _, o := range d.Changed {
		if o.Missing {
			fmt.Fprintf(w, "+ %s (created)\n", o.Object)
			continue
		}
		fmt.Fprintf(w, "~ %s\n", o.Object)
		for _, f := range o.Fields {
			fmt.Fprintf(w, "    %s: %v -> %v\n", f.Path, drift.Show(f.Live), drift.Show(f.Desired))
		}
	}
	for _, s := range d.Stale {
		fmt.Fprintf(w, "- %s (pruned)\n", s)
	}
	for _, s := range d.Order {
		fmt.Fprintf(w, "order: %s\n", s)
	}
	return nil
}
