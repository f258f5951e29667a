package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/meshcd/meshcd/dataplane"
)

func newBundleCommand(stdout io.Writer) *cobra.Command {
	var output *outputFormat
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the bundled proxy versions and their images",
		Long:    "list prints each bundle a DataplaneRollout may name: its ztunnel, waypoint (proxyv2), CNI and istiod images, and the version skew rule meshcd checks.",
		Example: "  meshcd bundle list\n  meshcd bundle list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c := dataplane.Catalogue()
			if done, err := output.encoded(stdout, c); done {
				return err
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
	output = addOutput(list, "text", "json", "yaml")
	bundle := &cobra.Command{Use: "bundle", Short: "The proxy bundles meshcd can roll out", Example: "  meshcd bundle list"}
	bundle.AddCommand(list)
	return bundle
}

func newRolloutCommand(stdout io.Writer) *cobra.Command {
	var (
		flags  instanceFlags
		output *outputFormat
	)
	rollout := &cobra.Command{
		Use:     "rollout",
		Short:   "Watch and steer DataplaneRollouts",
		Example: "  meshcd rollout status\n  meshcd rollout pause proxies",
	}
	status := &cobra.Command{
		Use:     "status",
		Short:   "Show each rollout's phase, stage and pinned images",
		Long:    "status reads the rollout state the instance keeps in the ConfigMap meshcd-rollout-<name>.",
		Example: "  meshcd rollout status\n  meshcd rollout status --name payments -o yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, _, err := flags.reconciler(cmd.Context())
			if err != nil {
				return err
			}
			states, _, err := r.RolloutStore().Load(cmd.Context())
			if err != nil {
				return err
			}
			if done, err := output.encoded(stdout, states); done {
				return err
			}
			return dataplane.WriteStatus(stdout, states)
		},
	}
	output = addOutput(status, "text", "json", "yaml")
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
			Use:     string(c.cmd) + " NAME",
			Short:   c.help + "; the running meshcd carries it out on its next reconcile",
			Example: fmt.Sprintf("  meshcd rollout %s proxies\n  meshcd rollout %s proxies --context prod --name payments", c.cmd, c.cmd),
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				r, _, err := flags.reconciler(cmd.Context())
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
