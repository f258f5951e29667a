package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/drift"
	"github.com/meshcd/meshcd/reconciler/lister"
)

func newDriftCommand(stdout io.Writer) *cobra.Command {
	var (
		flags  sourceFlags
		output *outputFormat
		watch  bool
		mode   string
	)
	cmd := &cobra.Command{
		Use:   "drift DIR",
		Short: "Report where the cluster differs from DIR, who changed it and when; --watch keeps watching",
		Long: fmt.Sprintf("Without --watch: exit 0 no drift, 1 drift, 2 error. With --watch it runs until interrupted,\n"+
			"printing each drifted object as it is noticed, and with --mode correct re-applies it. An object\n"+
			"whose correction another field manager reverts %d times within %s is a fight: it is\n"+
			"reported and left alone from then on, as meshcd run does.", drift.DefaultFightLimit, drift.DefaultFightWindow),
		Example: "  meshcd drift ./mesh\n" +
			"  meshcd drift ./mesh -o markdown > drift.md\n" +
			"  meshcd drift ./mesh --watch --mode correct",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if mode != string(drift.ModeCorrect) && mode != string(drift.ModeReport) {
				return fmt.Errorf("unknown mode %q: use correct or report", mode)
			}
			if err := flags.validate(); err != nil {
				return err
			}
			connect := flags.instance.kube.connect
			if watch {
				connect = flags.instance.kube.connectWatching
			}
			cl, err := connect(cmd.Context())
			if err != nil {
				return err
			}
			r := reconciler.New(cl.client, flags.options())
			if !watch {
				rep, err := r.Drift(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if err := writeReport(stdout, rep, output); err != nil {
					return err
				}
				if len(rep.Objects) > 0 {
					return errNotClean
				}
				return nil
			}
			desired, err := r.Desired(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			lists, err := lister.Start(cmd.Context(), cl.config, cl.client)
			if err != nil {
				return err
			}
			lists.Expect(desired)
			w := &drift.Watcher{Client: cl.client, Informers: lists}
			fmt.Fprintf(cmd.ErrOrStderr(), "watching %d objects for drift (mode %s)\n", len(desired), mode)
			var fights *drift.Fights
			if mode == string(drift.ModeCorrect) {
				fights = &drift.Fights{} // the fight limit and window of `meshcd run`
			}
			declare := func(f *drift.Fight, declared bool) {
				if declared {
					fmt.Fprintf(stdout, "fight: %s\n", f)
				}
			}
			return w.Watch(cmd.Context(), desired, func(ev drift.Event) {
				rep := &drift.Report{DetectedAt: ev.At, Objects: []drift.Object{ev.Drift}}
				_ = writeReport(stdout, rep, output)
				if fights == nil {
					return
				}
				if f, declared := fights.Drifted(ev.Drift, ev.At); f != nil {
					declare(f, declared)
					return
				}
				start := time.Now()
				if err := r.Correct(cmd.Context(), ev.Desired.Object); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s correction failed: %v\n", ev.Drift.Object, err)
					return
				}
				fmt.Fprintf(stdout, "%s corrected in %s\n", ev.Drift.Object, time.Since(ev.At).Round(time.Millisecond))
				declare(fights.Corrected(ev.Drift.Object, start))
			})
		},
	}
	flags.register(cmd)
	output = addOutput(cmd, "text", "json", "yaml", "markdown")
	cmd.Flags().BoolVar(&watch, "watch", false, "keep watching and report each drift as it happens")
	cmd.Flags().StringVar(&mode, "mode", string(drift.ModeReport), "with --watch: correct (re-apply) or report (detect only)")
	return cmd
}

// writeReport writes a drift report in the format -o asks for.
func writeReport(w io.Writer, rep *drift.Report, output *outputFormat) error {
	if done, err := output.encoded(w, rep); done {
		return err
	}
	return rep.Write(w, output.String())
}
