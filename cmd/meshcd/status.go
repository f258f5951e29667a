package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func newStatusCommand(stdout io.Writer) *cobra.Command {
	var (
		flags  reconcileFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what meshcd owns in the cluster and what istiod says about it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, _, err := flags.reconciler()
			if err != nil {
				return err
			}
			st, err := r.Status(cmd.Context())
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			fmt.Fprintf(stdout, "owned objects: %d\n", st.Owned)
			if h := st.PruneHeld; h != nil {
				fmt.Fprintf(stdout, "prune held: %d objects, digest %s: %s\n", h.Count, h.Digest, h.Reason)
				if st.PruneAllowed == h.Digest {
					fmt.Fprintln(stdout, "  allowed: the next reconcile prunes them")
				} else {
					fmt.Fprintf(stdout, "  to prune exactly these objects: meshcd allow-prune %s\n", h.Digest)
				}
			}
			unhealthy := printHealth(stdout, st.Health)
			if unhealthy > 0 || st.PruneHeld != nil {
				return errNotClean
			}
			return nil
		},
	}
	flags.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}
