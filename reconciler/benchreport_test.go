package reconciler_test

import (
	"fmt"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshcd/meshcd/internal/version"
)

// peerRun is one engine's apply, cold or no-op, as the benchmark measured it.
type peerRun struct {
	Engine string
	// Objects is how many objects the run applied or found unchanged.
	Objects int
	Wall    time.Duration
	// Requests and Writes were counted at the client's transport (for
	// kubectl, from its -v=6 request log).
	Requests, Writes int
	// APIServerCPU is kube-apiserver's CPU during the run, ClusterCPU that
	// of every process of the local cluster.
	APIServerCPU, ClusterCPU time.Duration
	// ClientCPU is the engine's own CPU.
	ClientCPU time.Duration
	// Written and WrittenAPIServerCPU are the wall time and kube-apiserver
	// CPU of a cold run until its last write was answered.
	Written, WrittenAPIServerCPU time.Duration
	// Settled and SettledAPIServerCPU are the wall time and kube-apiserver
	// CPU of a cold run until istiod has reported on every object, where
	// meshcd's cold reconcile ends; Reports is how many objects were read
	// back then, Unhealthy how many of them istiod did not accept or had
	// not reported on by the read-back's timeout.
	Settled, SettledAPIServerCPU time.Duration
	Reports, Unhealthy           int
	// Note says what the wall time includes.
	Note string
}

// driftKind is the latency of drift events of one kind, from the change's
// write to the drift watch's report.
type driftKind struct {
	Kind      string
	Latencies []time.Duration
}

// percentile returns the p-th percentile (0..100) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// benchReport is every figure make bench writes to docs/benchmarks.md.
type benchReport struct {
	Namespaces, Services int
	Cold, Noop           []peerRun
	// NoopRuns is how many no-op runs each no-op figure is the median of.
	NoopRuns map[string]int
	Drift    []driftKind
	// Memory are the figures of a meshcd run process holding the spec, and
	// holding the larger memory spec.
	Memory []memFigures
	// CLI are the one-shot meshcd apply figures.
	CLI *cliFigures
	// Took is the whole benchmark's time.
	Took time.Duration
}

// memFigures are the memory of one meshcd run process of its own.
type memFigures struct {
	Namespaces, Services, Owned int
	// Steady is the largest VmRSS at rest, from 15 s after the first
	// reconcile is done, Heap the Go heap then (go_memstats_alloc_bytes),
	// Peak the largest VmRSS during a no-op reconcile a push webhook
	// asked for.
	Steady, Heap, Peak int64
	// File is the part of Steady that is file pages: the binary's code
	// and read-only data the process touched, which every process of
	// the binary has whatever it holds.
	File int64
	// Failed says why there are no figures.
	Failed string
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

// cliFigures are the one-shot `meshcd apply` figures.
type cliFigures struct {
	Namespaces, Services, Objects int
	Cold, Noop                    time.Duration
	// Writes, Waypoints and Health split the cold apply: the writes, the
	// waits for waypoints before enrollment, and istiod's status read-back.
	Writes, Waypoints, Health time.Duration
	NoopRuns                  int
}

// perObject is CPU d per object of n, in milliseconds.
func perObject(d time.Duration, n int) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000/float64(n))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }

func secs(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// machine describes where the figures were taken.
func machine() string {
	mem := "unknown"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb int64
				fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
				mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	v := version.Get().TestedWith
	// A test binary records no dependencies: read the module's go.mod.
	ssa := "unknown"
	if mod, err := os.ReadFile("../go.mod"); err == nil {
		if m := regexp.MustCompile(`(?m)^\s*github.com/fluxcd/pkg/ssa (\S+)`).FindSubmatch(mod); m != nil {
			ssa = string(m[1])
		}
	}
	return fmt.Sprintf("%d cores (%s/%s), %s of memory; %s; Kubernetes %s (kube-apiserver and kubectl), Istio %s, Gateway API %s, fluxcd/pkg/ssa %s",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, mem, runtime.Version(), v.Kubernetes, v.Istio, v.GatewayAPI, ssa)
}

// markdown renders the report.
func (r *benchReport) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmarks\n\nGenerated by `make bench` (reconciler/bench_test.go); do not edit. Scale %d namespaces × %d services. Machine: %s. The run took %s.\n\n",
		r.Namespaces, r.Services, machine(), r.Took.Round(time.Second))
	b.WriteString("Each engine applies the same rendered objects into fresh namespaces of a local cluster of its own (etcd, kube-apiserver, the controllers, kwok, istiod), one after another. ")
	b.WriteString("Flux's engine is `fluxcd/pkg/ssa` `ResourceManager.ApplyAllStaged` with kustomize-controller's default options; kubectl is `kubectl apply --server-side`. ")
	b.WriteString("Requests and writes are counted at each client's transport (kubectl's from its `-v=6` request log); a write is a POST, PUT, PATCH or DELETE that is not a dry-run. ")
	b.WriteString("CPU is user plus system time read from /proc: kube-apiserver's and the whole cluster's during the run, and the client's own.\n\n")
	table := func(title string, runs []peerRun) {
		fmt.Fprintf(&b, "## %s\n\n| engine | objects | wall | requests | writes | kube-apiserver CPU | per object | cluster CPU | client CPU | what the time includes |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n", title)
		for _, p := range runs {
			fmt.Fprintf(&b, "| %s | %d | %s | %d | %d | %s | %s | %s | %s | %s |\n", p.Engine, p.Objects, secs(p.Wall), p.Requests, p.Writes, secs(p.APIServerCPU), perObject(p.APIServerCPU, p.Objects), secs(p.ClusterCPU), secs(p.ClientCPU), p.Note)
		}
		b.WriteString("\n")
	}
	table("Cold apply", r.Cold)
	b.WriteString("### Cold apply to the same two points\n\nkubectl's and Flux's engine's runs above end with their last write, and istiod's status writes come after; meshcd's cold reconcile ends when istiod has written its status on every object it applied. This table measures every engine to both points, from the start of its apply. To its last write: meshcd's kube-apiserver CPU is read from samples taken every 100 ms, at the first sample after its last write was answered. To istiod's report on every object: each peer's run goes on with informers started and meshcd's health read-back (`health.Checker.Settle`, meshcd's default interval and hold) on its objects until istiod has reported on each. meshcd's cold reconcile runs the same read-back; its proofs of effective access are off (no istiod xDS address is given), so the health reports count the same thing for every engine.\n\n")
	b.WriteString("| engine | to the last write: wall | kube-apiserver CPU | per object | to istiod's report on every object: wall | kube-apiserver CPU | per object | health reports | not healthy (istiod did not accept it, or had not reported by the timeout) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range r.Cold {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %d | %d |\n", p.Engine, secs(p.Written), secs(p.WrittenAPIServerCPU), perObject(p.WrittenAPIServerCPU, p.Objects),
			secs(p.Settled), secs(p.SettledAPIServerCPU), perObject(p.SettledAPIServerCPU, p.Objects), p.Reports, p.Unhealthy)
	}
	b.WriteString("\n")
	table("No-op (the same apply again)", r.Noop)
	if len(r.NoopRuns) > 0 {
		var parts []string
		for _, p := range r.Noop {
			if n := r.NoopRuns[p.Engine]; n > 1 {
				parts = append(parts, fmt.Sprintf("%s's no-op is the median of %d runs (requests, writes and CPU per run)", p.Engine, n))
			}
		}
		if len(parts) > 0 {
			b.WriteString(strings.Join(parts, "; ") + ".\n\n")
		}
	}
	if len(r.Drift) > 0 {
		b.WriteString("## Drift latency\n\nFrom the start of another field manager's write to the report of meshcd's drift watch, one event at a time, each on an object of its own.\n\n| kind | events | p50 | p99 | max |\n|---|---:|---:|---:|---:|\n")
		var all []time.Duration
		for _, d := range r.Drift {
			all = append(all, d.Latencies...)
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s |\n", d.Kind, len(d.Latencies), ms(percentile(d.Latencies, 50)), ms(percentile(d.Latencies, 99)), ms(slices.Max(d.Latencies)))
		}
		fmt.Fprintf(&b, "| all | %d | %s | %s | %s |\n\n", len(all), ms(percentile(all, 50)), ms(percentile(all, 99)), ms(slices.Max(all)))
		b.WriteString("Flux's engine has no watch: kustomize-controller finds drift at its next reconcile, so its latency is up to the Kustomization's `spec.interval` (most examples in kustomize-controller's docs/spec/v1/kustomizations.md use 5m; each such reconcile is the no-op above).\n\n")
	}
	if len(r.Memory) > 0 {
		b.WriteString("## Memory\n\nA `meshcd run` process on its own (built into a temp dir, following a file:// repository of the spec, its informers and drift watch synced). At the benchmark's scale it starts on the cluster where the benchmark's meshcd applied the spec, as a restarted meshcd does, so its first reconcile writes nothing; at the larger scale it starts on a cluster of its own and makes every object itself. Steady: the largest of ten VmRSS readings a second apart, from 15 s after its first reconcile is done (run returns a reconcile's garbage to the system when it ends); of it file pages: RssFile then, the pages of the binary the process touched, which do not grow with the objects; Go heap: `go_memstats_alloc_bytes` from its /metrics then; peak: the largest VmRSS read every 100 ms during a no-op reconcile a push webhook asked for. Per object is the whole steady VmRSS divided by the objects.\n\n")
		b.WriteString("| spec | owned objects | steady VmRSS | of it file pages | per object | Go heap | peak VmRSS during a no-op |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for _, m := range r.Memory {
			if m.Failed != "" {
				fmt.Fprintf(&b, "| %d namespaces × %d services | %d | failed: %s | | | | |\n", m.Namespaces, m.Services, m.Owned, strings.Join(strings.Fields(m.Failed), " "))
				continue
			}
			fmt.Fprintf(&b, "| %d namespaces × %d services | %d | %s | %s | %.1f KiB | %s | %s |\n", m.Namespaces, m.Services, m.Owned, mib(m.Steady), mib(m.File), float64(m.Steady)/1024/float64(max(1, m.Owned)), mib(m.Heap), mib(m.Peak))
		}
		if len(r.Memory) == 2 && r.Memory[1].Owned != r.Memory[0].Owned && r.Memory[0].Failed == "" && r.Memory[1].Failed == "" {
			a, z := r.Memory[0], r.Memory[1]
			fmt.Fprintf(&b, "\nBetween the two: %.1f KiB of steady VmRSS per added object.\n", float64(z.Steady-a.Steady)/1024/float64(z.Owned-a.Owned))
		}
		b.WriteString("\n")
	}
	if c := r.CLI; c != nil {
		fmt.Fprintf(&b, "## One-shot `meshcd apply`\n\n%d namespaces × %d services (%d objects), the binary run as CI runs it. Cold: %s, of which writes %s, waits for waypoints before enrollment %s, istiod's status read-back %s. No-op: %s (median of %d runs, wall time of the process).\n",
			c.Namespaces, c.Services, c.Objects, secs(c.Cold), secs(c.Writes), secs(c.Waypoints), secs(c.Health), secs(c.Noop), c.NoopRuns)
	}
	return b.String()
}

func TestBenchReport_NamesEveryFigureWithItsPeers(t *testing.T) {
	r := &benchReport{
		Namespaces: 2, Services: 1, Took: time.Minute,
		Cold: []peerRun{
			{Engine: "kubectl", Objects: 100, Wall: 2 * time.Second, Requests: 110, Writes: 100, APIServerCPU: 500 * time.Millisecond, Note: "the apply",
				Written: 2 * time.Second, WrittenAPIServerCPU: 500 * time.Millisecond, Settled: 4 * time.Second, SettledAPIServerCPU: 700 * time.Millisecond, Reports: 96},
			{Engine: "meshcd", Objects: 100, Wall: 3 * time.Second, Requests: 130, Writes: 100, APIServerCPU: 400 * time.Millisecond,
				Written: 2500 * time.Millisecond, WrittenAPIServerCPU: 300 * time.Millisecond, Settled: 3 * time.Second, SettledAPIServerCPU: 400 * time.Millisecond, Reports: 97, Unhealthy: 1},
		},
		Noop:     []peerRun{{Engine: "meshcd", Objects: 100, Wall: 20 * time.Millisecond, Requests: 4}},
		NoopRuns: map[string]int{"meshcd": 5},
		Drift:    []driftKind{{Kind: "label", Latencies: []time.Duration{10 * time.Millisecond, 30 * time.Millisecond, 20 * time.Millisecond}}},
		Memory:   []memFigures{{Namespaces: 2, Services: 1, Owned: 100, Steady: 100 << 20, File: 70 << 20, Heap: 20 << 20, Peak: 120 << 20}, {Namespaces: 4, Services: 1, Owned: 200, Steady: 150 << 20, Heap: 40 << 20, Peak: 180 << 20}},
		CLI:      &cliFigures{Namespaces: 30, Services: 5, Objects: 900, Cold: 30 * time.Second, Writes: 10 * time.Second, Waypoints: 15 * time.Second, Health: 5 * time.Second, Noop: 400 * time.Millisecond, NoopRuns: 5},
	}
	doc := r.markdown()
	for _, want := range []string{
		"Scale 2 namespaces × 1 services",
		"| kubectl | 100 | 2.00 s | 110 | 100 | 0.50 s | 5.00 ms |",
		"| meshcd | 100 | 3.00 s | 130 | 100 | 0.40 s | 4.00 ms |",
		"| meshcd | 100 | 0.02 s | 4 | 0 |",
		"| kubectl | 2.00 s | 0.50 s | 5.00 ms | 4.00 s | 0.70 s | 7.00 ms | 96 | 0 |",
		"| meshcd | 2.50 s | 0.30 s | 3.00 ms | 3.00 s | 0.40 s | 4.00 ms | 97 | 1 |",
		"meshcd's no-op is the median of 5 runs",
		"| label | 3 | 20 ms | 30 ms | 30 ms |",
		"| 2 namespaces × 1 services | 100 | 100 MiB | 70 MiB | 1024.0 KiB | 20 MiB | 120 MiB |",
		"Between the two: 512.0 KiB of steady VmRSS per added object.",
		"Cold: 30.0 s, of which writes 10.0 s, waits for waypoints before enrollment 15.0 s, istiod's status read-back 5.00 s. No-op: 0.40 s (median of 5 runs",
		"spec.interval",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("the report lacks %q:\n%s", want, doc)
		}
	}
	if p := percentile([]time.Duration{5, 1, 4, 2, 3}, 50); p != 3 {
		t.Errorf("p50 of 1..5 = %d, want 3", p)
	}
	if p := percentile([]time.Duration{5, 1, 4, 2, 3}, 99); p != 5 {
		t.Errorf("p99 of 1..5 = %d, want 5", p)
	}
}
