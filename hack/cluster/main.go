// Command cluster starts and stops meshcd's local control plane: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kwok and istiod
// on loopback, built by hack/tools/build.sh.
//
//	go run ./hack/cluster up [--dir .cluster] [--detach]
//	go run ./hack/cluster down [--dir .cluster]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/meshcd/meshcd/internal/localcluster"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: cluster up|down [--dir DIR] [--detach]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	dir := fs.String("dir", ".cluster", "state directory; the kubeconfig is DIR/kubeconfig")
	detach := fs.Bool("detach", false, "leave the cluster running and return; stop it with down")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	switch args[0] {
	case "up":
		return up(abs, *detach)
	case "down":
		return down(abs)
	}
	return fmt.Errorf("unknown command %q: use up or down", args[0])
}

func up(dir string, detach bool) error {
	if _, err := os.Stat(filepath.Join(dir, "pids")); err == nil {
		return fmt.Errorf("a cluster already runs in %s; run down first", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := localcluster.Start(ctx, localcluster.Options{StateDir: dir, Detach: detach, Log: func(f string, a ...any) { fmt.Printf("  "+f+"\n", a...) }})
	if err != nil {
		return err
	}
	fmt.Printf("cluster up in %s\n", c.StartupTime().Round(time.Millisecond))
	rss := c.RSS()
	names := make([]string, 0, len(rss))
	var total int64
	for n, r := range rss {
		names = append(names, n)
		total += r
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Printf("  %-24s %4d MiB\n", n, rss[n]>>20)
	}
	fmt.Printf("  %-24s %4d MiB\n", "total", total>>20)
	fmt.Printf("\nexport KUBECONFIG=%s\nistiod debug: %s/debug/ambientz\nistiod xDS: meshcd apply|status --istiod-xds %s\n", c.Kubeconfig(), c.IstiodMonitoringURL(), c.IstiodXDSAddress())
	if detach {
		var pids []string
		for _, p := range c.Pids() {
			pids = append(pids, strconv.Itoa(p))
		}
		return os.WriteFile(filepath.Join(dir, "pids"), []byte(strings.Join(pids, "\n")+"\n"), 0o644)
	}
	fmt.Println("press Ctrl-C to stop")
	<-ctx.Done()
	return c.Stop()
}

// down stops a detached cluster by its process groups.
func down(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "pids"))
	if os.IsNotExist(err) {
		fmt.Println("no cluster runs in", dir)
		return nil
	}
	if err != nil {
		return err
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			_ = syscall.Kill(-pid, syscall.SIGTERM)
		}
	}
	time.Sleep(2 * time.Second)
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
	fmt.Println("cluster stopped")
	return os.RemoveAll(dir)
}
