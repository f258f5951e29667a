package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/meshcd/meshcd/reconciler"
)

func newStatusCommand(stdout io.Writer) *cobra.Command {
	var (
		flags   instanceFlags
		output  *outputFormat
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what meshcd owns in the cluster and what istiod says about it",
		Long: "status reads the instance's inventory and the health of every object in it: istiod's\n" +
			"conditions, waypoints' ready endpoints, and a prune the mass-prune guard holds.\n\n" +
			"Exit codes: 0 everything healthy, 1 something unhealthy or a prune held, 2 error.",
		Example: "  meshcd status\n" +
			"  meshcd status --context prod --name payments\n" +
			"  meshcd status -o yaml",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, _, err := flags.reconciler(cmd.Context())
			if err != nil {
				return err
			}
			st, err := r.Status(cmd.Context())
			if err != nil {
				return err
			}
			unhealthy := 0
			for _, h := range st.Health {
				if !h.Healthy {
					unhealthy++
				}
			}
			if done, err := output.encoded(stdout, st); err != nil {
				return err
			} else if !done {
				printStatus(stdout, st, verbose)
			}
			if unhealthy > 0 || st.PruneHeld != nil {
				return errNotClean
			}
			return nil
		},
	}
	flags.register(cmd)
	flags.registerProof(cmd)
	output = addOutput(cmd, "text", "json", "yaml")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "list every object, healthy ones too")
	return cmd
}

// printStatus writes the instance's status for a person.
func printStatus(stdout io.Writer, st *reconciler.Status, verbose bool) {
	fmt.Fprintf(stdout, "owned objects: %d\n", st.Owned)
	if h := st.PruneHeld; h != nil {
		fmt.Fprintf(stdout, "prune held: %d objects, digest %s: %s\n", h.Count, h.Digest, h.Reason)
		if st.PruneAllowed == h.Digest {
			fmt.Fprintln(stdout, "  allowed: the next reconcile prunes them")
		} else {
			fmt.Fprintf(stdout, "  to prune exactly these objects: meshcd allow-prune %s\n", h.Digest)
		}
	}
	printHealth(stdout, st.Health, verbose)
}
