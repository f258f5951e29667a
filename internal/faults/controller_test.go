package faults_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	eventrecord "k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/controller"
	"github.com/meshcd/meshcd/reconciler/lister"
	"github.com/meshcd/meshcd/reconciler/source"
)

// The helpers here build a whole controller (package controller) on a git
// repository, as `meshcd run` does; env_test.go's env is a reconciler alone.

// ctlRepo is a spec repository on disk, written with go-git. Its files name
// the test's namespace as NS.
type ctlRepo struct {
	t   *testing.T
	dir string
	r   *git.Repository
	ns  string
}

func newCtlRepo(t *testing.T, ns string) *ctlRepo {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "spec.git")
	r, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}})
	if err != nil {
		t.Fatal(err)
	}
	return &ctlRepo{t: t, dir: dir, r: r, ns: ns}
}

// url is the repository as a file:// URL.
func (r *ctlRepo) url() string { return "file://" + r.dir }

// commit writes files (an empty content removes the file) and returns the
// revision as the controller reports it.
func (r *ctlRepo) commit(files map[string]string) string {
	r.t.Helper()
	wt, err := r.r.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(r.dir, name)
		if files[name] == "" {
			if _, err := wt.Remove(name); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(files[name], "NS", r.ns)), 0o644); err != nil {
			r.t.Fatal(err)
		}
		if _, err := wt.Add(name); err != nil {
			r.t.Fatal(err)
		}
	}
	h, err := wt.Commit("change "+strings.Join(names, ", "), &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Now()}})
	if err != nil {
		r.t.Fatal(err)
	}
	return "main@sha1:" + h.String()
}

// ctlConfigMap is a ConfigMap manifest in NS with one data key.
func ctlConfigMap(name, key, value string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + ", namespace: NS}\ndata: {" + key + ": " + value + "}\n"
}

// ctl is a controller on the package's cluster, with what it wrote.
type ctl struct {
	*controller.Controller
	t    *testing.T
	name string
	// status reads its status ConfigMap; admin is the test's own client.
	status *controller.StatusStore
	admin  client.Client
	// writes are its requests that changed the cluster; log is everything
	// it logged, at debug level.
	writes *clustertest.Writes
	log    *clustertest.Buffer
	// srv serves its Handler: /metrics, /healthz, /readyz and /hook.
	srv *httptest.Server
}

// newCtl builds a controller named name (its status and inventory
// ConfigMaps are meshcd-*-<name>) on src, with Kubernetes events recorded
// to the cluster; set adjusts its options. It does not run yet.
func newCtl(t *testing.T, name string, src source.Options, set func(*controller.Options)) *ctl {
	t.Helper()
	c := &ctl{t: t, name: name, writes: &clustertest.Writes{}, log: &clustertest.Buffer{}, admin: clustertest.Client(t)}
	cfg := rest.CopyConfig(clustertest.Cluster(t).RESTConfig())
	cfg.WrapTransport = c.writes.Wrap
	cl, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	broadcaster := eventrecord.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	t.Cleanup(broadcaster.Shutdown)
	recorder := broadcaster.NewRecorder(clientgoscheme.Scheme, corev1.EventSource{Component: "meshcd"})

	opts := reconciler.DefaultOptions()
	opts.Name = name
	opts.HealthTimeout = 30 * time.Second
	opts.HealthHold = time.Second
	opts.Apply.PollInterval = 100 * time.Millisecond
	listCtx, stopLists := context.WithCancel(context.Background())
	t.Cleanup(stopLists)
	lists, err := lister.Start(listCtx, cfg, cl)
	if err != nil {
		t.Fatal(err)
	}
	if src.WorkDir == "" {
		src.WorkDir = t.TempDir()
	}
	if src.Ref == (source.Ref{}) {
		src.Ref.Branch = "main"
	}
	o := controller.Options{Source: src, Reconciler: opts}
	if set != nil {
		set(&o)
	}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(c.log, ctlVerbose()), &slog.HandlerOptions{Level: slog.LevelDebug}))
	c.Controller = controller.New(cl, lists, recorder, log, o)
	c.status = &controller.StatusStore{Client: c.admin, Namespace: opts.Namespace, Name: "meshcd-status-" + name}
	c.srv = httptest.NewServer(c.Handler())
	t.Cleanup(c.srv.Close)
	return c
}

// ctlVerbose is where the controllers' logs also go: stderr with
// MESHCD_FAULTS_LOG=1, else nowhere.
func ctlVerbose() io.Writer {
	if os.Getenv("MESHCD_FAULTS_LOG") == "1" {
		return os.Stderr
	}
	return io.Discard
}

// run runs the controller until the test ends.
func (c *ctl) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	c.t.Cleanup(func() { cancel(); <-done })
}

// waitStatus polls the status until ok, for up to timeout.
func (c *ctl) waitStatus(what string, timeout time.Duration, ok func(*controller.Status) bool) *controller.Status {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s, _, err := c.status.Load(context.Background())
		if err == nil && ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("status never showed %s in %s: %+v", what, timeout, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// applied waits until rev is the last applied revision and its drift watch
// has synced, so that a change from then on is noticed.
func (c *ctl) applied(rev string) *controller.Status {
	c.t.Helper()
	s := c.waitStatus("revision "+rev+" applied", time.Minute, func(s *controller.Status) bool { return s.LastAppliedRevision == rev })
	deadline := time.Now().Add(time.Minute)
	for c.DriftWatchSynced() != rev {
		if time.Now().After(deadline) {
			c.t.Fatalf("the drift watch of %s did not sync in a minute", rev)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// events lists the Kubernetes events on the controller's status ConfigMap.
func (c *ctl) events() []corev1.Event {
	c.t.Helper()
	var list corev1.EventList
	if err := c.admin.List(context.Background(), &list, client.InNamespace(c.status.Namespace)); err != nil {
		c.t.Fatal(err)
	}
	var out []corev1.Event
	for _, e := range list.Items {
		if e.InvolvedObject.Name == c.status.Name {
			out = append(out, e)
		}
	}
	return out
}

// waitEvent waits for an event with reason on the status ConfigMap.
func (c *ctl) waitEvent(reason string, timeout time.Duration) *corev1.Event {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, e := range c.events() {
			if e.Reason == reason {
				return &e
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no %s event in %s", reason, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// get GETs path from the controller's Handler and returns the body.
func (c *ctl) get(path string) string {
	c.t.Helper()
	resp, err := http.Get(c.srv.URL + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metric is the value of one series line of /metrics, such as
// "meshcd_fights_total"; -1 when absent.
func (c *ctl) metric(series string) float64 {
	c.t.Helper()
	for _, line := range strings.Split(c.get("/metrics"), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return f
			}
		}
	}
	return -1
}

// ctlConfigMapPath is the API path of a ConfigMap, as the writes count it.
func ctlConfigMapPath(ns, name string) string {
	return "/api/v1/namespaces/" + ns + "/configmaps/" + name
}

// ctlData reads one data key of a ConfigMap; "" when it is missing.
func ctlData(t *testing.T, c client.Client, ns, name, key string) string {
	t.Helper()
	var cm corev1.ConfigMap
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &cm); err != nil {
		return ""
	}
	return cm.Data[key]
}

// ctlCensus counts, among the ConfigMaps of ns, those of want that are
// missing (lost) and those with meshcd's label that want does not name
// (orphaned).
func ctlCensus(t *testing.T, c client.Client, ns string, want ...string) (lost, orphaned int) {
	t.Helper()
	var list corev1.ConfigMapList
	if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, cm := range list.Items {
		have[cm.Name] = true
		if cm.Labels[ambient.LabelManagedBy] == ambient.ManagedByValue && !slices.Contains(want, cm.Name) {
			t.Logf("orphan: ConfigMap %s/%s", ns, cm.Name)
			orphaned++
		}
	}
	for _, w := range want {
		if !have[w] {
			t.Logf("lost: ConfigMap %s/%s", ns, w)
			lost++
		}
	}
	return lost, orphaned
}

// ctlCondition returns one condition of a status.
func ctlCondition(s *controller.Status, typ string) (status, reason, message string) {
	for _, c := range s.Conditions {
		if c.Type == typ {
			return string(c.Status), c.Reason, c.Message
		}
	}
	return "", "", ""
}
