package reconciler_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/internal/localcluster"
	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/drift"
	"github.com/meshcd/meshcd/reconciler/lister"
	"github.com/meshcd/meshcd/renderer"
)

// largeSpec writes namespaces × services: each namespace with a waypoint
// and mTLS, each service with two versions, a canary route, an L4 access
// rule and its application Service.
func largeSpec(b *testing.B, dir, prefix string, namespaces, services int) []string {
	var names []string
	for n := 0; n < namespaces; n++ {
		ns := fmt.Sprintf("%s-%03d", prefix, n)
		names = append(names, ns)
		var f strings.Builder
		fmt.Fprintf(&f, "apiVersion: meshcd.dev/v1alpha1\nkind: MeshNamespace\nmetadata: {name: %s}\nspec: {waypoint: {}, mtls: STRICT}\n", ns)
		for s := 0; s < services; s++ {
			fmt.Fprintf(&f, `---
apiVersion: meshcd.dev/v1alpha1
kind: MeshService
metadata: {name: svc-%[1]d, namespace: %[2]s}
spec:
  port: 8080
  selector: {app: svc-%[1]d}
  versions: {v1: {version: v1}, v2: {version: v2}}
  routes:
    - backends: {v1: 90, v2: 10}
  access:
    - from: {serviceAccounts: [%[2]s/web]}
---
apiVersion: v1
kind: Service
metadata: {name: svc-%[1]d, namespace: %[2]s}
spec: {selector: {app: svc-%[1]d}, ports: [{name: http, port: 8080}]}
`, s, ns)
		}
		if err := os.WriteFile(filepath.Join(dir, ns+".yaml"), []byte(f.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return names
}

// cpuTime is the user and system CPU this process has used; the local
// cluster's processes are its children and not counted.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU is the user and system CPU each of the cluster's processes
// (etcd, kube-apiserver, the controllers, kwok, istiod) has used so far, by
// name.
func processCPU(c *localcluster.Cluster) map[string]time.Duration {
	out := map[string]time.Duration{}
	for name, pid := range c.Pids() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The fields after the command's closing parenthesis; utime and
		// stime are the 14th and 15th fields of the line, in clock ticks.
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(fields) < 13 {
			continue
		}
		utime, _ := strconv.ParseInt(fields[11], 10, 64)
		stime, _ := strconv.ParseInt(fields[12], 10, 64)
		out[name] = time.Duration(utime+stime) * time.Second / 100 // USER_HZ
	}
	return out
}

// cpuSince is each process's CPU since before, and their sum.
func cpuSince(c *localcluster.Cluster, before map[string]time.Duration) (map[string]time.Duration, time.Duration) {
	out := map[string]time.Duration{}
	var total time.Duration
	for name, d := range processCPU(c) {
		out[name] = d - before[name]
		total += out[name]
	}
	return out, total
}

// perProcess renders CPU by process, rounded to the second.
func perProcess(cpu map[string]time.Duration) string {
	var parts []string
	for name, d := range cpu {
		parts = append(parts, fmt.Sprintf("%s %s", name, d.Round(time.Second)))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// peakRSS is this process's peak resident set size in MiB.
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkReconcile_200Namespaces10Services applies 200 namespaces × 10
// services cold, next to kubectl apply --server-side of the same rendered
// objects on a second cluster, then measures a no-op reconcile and the
// drift latency. meshcd runs as `meshcd run` does, with informers serving
// its bulk lists; the cold apply includes starting them.
func BenchmarkReconcile_200Namespaces10Services(b *testing.B) {
	cluster := clustertest.Cluster(b)
	ctx := context.Background()
	iter := 0
	for b.Loop() {
		iter++
		mDir, kDir := b.TempDir(), b.TempDir()
		mNS := largeSpec(b, mDir, fmt.Sprintf("m%d", iter), 200, 10)
		kNS := largeSpec(b, kDir, fmt.Sprintf("k%d", iter), 200, 10)

		// kubectl apply --server-side of the same rendered objects, on a
		// second cluster like the first, so that neither side pays for the
		// status istiod writes for the other's objects.
		kc, err := localcluster.Start(ctx, localcluster.Options{})
		if err != nil {
			b.Fatal(err)
		}
		kclient, err := client.New(kc.RESTConfig(), client.Options{})
		if err != nil {
			b.Fatal(err)
		}
		for _, ns := range kNS {
			if err := kclient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
				b.Fatal(err)
			}
		}
		bundle, err := renderer.Render(kDir, renderer.DefaultOptions())
		if err != nil {
			b.Fatal(err)
		}
		var stream bytes.Buffer
		for _, o := range bundle.Objects {
			y, err := yaml.Marshal(o.Object)
			if err != nil {
				b.Fatal(err)
			}
			stream.WriteString("---\n")
			stream.Write(y)
		}
		file := filepath.Join(b.TempDir(), "rendered.yaml")
		if err := os.WriteFile(file, stream.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
		start, procsBefore := time.Now(), processCPU(kc)
		out, err := exec.Command(filepath.Join(localcluster.BinDir(), "kubectl"), "--kubeconfig", kc.Kubeconfig(),
			"apply", "--server-side", "--field-manager", "kubectl-bench", "-f", file).CombinedOutput()
		if err != nil {
			b.Fatalf("kubectl apply: %v\n%s", err, tail(out))
		}
		kubectl := time.Since(start)
		kubectlProcs, kubectlServer := cpuSince(kc, procsBefore)
		// The least time the same writes could take here: kube-apiserver's
		// CPU for them spread over every core, and the whole cluster's.
		apiserverFloor := kubectlProcs["kube-apiserver"] / time.Duration(runtime.NumCPU())
		clusterFloor := kubectlServer / time.Duration(runtime.NumCPU())
		if err := kc.Stop(); err != nil {
			b.Fatal(err)
		}

		c := clustertest.Client(b)
		for _, ns := range mNS {
			if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
				b.Fatal(err)
			}
		}

		// meshcd: the same objects, cold, with staging and the wait for
		// 200 waypoints before their namespaces are enrolled.
		w := &clustertest.Writes{}
		cfg := rest.CopyConfig(cluster.RESTConfig())
		cfg.WrapTransport = w.Wrap
		mc, err := client.New(cfg, client.Options{})
		if err != nil {
			b.Fatal(err)
		}
		opts := reconciler.DefaultOptions()
		opts.Name = fmt.Sprintf("bench-%d", iter)
		// As `meshcd run` does: informers serve the bulk lists.
		listCtx, stopLists := context.WithCancel(ctx)
		if opts.Lists, err = lister.Start(listCtx, cfg, mc); err != nil {
			b.Fatal(err)
		}
		opts.Apply.WaypointTimeout = 5 * time.Minute
		opts.HealthTimeout = 5 * time.Minute
		rec := reconciler.New(mc, opts)
		start, procsBefore = time.Now(), processCPU(cluster)
		res, err := rec.Reconcile(ctx, mDir)
		if err != nil {
			b.Fatalf("cold reconcile: %v", err)
		}
		cold := time.Since(start)
		meshcdProcs, meshcdServer := cpuSince(cluster, procsBefore)
		// The apply itself ends with its last write; the rest of the cold
		// reconcile waits for istiod's status on every object, which
		// kubectl does not.
		applied := w.Last().Sub(start)
		objects := len(res.Applied.Changes)
		w.Take()

		// No-op reconciles: the first right after the cold apply, while
		// istiod still writes status, then four more; the median is the
		// steady state.
		var noops []time.Duration
		cpuBefore := cpuTime()
		for range 5 {
			start = time.Now()
			if _, err = rec.Reconcile(ctx, mDir); err != nil {
				b.Fatalf("no-op reconcile: %v", err)
			}
			noops = append(noops, time.Since(start))
		}
		noopCPU := (cpuTime() - cpuBefore) / 5
		noopWrites, _ := w.Take()
		firstNoop := noops[0]
		slices.Sort(noops)
		noop := noops[len(noops)/2]

		// Drift: a kubectl-label change on one namespace.
		desired, err := rec.Desired(ctx, mDir)
		if err != nil {
			b.Fatal(err)
		}
		watchCtx, cancel := context.WithCancel(ctx)
		events := make(chan drift.Event, 4)
		watcher := newWatcher(b, cluster, mc)
		synced := make(chan struct{})
		watcher.Synced = func() { close(synced) }
		go func() { _ = watcher.Watch(watchCtx, desired, func(ev drift.Event) { events <- ev }) }()
		select { // the informers list every object first
		case <-synced:
		case <-time.After(2 * time.Minute):
			b.Fatal("the drift watch did not sync in 2 min")
		}
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: mNS[0]}}
		changed := time.Now()
		patchLabel(b, mc, ns, ambient.LabelUseWaypoint, "none")
		var latency time.Duration
		select {
		case ev := <-events:
			latency = ev.At.Sub(changed)
		case <-time.After(30 * time.Second):
			b.Fatal("drift not noticed in 30 s")
		}
		cancel()
		stopLists()

		b.ReportMetric(float64(objects), "objects")
		b.ReportMetric(kubectl.Seconds(), "kubectl-apply-s")
		b.ReportMetric(cold.Seconds(), "meshcd-cold-s")
		b.ReportMetric(cold.Seconds()/kubectl.Seconds(), "meshcd/kubectl")
		b.ReportMetric(applied.Seconds(), "meshcd-apply-s")
		b.ReportMetric(kubectlServer.Seconds(), "kubectl-cluster-cpu-s")
		b.ReportMetric(meshcdServer.Seconds(), "meshcd-cluster-cpu-s")
		b.ReportMetric(applied.Seconds()/kubectl.Seconds(), "meshcd-apply/kubectl")
		b.ReportMetric(apiserverFloor.Seconds()/kubectl.Seconds(), "apiserver-floor/kubectl")
		b.ReportMetric(clusterFloor.Seconds()/kubectl.Seconds(), "cluster-floor/kubectl")
		b.ReportMetric(firstNoop.Seconds(), "noop-first-s")
		b.ReportMetric(noop.Seconds(), "noop-median-s")
		b.ReportMetric(noopCPU.Seconds(), "noop-cpu-s")
		b.ReportMetric(float64(noopWrites), "noop-writes")
		b.ReportMetric(float64(latency.Microseconds())/1000, "drift-ms")
		b.ReportMetric(peakRSS(), "peak-RSS-MiB")
		b.Logf("%d objects: kubectl apply --server-side %s, meshcd cold reconcile %s (%.2fx; its writes done after %s, %.2fx), the cluster's CPU during them %s and %s, no-op first %s, median of 5 %s (meshcd's own CPU %s each), %d writes in all 5, drift noticed after %s, peak RSS %.0f MiB",
			objects, kubectl.Round(time.Millisecond), cold.Round(time.Millisecond), cold.Seconds()/kubectl.Seconds(), applied.Round(time.Millisecond), applied.Seconds()/kubectl.Seconds(), kubectlServer.Round(time.Second), meshcdServer.Round(time.Second), firstNoop.Round(time.Millisecond), noop.Round(time.Millisecond), noopCPU.Round(time.Millisecond), noopWrites, latency.Round(time.Millisecond), peakRSS())
		b.Logf("the cluster's CPU by process: during kubectl %s; during meshcd %s", perProcess(kubectlProcs), perProcess(meshcdProcs))
		b.Logf("spread over all %d cores, the CPU kubectl's apply cost the cluster takes %s (%.2fx kubectl's time), kube-apiserver's alone %s (%.2fx)",
			runtime.NumCPU(), clusterFloor.Round(time.Second), clusterFloor.Seconds()/kubectl.Seconds(), apiserverFloor.Round(time.Second), apiserverFloor.Seconds()/kubectl.Seconds())
	}
}

func tail(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}
