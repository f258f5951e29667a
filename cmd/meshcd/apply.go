package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/admit"
	"github.com/meshcd/meshcd/reconciler/health"
)

// reconcileFlags are the flags shared by commands that reconcile.
type reconcileFlags struct {
	kube       kubeFlags
	allow      []string
	allowEmpty bool
	maxPrune   float64
	allowPrune string
	force      bool
	timeout    time.Duration
	name       string
	istiod     string
	allowKinds []string
	namespaces []string
	istiodXDS  string
}

func (f *reconcileFlags) register(cmd *cobra.Command) {
	f.kube.register(cmd)
	d := reconciler.DefaultOptions()
	cmd.Flags().StringSliceVar(&f.allow, "allow-finding", nil, "rule id whose error findings do not block the apply, such as AMB013 (repeatable)")
	cmd.Flags().BoolVar(&f.allowEmpty, "allow-empty", false, "let a render with no objects prune everything meshcd owns")
	cmd.Flags().Float64Var(&f.maxPrune, "max-prune", d.MaxPrune, "largest share (0-1) of the objects the last confirmed reconcile owned that one reconcile may prune; a larger prune is held until allowed")
	cmd.Flags().StringVar(&f.allowPrune, "allow-prune", "", "digest of a held prune (printed by apply and status) to carry out in this run; a different set stays held")
	cmd.Flags().BoolVar(&f.force, "force", false, "take ownership of fields another field manager owns")
	cmd.Flags().DurationVar(&f.timeout, "timeout", d.Apply.WaypointTimeout, "how long to wait for waypoints and istiod's status")
	cmd.Flags().StringVar(&f.name, "name", d.Name, "name of this meshcd instance; its inventory is meshcd-inventory-<name>")
	cmd.Flags().StringVar(&f.istiod, "istiod-version", "", "istiod's version, such as 1.31.1, checked against a DataplaneRollout's bundle; empty skips the skew check")
	cmd.Flags().StringSliceVar(&f.allowKinds, "allow-kind", nil, "kind the repository may write although refused by default (RBAC, Secrets, webhooks, CRDs, cluster-scoped kinds), spelled Kind.group such as Role.rbac.authorization.k8s.io or Secret (repeatable)")
	cmd.Flags().StringSliceVar(&f.namespaces, "source-namespaces", nil, "the only namespaces the repository may write in (default: any)")
	cmd.Flags().StringVar(&f.istiodXDS, "istiod-xds", "", "host:port of istiod's plaintext xDS port (15010, such as 127.0.0.1:15010 through kubectl port-forward): prove after apply and in status that istiod's ztunnel config decides every caller and Service as the access model does; empty turns the proof off")
}

func (f *reconcileFlags) reconciler() (*reconciler.Reconciler, *clients, error) {
	if err := f.options().Admit.Validate(); err != nil {
		return nil, nil, fmt.Errorf("--allow-kind: %w", err)
	}
	cl, err := f.kube.connect()
	if err != nil {
		return nil, nil, err
	}
	return reconciler.New(cl.client, f.options()), cl, nil
}

// options turns the flags into reconciler options.
func (f *reconcileFlags) options() reconciler.Options {
	opts := reconciler.DefaultOptions()
	opts.Name = f.name
	opts.AllowFindings = f.allow
	opts.AllowEmpty = f.allowEmpty
	opts.MaxPrune = f.maxPrune
	opts.AllowPrune = f.allowPrune
	opts.Apply.Force = f.force
	opts.Apply.WaypointTimeout = f.timeout
	opts.HealthTimeout = f.timeout
	opts.IstiodVersion = f.istiod
	opts.Admit = admit.Policy{Allow: f.allowKinds, Namespaces: f.namespaces}
	opts.IstiodXDS = f.istiodXDS
	return opts
}

func newApplyCommand(stdout io.Writer) *cobra.Command {
	var (
		flags  reconcileFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "apply DIR",
		Short: "Render, validate and apply a spec directory, prune what was removed, and read back istiod's status",
		Long: "apply runs one reconcile. Exit codes: 0 applied and healthy, 1 blocked by findings or\n" +
			"applied but not healthy yet, 2 error.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, _, err := flags.reconciler()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "applying %s\n", args[0])
			start := time.Now()
			res, rerr := r.Reconcile(cmd.Context(), args[0])
			if output == "json" {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					return err
				}
			} else {
				printResult(stdout, res, time.Since(start))
			}
			switch {
			case res.Reason == reconciler.ReasonValidationFailed:
				fmt.Fprintln(cmd.ErrOrStderr(), "meshcd:", rerr)
				return errNotClean
			case rerr != nil:
				return rerr
			case res.Reason != reconciler.ReasonSucceeded:
				return errNotClean
			}
			return nil
		},
	}
	flags.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// printResult writes a reconcile's outcome for a terminal.
func printResult(w io.Writer, res *reconciler.Result, took time.Duration) {
	if len(res.Findings) > 0 {
		_ = printFindings(w, res.Findings, "text")
	}
	if res.Applied != nil {
		fmt.Fprintf(w, "applied: %s\n", res.Applied.Summary())
		if s := res.Applied.String(); s != "" {
			fmt.Fprintln(w, indent(s))
		}
	}
	if res.Pruned != nil {
		fmt.Fprintf(w, "pruned: %s\n", res.Pruned.Summary())
		if s := res.Pruned.String(); s != "" {
			fmt.Fprintln(w, indent(s))
		}
	}
	if res.PruneHeld != "" {
		fmt.Fprintf(w, "prune held: %s\n", res.PruneHeld)
		for _, o := range res.HeldObjects {
			fmt.Fprintf(w, "  %s\n", o)
		}
	}
	printHealth(w, res.Health)
	fmt.Fprintf(w, "result: %s in %s\n", res.Reason, took.Round(time.Millisecond))
}

// printHealth writes one line per report and returns how many are not healthy.
func printHealth(w io.Writer, reports []health.Report) int {
	unhealthy := 0
	for _, h := range reports {
		state := "healthy"
		switch {
		case h.Pending:
			state = "pending"
		case !h.Healthy:
			state = "unhealthy"
		}
		if !h.Healthy {
			unhealthy++
		}
		line := fmt.Sprintf("  %s %s", h.Object, state)
		if h.Message != "" {
			line += ": " + h.Message
		}
		fmt.Fprintln(w, line)
	}
	return unhealthy
}

func indent(s string) string {
	out := "  "
	for _, r := range s {
		out += string(r)
		if r == '\n' {
			out += "  "
		}
	}
	return out
}

func newAllowPruneCommand(stdout io.Writer) *cobra.Command {
	var flags reconcileFlags
	cmd := &cobra.Command{
		Use:   "allow-prune DIGEST",
		Short: "Allow the prune the mass-prune guard holds, exactly the objects its digest names",
		Long: "A reconcile whose render has no objects, or that would prune more than --max-prune of what\n" +
			"meshcd owned, holds the prune, on that reconcile and every later one, and prints its digest. allow-prune lets the\n" +
			"next reconcile (of meshcd run or meshcd apply) carry out that prune and no other: a different\n" +
			"set of objects has another digest and needs its own approval.",
		Example: "  meshcd status                      # shows the held prune and its digest\n  meshcd allow-prune 3f9c2a7d41e0b865",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, _, err := flags.reconciler()
			if err != nil {
				return err
			}
			held, err := r.AllowPrune(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "allowed: the next reconcile prunes the %d held objects (%s)\n", held.Count, held.Reason)
			return nil
		},
	}
	flags.register(cmd)
	return cmd
}
