package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/drift"
)

func newDiffCommand(stdout io.Writer) *cobra.Command {
	var (
		flags  sourceFlags
		output *outputFormat
	)
	cmd := &cobra.Command{
		Use:   "diff DIR",
		Short: "Show what an apply of DIR would change in the cluster, judged by server-side dry-run",
		Long: "diff renders DIR and asks the API server what an apply would change (server-side dry-run, so\n" +
			"defaulted fields never show), lists what an apply would prune, and the order in which waypoint\n" +
			"labels would wait for their waypoints. It writes nothing.\n\n" +
			"Exit codes: 0 no change, 1 changes, 2 error.",
		Example: "  meshcd diff ./mesh\n" +
			"  meshcd diff ./mesh --context staging -o json",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, _, err := flags.reconciler(cmd.Context())
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
	output = addOutput(cmd, "text", "json", "yaml")
	return cmd
}

func writeDiff(w io.Writer, d *reconciler.Diff, output *outputFormat) error {
	if done, err := output.encoded(w, d); done {
		return err
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
