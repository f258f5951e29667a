package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/apply"
	"github.com/meshcd/meshcd/reconciler/health"
)

// reconcileFlags add how a reconcile applies and prunes: the flags of
// the commands that write (apply, run).
type reconcileFlags struct {
	source     sourceFlags
	allow      []string
	allowEmpty bool
	maxPrune   float64
	allowPrune string
	force      bool
	timeout    time.Duration
	istiod     string
	// progress, when set, is told how the reconcile goes.
	progress func(reconciler.Progress)
}

func (f *reconcileFlags) register(cmd *cobra.Command) {
	f.source.register(cmd)
	d := reconciler.DefaultOptions()
	cmd.Flags().StringSliceVar(&f.allow, "allow-finding", nil, "rule id whose error findings do not block the apply, such as AMB013 (repeatable)")
	cmd.Flags().BoolVar(&f.allowEmpty, "allow-empty", false, "let a render with no objects prune everything meshcd owns")
	cmd.Flags().Float64Var(&f.maxPrune, "max-prune", d.MaxPrune, "largest share (0-1) of the objects the last confirmed reconcile owned that one reconcile may prune; a larger prune is held until allowed")
	cmd.Flags().StringVar(&f.allowPrune, "allow-prune", "", "digest of a held prune (printed by apply and status) to carry out in this run; a different set stays held")
	cmd.Flags().BoolVar(&f.force, "force", false, "take ownership of fields another field manager owns")
	cmd.Flags().DurationVar(&f.timeout, "timeout", d.Apply.WaypointTimeout, "how long to wait for waypoints and istiod's status")
	cmd.Flags().StringVar(&f.istiod, "istiod-version", "", "istiod's version, such as 1.31.1, checked against a DataplaneRollout's bundle; empty skips the skew check")
	f.source.instance.registerProof(cmd)
}

// validate checks the flags before anything connects to the cluster.
func (f *reconcileFlags) validate() error {
	if math.IsNaN(f.maxPrune) || f.maxPrune < 0 || f.maxPrune > 1 {
		return fmt.Errorf("invalid --max-prune %v: it is the largest share of owned objects one apply may prune, a number from 0 (hold every prune) to 1 (never hold); the default is %v", f.maxPrune, reconciler.DefaultOptions().MaxPrune)
	}
	return f.source.validate()
}

func (f *reconcileFlags) reconciler(ctx context.Context) (*reconciler.Reconciler, *clients, error) {
	if err := f.validate(); err != nil {
		return nil, nil, err
	}
	return connectReconciler(ctx, &f.source.instance.kube, f.options())
}

// options turns the flags into reconciler options.
func (f *reconcileFlags) options() reconciler.Options {
	opts := f.source.options()
	opts.AllowFindings = f.allow
	opts.AllowEmpty = f.allowEmpty
	opts.MaxPrune = f.maxPrune
	opts.AllowPrune = f.allowPrune
	opts.Apply.Force = f.force
	opts.Apply.WaypointTimeout = f.timeout
	opts.HealthTimeout = f.timeout
	opts.IstiodVersion = f.istiod
	opts.Progress = f.progress
	return opts
}

func newApplyCommand(stdout io.Writer) *cobra.Command {
	var (
		flags   reconcileFlags
		output  *outputFormat
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "apply DIR",
		Short: "Render, validate and apply a spec directory, prune what was removed, and read back istiod's status",
		Long: "apply runs one reconcile: it checks the cluster once (bounded by --request-timeout), renders DIR,\n" +
			"validates it, stores the intended inventory, applies with server-side apply, prunes what was\n" +
			"removed and reads back istiod's status.\n\n" +
			"Exit codes: 0 applied and healthy, 1 blocked by findings or applied but not healthy yet,\n" +
			"2 error (the cluster unreachable, bad input, a failed write).\n\n" +
			"It prints counts by action and by health and lists only the objects that changed, wait or are\n" +
			"not healthy (-v lists every object). On a terminal, stderr shows the stage, the objects done of\n" +
			"the total and the waypoints it waits for; elsewhere a plain line per stage.",
		Example: "  meshcd apply ./mesh\n" +
			"  meshcd apply ./mesh --context prod --request-timeout 10s\n" +
			"  meshcd apply ./mesh -o json > result.json\n" +
			"  meshcd apply ./mesh --allow-prune 3f9c2a7d41e0b865   # carry out the held prune status shows",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			show := newProgress(cmd.ErrOrStderr())
			flags.progress = show.report
			r, _, err := flags.reconciler(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "applying %s\n", args[0])
			start := time.Now()
			res, rerr := r.Reconcile(cmd.Context(), args[0])
			show.done()
			if done, err := output.encoded(stdout, res); err != nil {
				return err
			} else if !done {
				printNotes(cmd.ErrOrStderr(), res.Notes)
				printResult(stdout, res, time.Since(start), verbose)
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
	output = addOutput(cmd, "text", "json", "yaml")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "list every object, unchanged and healthy ones too")
	return cmd
}

// printResult writes a reconcile's outcome for a person: counts, then
// only what changed, waits or is not healthy unless verbose.
func printResult(w io.Writer, res *reconciler.Result, took time.Duration, verbose bool) {
	if len(res.Findings) > 0 {
		_ = writeFindingLines(w, res.Findings)
	}
	for _, cs := range []struct {
		name string
		set  *apply.ChangeSet
	}{{"applied", res.Applied}, {"pruned", res.Pruned}} {
		if cs.set == nil {
			continue
		}
		fmt.Fprintf(w, "%s: %s\n", cs.name, cs.set.Summary())
		if s := cs.set.String(); s != "" {
			fmt.Fprintln(w, indent(s))
		}
		if verbose {
			for _, c := range cs.set.Changes {
				if c.Action == apply.Unchanged {
					fmt.Fprintf(w, "  %s unchanged\n", c.Object)
				}
			}
		}
	}
	if res.PruneHeld != "" {
		fmt.Fprintf(w, "prune held: %s\n", res.PruneHeld)
		for _, o := range res.HeldObjects {
			fmt.Fprintf(w, "  %s\n", o)
		}
	}
	printHealth(w, res.Health, verbose)
	fmt.Fprintf(w, "result: %s in %s\n", res.Reason, took.Round(time.Millisecond))
}

// printHealth writes the counts of healthy, pending and unhealthy objects
// and a line for each that is not healthy (each object when verbose).
func printHealth(w io.Writer, reports []health.Report, verbose bool) {
	var healthy, pending, unhealthy int
	var lines []string
	for _, h := range reports {
		state := "healthy"
		switch {
		case h.Pending:
			state = "pending"
			pending++
		case !h.Healthy:
			state = "unhealthy"
			unhealthy++
		default:
			healthy++
		}
		if h.Healthy && !verbose {
			continue
		}
		line := fmt.Sprintf("  %s %s", h.Object, state)
		if h.Message != "" {
			line += ": " + h.Message
		}
		lines = append(lines, line)
	}
	if len(reports) > 0 {
		fmt.Fprintf(w, "health: %d healthy, %d pending, %d unhealthy\n", healthy, pending, unhealthy)
	}
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
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
	var flags instanceFlags
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
			r, _, err := flags.reconciler(cmd.Context())
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
