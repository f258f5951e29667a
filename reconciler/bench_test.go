package reconciler_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/normalize"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/internal/localcluster"
	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/drift"
	"github.com/meshcd/meshcd/reconciler/health"
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

// cpuSamples are kube-apiserver's CPU read every 100 ms during a run, so
// that its CPU up to a moment inside the run can be read afterwards.
type cpuSamples struct {
	mu   sync.Mutex
	at   []time.Time
	cpu  []time.Duration
	stop chan struct{}
	done chan struct{}
}

// sampleAPIServer takes a first sample now and samples until Stop.
func sampleAPIServer(c *localcluster.Cluster) *cpuSamples {
	s := &cpuSamples{stop: make(chan struct{}), done: make(chan struct{})}
	take := func() {
		cpu := processCPU(c)["kube-apiserver"]
		s.mu.Lock()
		s.at, s.cpu = append(s.at, time.Now()), append(s.cpu, cpu)
		s.mu.Unlock()
	}
	take()
	go func() {
		defer close(s.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				take()
				return
			case <-t.C:
				take()
			}
		}
	}()
	return s
}

// Stop takes a last sample and stops sampling.
func (s *cpuSamples) Stop() {
	close(s.stop)
	<-s.done
}

// Since is kube-apiserver's CPU from the first sample to the first sample
// taken at or after t, and when that sample was taken.
func (s *cpuSamples) Since(t time.Time) (time.Duration, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := min(sort.Search(len(s.at), func(i int) bool { return !s.at[i].Before(t) }), len(s.at)-1)
	return s.cpu[i] - s.cpu[0], s.at[i]
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

// benchScale is the scale the environment variable env sets,
// "namespaces×services" such as 20x10 for a quick check; ns × svcs unless set.
func benchScale(b *testing.B, env string, ns, svcs int) (namespaces, services int) {
	v := os.Getenv(env)
	if v == "" {
		return ns, svcs
	}
	if _, err := fmt.Sscanf(strings.ReplaceAll(v, "×", "x"), "%dx%d", &namespaces, &services); err != nil || namespaces < 1 || services < 1 {
		b.Fatalf("%s=%q: want namespaces x services, such as 20x10", env, v)
	}
	return namespaces, services
}

// counted returns a copy of cfg whose requests w counts.
func counted(cfg *rest.Config) (*rest.Config, *clustertest.Writes) {
	w := &clustertest.Writes{}
	out := rest.CopyConfig(cfg)
	out.WrapTransport = w.Wrap
	return out, w
}

// measure runs f and returns its wall time, this process's CPU, and
// kube-apiserver's and the whole cluster's CPU during it.
func measure(c *localcluster.Cluster, f func()) (wall, self, apiserver, cluster time.Duration) {
	before, cpu, start := processCPU(c), cpuTime(), time.Now()
	f()
	wall, self = time.Since(start), cpuTime()-cpu
	procs, total := cpuSince(c, before)
	return wall, self, procs["kube-apiserver"], total
}

// renderStream writes the rendered objects of dir as one YAML stream and
// returns its path and the objects.
func renderStream(b *testing.B, dir string) (string, []*unstructured.Unstructured) {
	bundle, err := renderer.Render(dir, renderer.DefaultOptions())
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
	return file, bundle.Objects
}

// peerCluster starts a local cluster of its own with the namespaces made.
func peerCluster(b *testing.B, ctx context.Context, namespaces []string) *localcluster.Cluster {
	c, err := localcluster.Start(ctx, localcluster.Options{})
	if err != nil {
		b.Fatal(err)
	}
	cl, err := client.New(c.RESTConfig(), client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, ns := range namespaces {
		if err := cl.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
	}
	return c
}

// settle extends a peer's cold run to the point where meshcd's cold
// reconcile ends: istiod has reported on every one of objs. It starts
// informers and runs meshcd's health read-back with meshcd's default
// interval and hold, as the reconcile does after its writes. run's
// Settled figures are its own and the wait's; its Written figures, those
// to its last write, are its own.
func settle(b *testing.B, ctx context.Context, c *localcluster.Cluster, objs []*unstructured.Unstructured, run *peerRun) {
	cl, err := client.New(c.RESTConfig(), client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	opts := reconciler.DefaultOptions()
	var reports []health.Report
	wall, _, apiserver, _ := measure(c, func() {
		listCtx, stop := context.WithCancel(ctx)
		defer stop()
		var lists *lister.Lister
		if lists, err = lister.Start(listCtx, c.RESTConfig(), cl); err != nil {
			return
		}
		checker := &health.Checker{Client: cl, Lists: lists}
		reports, err = checker.Settle(ctx, objs, 10*time.Minute, opts.Apply.PollInterval, opts.HealthHold)
	})
	if err != nil {
		b.Fatalf("%s: waiting for istiod's status: %v", run.Engine, err)
	}
	run.Reports, run.Unhealthy = readBack(reports)
	run.Written, run.WrittenAPIServerCPU = run.Wall, run.APIServerCPU
	run.Settled, run.SettledAPIServerCPU = run.Wall+wall, run.APIServerCPU+apiserver
}

// readBack counts the reports of a health read-back, and those not
// healthy: istiod did not accept the object, or had not reported on it
// by the read-back's timeout.
func readBack(reports []health.Report) (n, unhealthy int) {
	for _, r := range reports {
		if !r.Healthy {
			unhealthy++
		}
	}
	return len(reports), unhealthy
}

// kubectlRequest matches a request line of kubectl -v=6: the structured
// "Response" line of newer releases, or "VERB URL STATUS" of older ones.
var kubectlRequest = regexp.MustCompile(`"Response" verb="([A-Z]+)" url="([^"]*)"|\] (GET|POST|PUT|PATCH|DELETE) (https?://\S+)`)

// kubectlApply runs kubectl apply --server-side of file and returns what
// it cost, its requests counted from its -v=6 log.
func kubectlApply(b *testing.B, c *localcluster.Cluster, file string, objects int, note string) peerRun {
	cmd := exec.Command(filepath.Join(localcluster.BinDir(), "kubectl"), "--kubeconfig", c.Kubeconfig(), "-v=6",
		"apply", "--server-side", "--field-manager", "kubectl-bench", "-f", file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	var err error
	run := peerRun{Engine: "kubectl", Objects: objects, Note: note}
	run.Wall, _, run.APIServerCPU, run.ClusterCPU = measure(c, func() { err = cmd.Run() })
	if err != nil {
		b.Fatalf("kubectl apply: %v\n%s", err, tail(stderr.Bytes()))
	}
	run.ClientCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	for _, m := range kubectlRequest.FindAllStringSubmatch(stderr.String(), -1) {
		verb, url := m[1]+m[3], m[2]+m[4]
		run.Requests++
		req, _ := http.NewRequest(verb, url, nil)
		if req != nil && clustertest.IsWrite(req) {
			run.Writes++
		}
	}
	if run.Requests < objects {
		b.Fatalf("kubectl's -v=6 log shows %d requests for %d objects: its format changed?\n%s", run.Requests, objects, tail(stderr.Bytes()))
	}
	return run
}

// fluxApply applies objs as kustomize-controller v1 does on each interval
// (internal/controller/kustomization_controller.go: the ResourceManager
// of its apply, with the owner, concurrency and ApplyOptions it sets by
// default), on fresh copies as its build makes.
func fluxApply(b *testing.B, ctx context.Context, c *localcluster.Cluster, objs []*unstructured.Unstructured, note string) peerRun {
	cfg, w := counted(c.RESTConfig())
	cl, err := client.New(cfg, client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	copies := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		copies[i] = o.DeepCopy()
	}
	poller := polling.NewStatusPoller(cl, cl.RESTMapper(), polling.Options{})
	// ssa.Owner{Field: r.ControllerName, Group: kustomizev1.GroupVersion.Group}
	// and --concurrent-ssa's default 4 (main.go).
	manager := ssa.NewResourceManager(cl, poller, ssa.Owner{Field: "kustomize-controller", Group: "kustomize.toolkit.fluxcd.io"})
	manager.SetOwnerLabels(copies, "bench", "flux-system")
	manager.SetConcurrency(4)
	if err := normalize.UnstructuredList(copies); err != nil {
		b.Fatal(err)
	}
	opts := ssa.DefaultApplyOptions()
	opts.ExclusionSelector = map[string]string{"kustomize.toolkit.fluxcd.io/reconcile": "disabled", "kustomize.toolkit.fluxcd.io/ssa": "Ignore"}
	opts.IfNotPresentSelector = map[string]string{"kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent"}
	opts.ForceSelector = map[string]string{"kustomize.toolkit.fluxcd.io/force": "Enabled"}
	opts.Cleanup = ssa.ApplyCleanupOptions{
		Annotations: []string{corev1.LastAppliedConfigAnnotation, "kustomize.toolkit.fluxcd.io/checksum", "fluxcd.io/sync-checksum"},
		Labels:      []string{"fluxcd.io/sync-gc-mark"},
		FieldManagers: []ssa.FieldManager{
			{Name: "kubectl", OperationType: metav1.ManagedFieldsOperationApply},
			{Name: "kubectl", OperationType: metav1.ManagedFieldsOperationUpdate},
			{Name: "before-first-apply", OperationType: metav1.ManagedFieldsOperationUpdate},
			{Name: "kustomize-controller", OperationType: metav1.ManagedFieldsOperationUpdate},
		},
		Exclusions: map[string]string{"kustomize.toolkit.fluxcd.io/ssa": "Merge"},
	}
	w.Take()
	w.TakeRequests()
	run := peerRun{Engine: "Flux's engine", Objects: len(copies), Note: note}
	var cs *ssa.ChangeSet
	run.Wall, run.ClientCPU, run.APIServerCPU, run.ClusterCPU = measure(c, func() { cs, err = manager.ApplyAllStaged(ctx, copies, opts) })
	if err != nil {
		b.Fatalf("Flux's ApplyAllStaged: %v", err)
	}
	run.Writes, _ = w.Take()
	run.Requests = w.TakeRequests()
	if len(cs.Entries) != len(copies) {
		b.Fatalf("Flux's engine reported %d of %d objects", len(cs.Entries), len(copies))
	}
	return run
}

// driftEvents makes n drift events, one at a time and each on an object
// of its own, of three kinds in turn, and measures each from the start of
// the change's write to the watch's report of that object.
func driftEvents(b *testing.B, ctx context.Context, c client.Client, events <-chan drift.Event, namespaces []string, services, n int) []driftKind {
	kinds := []driftKind{
		{Kind: "label changed (as kubectl label)"},
		{Kind: "field patched (an HTTPRoute's weight)"},
		{Kind: "field added (a port on a per-version Service)"},
	}
	for i := range n {
		k := i % 3
		// Event i touches service i/3 of the namespaces in turn.
		j := i / 3
		ns, svc := namespaces[j%len(namespaces)], fmt.Sprintf("svc-%d", (j/len(namespaces))%services)
		var (
			obj    client.Object
			object string
			patch  client.Patch
			owner  = "kubectl-patch"
		)
		switch k {
		case 0:
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("v1")
			u.SetKind("Service")
			u.SetNamespace(ns)
			u.SetName(svc + "-v1")
			obj, object, owner = u, "Service "+ns+"/"+svc+"-v1", "kubectl-label"
			patch = client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"meshcd.dev/spec-name":"drifted"}}}`))
		case 1:
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("gateway.networking.k8s.io/v1")
			u.SetKind("HTTPRoute")
			u.SetNamespace(ns)
			u.SetName(svc)
			obj, object = u, "HTTPRoute "+ns+"/"+svc
			patch = client.RawPatch(types.JSONPatchType, []byte(`[{"op":"replace","path":"/spec/rules/0/backendRefs/0/weight","value":50}]`))
		case 2:
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("v1")
			u.SetKind("Service")
			u.SetNamespace(ns)
			u.SetName(svc + "-v2")
			obj, object = u, "Service "+ns+"/"+svc+"-v2"
			patch = client.RawPatch(types.StrategicMergePatchType, []byte(`{"spec":{"ports":[{"name":"debug","port":9090}]}}`))
		}
		changed := time.Now()
		if err := c.Patch(ctx, obj, patch, client.FieldOwner(owner)); err != nil {
			b.Fatalf("drift %d on %s: %v", i, object, err)
		}
		timeout := time.After(30 * time.Second)
		for seen := false; !seen; {
			select {
			case ev := <-events:
				if ev.Drift.Object == object {
					kinds[k].Latencies = append(kinds[k].Latencies, ev.At.Sub(changed))
					seen = true
				}
			case <-timeout:
				b.Fatalf("drift %d on %s not noticed in 30 s", i, object)
			}
		}
	}
	return kinds
}

// buildMeshcd builds bin/meshcd into a temp dir.
func buildMeshcd(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "meshcd")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/meshcd/meshcd/cmd/meshcd").CombinedOutput()
	if err != nil {
		b.Fatalf("go build meshcd: %v\n%s", err, out)
	}
	return bin
}

// vmRSS is the resident set of process pid and the part of it that is
// file pages (the binary's), in bytes.
func vmRSS(pid int) (rss, file int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		key, v, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		switch key {
		case "VmRSS":
			rss = kb * 1024
		case "RssFile":
			file = kb * 1024
		}
	}
	return rss, file
}

// runMemory commits dir to a git repository, runs `meshcd run` on it as
// the instance name, and reads its memory: the steady VmRSS (the largest of
// ten readings a second apart from 15 s after its first reconcile
// succeeded), the Go heap then, and the peak VmRSS during a no-op
// reconcile a push webhook asks for. A first reconcile that did not succeed leaves the figures
// empty and says why in Failed.
func runMemory(b *testing.B, bin string, c *localcluster.Cluster, dir, name string) memFigures {
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-q", "-m", "spec"}} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	secret := filepath.Join(b.TempDir(), "webhook-secret")
	if err := os.WriteFile(secret, []byte("bench"), 0o600); err != nil {
		b.Fatal(err)
	}
	var stderr clustertest.Buffer // written by the process's copier while read here
	cmd := exec.Command(bin, "run", "--repo", "file://"+dir, "--branch", "main", "--path", ".", "--name", name,
		"--kubeconfig", c.Kubeconfig(), "--listen", addr, "--interval", "1h", "--drift-mode", "report",
		"--webhook-secret-file", secret, "--work-dir", b.TempDir(), "--timeout", "15m")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	}()
	metric := func(re *regexp.Regexp) int64 {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return 0
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := re.FindSubmatch(body)
		if m == nil {
			return 0
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return int64(v)
	}
	reconciles := regexp.MustCompile(`(?m)^meshcd_reconcile_duration_seconds_count\{[^}]*\} (\S+)`)
	heap := regexp.MustCompile(`(?m)^go_memstats_alloc_bytes (\S+)`)
	// waitFor waits for reconcile n; a run that does not get there is a
	// failed row of the table, not a failed benchmark.
	waitFor := func(n int64, every time.Duration, sample func()) string {
		deadline := time.Now().Add(30 * time.Minute)
		for metric(reconciles) < n {
			if time.Now().After(deadline) {
				return fmt.Sprintf("reconcile %d did not finish in 30 min: %s", n, tail([]byte(stderr.String())))
			}
			select {
			case <-exited:
				return "meshcd run exited: " + tail([]byte(stderr.String()))
			default:
			}
			sample()
			time.Sleep(every)
		}
		return ""
	}
	var m memFigures
	if m.Failed = waitFor(1, time.Second, func() {}); m.Failed != "" {
		b.Log(m.Failed)
		return m
	}
	if metric(regexp.MustCompile(`(?m)^meshcd_reconcile_duration_seconds_count\{reason="ReconciliationSucceeded"\} (\S+)`)) < 1 {
		// The process logs the reconcile's outcome after its metric: wait
		// for that line, so the row says why.
		for deadline := time.Now().Add(time.Minute); !strings.Contains(stderr.String(), "msg=reconciled") && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(time.Second) // the error, if any, comes in the line after
		m.Failed = "the first reconcile did not succeed: " + tail([]byte(stderr.String()))
		b.Log(m.Failed)
		return m
	}
	// run returns a reconcile's garbage to the system when the reconcile
	// has ended, after its metrics were recorded: at 38,000 objects a
	// reading right after them still saw twice the resident memory.
	time.Sleep(15 * time.Second)
	for range 10 {
		time.Sleep(time.Second)
		if rss, file := vmRSS(cmd.Process.Pid); rss > m.Steady {
			m.Steady, m.File = rss, file
		}
	}
	m.Heap = metric(heap)
	body := []byte(`{"ref":"refs/heads/main"}`)
	mac := hmac.New(sha256.New, []byte("bench"))
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/hook", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b.Fatalf("push webhook: %s", resp.Status)
	}
	if failed := waitFor(2, 100*time.Millisecond, func() { rss, _ := vmRSS(cmd.Process.Pid); m.Peak = max(m.Peak, rss) }); failed != "" {
		b.Log(failed)
		return memFigures{Failed: failed}
	}
	m.Peak = max(m.Peak, m.Steady)
	return m
}

// memoryAt measures a meshcd run process holding namespaces × services on
// a cluster of its own, where it makes every object itself.
func memoryAt(b *testing.B, ctx context.Context, bin, prefix string, namespaces, services int) memFigures {
	dir := b.TempDir()
	cluster := peerCluster(b, ctx, largeSpec(b, dir, prefix, namespaces, services))
	defer func() { _ = cluster.Stop() }()
	_, objs := renderStream(b, dir)
	m := runMemory(b, bin, cluster, dir, "memory")
	m.Namespaces, m.Services, m.Owned = namespaces, services, len(objs)
	return m
}

// cliApply measures the one-shot `meshcd apply` of namespaces × services
// on a local cluster of its own, as a CI pipeline meets it. The cold apply runs in this process
// with the options the CLI's flags default to, so that the times of its
// writes split it; the no-ops run bin as a CI pipeline does. With
// MESHCD_BENCH_CPUPROFILE set, a no-op of a fresh reconciler (as the CLI
// makes, with no informers) is profiled into that file.
func cliApply(b *testing.B, ctx context.Context, bin, prefix string, namespaces, services int) *cliFigures {
	dir := b.TempDir()
	cluster := peerCluster(b, ctx, largeSpec(b, dir, prefix, namespaces, services))
	defer func() { _ = cluster.Stop() }()
	cfg, w := counted(cluster.RESTConfig())
	var (
		mu     sync.Mutex
		writes []time.Time
		// gateways is when the first waypoint Gateway was written.
		gateways time.Time
	)
	w.After = func(_ int, req *http.Request, _ *http.Response) {
		mu.Lock()
		defer mu.Unlock()
		writes = append(writes, time.Now())
		if gateways.IsZero() && strings.Contains(req.URL.Path, "/gateways/") {
			gateways = time.Now()
		}
	}
	cl, err := client.New(cfg, client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	opts := reconciler.DefaultOptions()
	opts.Name = prefix
	start := time.Now()
	res, err := reconciler.New(cl, opts).Reconcile(ctx, dir)
	if err != nil {
		b.Fatalf("meshcd apply cold: %v", err)
	}
	out := &cliFigures{Namespaces: namespaces, Services: services, Objects: len(res.Applied.Changes), Cold: time.Since(start)}
	// The cold time is split at the writes: a gap of more than 250 ms
	// between two writes after the first Gateway is a wait for waypoints
	// (the apply writes back to back otherwise); after the last write the
	// reconcile reads back istiod's status.
	mu.Lock()
	last := start
	for _, t := range writes {
		if gap := t.Sub(last); !gateways.IsZero() && !t.Before(gateways) && gap > 250*time.Millisecond {
			out.Waypoints += gap
		}
		last = t
	}
	mu.Unlock()
	out.Health = out.Cold - last.Sub(start)
	out.Writes = out.Cold - out.Waypoints - out.Health

	var noops []time.Duration
	for range 5 {
		cmd := exec.Command(bin, "apply", dir, "--name", prefix, "--kubeconfig", cluster.Kubeconfig())
		t := time.Now()
		if printed, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("meshcd apply no-op: %v\n%s", err, tail(printed))
		}
		noops = append(noops, time.Since(t))
	}
	slices.Sort(noops)
	out.Noop, out.NoopRuns = noops[len(noops)/2], len(noops)
	if path := os.Getenv("MESHCD_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		plain, err := client.New(cluster.RESTConfig(), client.Options{})
		if err != nil {
			b.Fatal(err)
		}
		// The client the CLI makes (cmd/meshcd/kube.go).
		direct, err := lister.NewDirect(cluster.RESTConfig(), plain)
		if err != nil {
			b.Fatal(err)
		}
		_ = pprof.StartCPUProfile(f)
		t := time.Now()
		_, err = reconciler.New(direct, opts).Reconcile(ctx, dir)
		pprof.StopCPUProfile()
		b.Logf("in-process one-shot no-op: %s", time.Since(t))
		if err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// BenchmarkReconcile_200Namespaces10Services applies 200 namespaces × 10
// services (MESHCD_BENCH_SCALE changes the scale) with three engines, each
// on a local cluster of its own: kubectl apply --server-side, Flux's
// engine (fluxcd/pkg/ssa as kustomize-controller runs it) and meshcd, cold
// and then as a no-op. It then measures meshcd's drift latency over 100
// events and the memory of a `meshcd run` process holding the spec.
// MESHCD_BENCH_REPORT names a file to write the figures to as Markdown
// (make bench: docs/benchmarks.md).
func BenchmarkReconcile_200Namespaces10Services(b *testing.B) {
	cluster := clustertest.Cluster(b)
	ctx := context.Background()
	nsCount, svcCount := benchScale(b, "MESHCD_BENCH_SCALE", 200, 10)
	memNS, memSvcs := benchScale(b, "MESHCD_BENCH_MEMORY_SCALE", 1000, 5)
	bin := buildMeshcd(b)
	iter := 0
	for b.Loop() {
		began := time.Now()
		iter++
		rep := &benchReport{Namespaces: nsCount, Services: svcCount, NoopRuns: map[string]int{}}
		mDir, kDir, fDir := b.TempDir(), b.TempDir(), b.TempDir()
		mNS := largeSpec(b, mDir, fmt.Sprintf("m%d", iter), nsCount, svcCount)
		kNS := largeSpec(b, kDir, fmt.Sprintf("k%d", iter), nsCount, svcCount)
		fNS := largeSpec(b, fDir, fmt.Sprintf("f%d", iter), nsCount, svcCount)

		// kubectl apply --server-side of the rendered objects, on a cluster
		// of its own, so that no engine pays for the status istiod writes
		// for another's objects; then the same apply again.
		kFile, kObjs := renderStream(b, kDir)
		kc := peerCluster(b, ctx, kNS)
		kCold := kubectlApply(b, kc, kFile, len(kObjs), "the apply; no wait for status")
		settle(b, ctx, kc, kObjs, &kCold)
		kNoop := kubectlApply(b, kc, kFile, len(kObjs), "the same apply again")
		if err := kc.Stop(); err != nil {
			b.Fatal(err)
		}

		// Flux's engine, on a cluster of its own: the cold apply, then
		// the same call again, as kustomize-controller does each interval.
		_, fObjs := renderStream(b, fDir)
		fc := peerCluster(b, ctx, fNS)
		fCold := fluxApply(b, ctx, fc, fObjs, "ApplyAllStaged; no wait for health (kustomize-controller's default)")
		settle(b, ctx, fc, fObjs, &fCold)
		fNoop := fluxApply(b, ctx, fc, fObjs, "the same ApplyAllStaged again: a GET and a dry-run per object")
		if err := fc.Stop(); err != nil {
			b.Fatal(err)
		}

		c := clustertest.Client(b)
		for _, ns := range mNS {
			if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
				b.Fatal(err)
			}
		}

		// meshcd: the same objects, cold, with staging, the wait for the
		// waypoints before their namespaces are enrolled, and the wait for
		// istiod's status on every object.
		cfg, w := counted(cluster.RESTConfig())
		mc, err := client.New(cfg, client.Options{})
		if err != nil {
			b.Fatal(err)
		}
		opts := reconciler.DefaultOptions()
		opts.Name = fmt.Sprintf("bench-%d", iter)
		opts.Apply.WaypointTimeout = 5 * time.Minute
		opts.HealthTimeout = 5 * time.Minute
		var (
			res       *reconciler.Result
			lists     *lister.Lister
			stopLists context.CancelFunc
		)
		mCold := peerRun{Engine: "meshcd", Note: "staged apply, waypoint waits, istiod's status on every object; informers started"}
		w.Take()
		w.TakeRequests()
		samples := sampleAPIServer(cluster)
		coldStart := time.Now()
		mCold.Wall, mCold.ClientCPU, mCold.APIServerCPU, mCold.ClusterCPU = measure(cluster, func() {
			// As `meshcd run` does: informers serve the bulk lists.
			var listCtx context.Context
			listCtx, stopLists = context.WithCancel(ctx)
			if lists, err = lister.Start(listCtx, cfg, mc); err != nil {
				return
			}
			opts.Lists = lists
			res, err = reconciler.New(mc, opts).Reconcile(ctx, mDir)
		})
		if err != nil {
			b.Fatalf("cold reconcile: %v", err)
		}
		samples.Stop()
		defer stopLists()
		// The apply itself ends with its last write; the rest of the cold
		// reconcile waits for istiod's status on every object.
		var lastWrite time.Time
		mCold.WrittenAPIServerCPU, lastWrite = samples.Since(w.Last())
		mCold.Written = lastWrite.Sub(coldStart)
		mCold.Objects = len(res.Applied.Changes)
		mCold.Settled, mCold.SettledAPIServerCPU = mCold.Wall, mCold.APIServerCPU
		mCold.Reports, mCold.Unhealthy = readBack(res.Health)
		mCold.Writes, _ = w.Take()
		mCold.Requests = w.TakeRequests()
		rec := reconciler.New(mc, opts)
		if _, err := rec.Reconcile(ctx, mDir); err != nil { // a reconciler of its own, warmed once
			b.Fatalf("first no-op reconcile: %v", err)
		}
		w.Take()
		w.TakeRequests()

		// No-op reconciles: the median of 5.
		var noops []peerRun
		for range 5 {
			run := peerRun{Engine: "meshcd", Objects: mCold.Objects, Note: "a whole reconcile: render, validate, apply, prune, istiod's status"}
			run.Wall, run.ClientCPU, run.APIServerCPU, run.ClusterCPU = measure(cluster, func() { _, err = rec.Reconcile(ctx, mDir) })
			if err != nil {
				b.Fatalf("no-op reconcile: %v", err)
			}
			run.Writes, _ = w.Take()
			run.Requests = w.TakeRequests()
			noops = append(noops, run)
		}
		slices.SortFunc(noops, func(a, b peerRun) int { return int(a.Wall - b.Wall) })
		mNoop := noops[len(noops)/2]
		noopWrites := 0
		for _, n := range noops {
			noopWrites += n.Writes
		}
		rep.NoopRuns["meshcd"] = len(noops)
		rep.Cold = []peerRun{kCold, fCold, mCold}
		rep.Noop = []peerRun{kNoop, fNoop, mNoop}

		// Drift: 100 events of three kinds, each reported by the watch.
		desired, err := rec.Desired(ctx, mDir)
		if err != nil {
			b.Fatal(err)
		}
		watchCtx, cancel := context.WithCancel(ctx)
		events := make(chan drift.Event, 64)
		watcher := &drift.Watcher{Client: mc, Informers: lists} // as run does, through the reconciles' informers
		synced := make(chan struct{})
		watcher.Synced = func() { close(synced) }
		go func() { _ = watcher.Watch(watchCtx, desired, func(ev drift.Event) { events <- ev }) }()
		select { // the informers list every object first
		case <-synced:
		case <-time.After(2 * time.Minute):
			b.Fatal("the drift watch did not sync in 2 min")
		}
		// One object per event: at a small scale, fewer events.
		rep.Drift = driftEvents(b, ctx, mc, events, mNS, svcCount, min(100, 3*nsCount*svcCount))
		cancel()
		// Correct the drift as `meshcd run --drift-mode correct` would, taking
		// the fields back from the other managers.
		forced := opts
		forced.Apply.Force = true
		if _, err := reconciler.New(mc, forced).Reconcile(ctx, mDir); err != nil {
			b.Fatalf("correcting reconcile: %v", err)
		}
		if n, _ := w.Take(); n < min(100, 3*nsCount*svcCount) {
			b.Fatalf("the correcting reconcile wrote %d objects for %d drift events", n, min(100, 3*nsCount*svcCount))
		}
		stopLists()

		// Memory: a meshcd run process of its own holding the spec.
		mem := runMemory(b, bin, cluster, mDir, opts.Name)
		mem.Namespaces, mem.Services, mem.Owned = nsCount, svcCount, mCold.Objects
		rep.Memory = append(rep.Memory, mem, memoryAt(b, ctx, bin, fmt.Sprintf("r%d", iter), memNS, memSvcs))
		// The one-shot CLI, at 30 namespaces × 5 services.
		rep.CLI = cliApply(b, ctx, bin, fmt.Sprintf("c%d", iter), 30, 5)
		b.Logf("meshcd apply of %d objects: cold %s (writes %s, waypoint waits %s, health read-back %s), no-op %s",
			rep.CLI.Objects, rep.CLI.Cold.Round(time.Millisecond), rep.CLI.Writes.Round(time.Millisecond), rep.CLI.Waypoints.Round(time.Millisecond), rep.CLI.Health.Round(time.Millisecond), rep.CLI.Noop.Round(time.Millisecond))
		rep.Took = time.Since(began)
		for _, p := range append(rep.Cold, rep.Noop...) {
			b.Logf("%-14s %6d objects %10s %6d requests %6d writes, kube-apiserver CPU %s (%s per object), cluster %s, client %s: %s",
				p.Engine, p.Objects, p.Wall.Round(time.Millisecond), p.Requests, p.Writes, p.APIServerCPU.Round(10*time.Millisecond),
				perObject(p.APIServerCPU, p.Objects), p.ClusterCPU.Round(10*time.Millisecond), p.ClientCPU.Round(10*time.Millisecond), p.Note)
		}
		for _, d := range rep.Drift {
			b.Logf("drift %s: %d events, p50 %s, p99 %s, max %s", d.Kind, len(d.Latencies), percentile(d.Latencies, 50), percentile(d.Latencies, 99), slices.Max(d.Latencies))
		}
		b.Logf("meshcd's writes done after %s of %s, kube-apiserver CPU then %s", mCold.Written.Round(time.Millisecond), mCold.Wall.Round(time.Millisecond), mCold.WrittenAPIServerCPU.Round(10*time.Millisecond))
		for _, p := range rep.Cold {
			b.Logf("%-14s until istiod reported on every object: %s, kube-apiserver CPU %s (%s per object), %d health reports, %d not healthy",
				p.Engine, p.Settled.Round(time.Millisecond), p.SettledAPIServerCPU.Round(10*time.Millisecond), perObject(p.SettledAPIServerCPU, p.Objects), p.Reports, p.Unhealthy)
		}
		for _, m := range rep.Memory {
			b.Logf("meshcd run at %d × %d: %d objects, steady RSS %s (file pages %s), Go heap %s, peak RSS during a no-op %s", m.Namespaces, m.Services, m.Owned, mib(m.Steady), mib(m.File), mib(m.Heap), mib(m.Peak))
		}
		b.ReportMetric(float64(mCold.Objects), "objects")
		b.ReportMetric(kCold.Wall.Seconds(), "kubectl-cold-s")
		b.ReportMetric(fCold.Wall.Seconds(), "flux-cold-s")
		b.ReportMetric(mCold.Wall.Seconds(), "meshcd-cold-s")
		b.ReportMetric(mCold.Written.Seconds(), "meshcd-apply-s")
		b.ReportMetric(fNoop.Wall.Seconds(), "flux-noop-s")
		b.ReportMetric(float64(fNoop.Requests), "flux-noop-requests")
		b.ReportMetric(mNoop.Wall.Seconds(), "noop-median-s")
		b.ReportMetric(float64(mNoop.Requests), "noop-requests")
		b.ReportMetric(float64(noopWrites), "noop-writes")
		b.ReportMetric(float64(percentile(append(append(rep.Drift[0].Latencies, rep.Drift[1].Latencies...), rep.Drift[2].Latencies...), 99).Microseconds())/1000, "drift-p99-ms")
		b.ReportMetric(float64(rep.Memory[0].Steady)/(1<<20), "run-RSS-MiB")
		if path := os.Getenv("MESHCD_BENCH_REPORT"); path != "" {
			if err := os.WriteFile(path, []byte(rep.markdown()), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func tail(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}
