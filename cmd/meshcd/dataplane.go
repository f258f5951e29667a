package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/meshcd/meshcd/dataplane"
)

func newBundleCommand(stdout io.Writer) *cobra.Command {
	var output string
	list := &cobra.Command{
		Use:   "list",
		Short: "List the bundled proxy versions and their pinned images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c := dataplane.Catalogue()
			if output == "json" {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(c)
			}
			w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "VERSION\tZTUNNEL\tWAYPOINT (PROXYV2)\tCNI\tISTIOD")
			for _, b := range c {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", b.Version, b.Ztunnel, b.Proxy, b.CNI, b.Pilot)
			}
			fmt.Fprintf(w, "\nskew: %s\n", dataplane.SkewRule)
			return w.Flush()
		},
	}
	list.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	bundle := &cobra.Command{Use: "bundle", Short: "The proxy bundles meshcd can roll out"}
	bundle.AddCommand(list)
	return bundle
}

func newRolloutCommand(stdout io.Writer) *cobra.Command {
	var flags reconcileFlags
	rollout := &cobra.Command{Use: "rollout", Short: "Watch and steer DataplaneRollouts"}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show each rollout's phase, stage and pinned images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, _, err := flags.reconciler()
			if err != nil {
				return err
			}
			states, _, err := r.RolloutStore().Load(cmd.Context())
			if err != nil {
				return err
			}
			return dataplane.WriteStatus(stdout, states)
		},
	}
	rollout.AddCommand(status)
	for _, c := range []struct {
		cmd  dataplane.Command
		help string
	}{
		{dataplane.CommandPause, "Hold a rollout in its current stage"},
		{dataplane.CommandResume, "Go on with a paused rollout"},
		{dataplane.CommandAbort, "Stop a rollout and roll its current stage back"},
		{dataplane.CommandRollback, "Roll every namespace a rollout moved back to its previous images"},
	} {
		rollout.AddCommand(&cobra.Command{
			Use:   string(c.cmd) + " NAME",
			Short: c.help + "; the running meshcd carries it out on its next reconcile",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				r, _, err := flags.reconciler()
				if err != nil {
					return err
				}
				if err := r.RolloutStore().Send(cmd.Context(), args[0], c.cmd); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "rollout %s: %s sent\n", args[0], c.cmd)
				return nil
			},
		})
	}
	for _, sub := range rollout.Commands() {
		flags.register(sub)
	}
	return rollout
}
