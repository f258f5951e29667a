// Command demo runs meshcd's main job end to end: it starts a local
// cluster, makes a git repository from examples/helloworld-canary, runs
// meshcd's controller against it, plans and applies a weight change,
// corrects a hand-made change, shows what istiod says, and rolls the
// proxies out stage by stage through two pull requests: one adds the
// DataplaneRollout, one promotes its manual stage. `make demo` runs it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/meshcd/meshcd/internal/demo"
	"github.com/meshcd/meshcd/internal/localcluster"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	start := time.Now()
	// controller-runtime's informers log through it; the demo prints what
	// it reads itself.
	ctrllog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Println("== 0. starting a local cluster: etcd, kube-apiserver, controller-manager, scheduler, kwok nodes, istiod")
	c, err := localcluster.Start(ctx, localcluster.Options{Log: func(f string, a ...any) { fmt.Printf("   "+f+"\n", a...) }})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("\n== stopping the local cluster")
		_ = c.Stop()
	}()
	res, err := demo.Run(ctx, demo.Options{Example: "examples/helloworld-canary", Config: c.RESTConfig(), Out: os.Stdout, Interval: 2 * time.Second, Name: "demo", IstiodMonitoringURL: c.IstiodMonitoringURL()})
	if err != nil {
		return err
	}
	fmt.Printf("\n== done in %s: first apply %s, merged change applied %s after the merge, drift corrected %s after the change, rollout %s from its merge to Succeeded\n",
		time.Since(start).Round(time.Second), res.FirstApply.Round(time.Millisecond), res.WeightApplied.Round(time.Millisecond),
		res.DriftCorrected.Round(time.Millisecond), res.Rollout.Round(time.Millisecond))
	return nil
}
