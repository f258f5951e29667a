package controller_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/controller"
	"github.com/meshcd/meshcd/reconciler/lister"
	"github.com/meshcd/meshcd/reconciler/source"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// repo is a spec repository on disk with one ConfigMap per commit.
type repo struct {
	t   *testing.T
	dir string
	r   *git.Repository
	ns  string
}

func newRepo(t *testing.T, ns string) *repo {
	dir := filepath.Join(t.TempDir(), "spec")
	r, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}})
	if err != nil {
		t.Fatal(err)
	}
	return &repo{t: t, dir: dir, r: r, ns: ns}
}

func (r *repo) commit(value string) string {
	r.t.Helper()
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: " + r.ns + "}\ndata: {mode: " + value + "}\n"
	if err := os.WriteFile(filepath.Join(r.dir, "cm.yaml"), []byte(cm), 0o644); err != nil {
		r.t.Fatal(err)
	}
	wt, _ := r.r.Worktree()
	if _, err := wt.Add("cm.yaml"); err != nil {
		r.t.Fatal(err)
	}
	h, err := wt.Commit(value, &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Now()}})
	if err != nil {
		r.t.Fatal(err)
	}
	return "main@sha1:" + h.String()
}

func newController(t *testing.T, url, name string, interval time.Duration, secret []byte) (*controller.Controller, *controller.StatusStore, client.Client) {
	t.Helper()
	return newControllerLogging(t, url, name, os.Stderr, func(o *controller.Options) { o.Interval = interval; o.WebhookSecret = secret })
}

// newControllerLogging builds a controller that logs to w; set adjusts its
// options.
func newControllerLogging(t *testing.T, url, name string, w io.Writer, set func(*controller.Options)) (*controller.Controller, *controller.StatusStore, client.Client) {
	t.Helper()
	cfg := clustertest.Cluster(t).RESTConfig()
	c := clustertest.Client(t)
	opts := reconciler.DefaultOptions()
	opts.Name = name
	// As `meshcd run` does: informers serve the reconciles' bulk lists.
	listCtx, stopLists := context.WithCancel(context.Background())
	t.Cleanup(stopLists)
	lists, err := lister.Start(listCtx, cfg, c)
	if err != nil {
		t.Fatal(err)
	}
	o := controller.Options{
		Source:     source.Options{URL: url, Ref: source.Ref{Branch: "main"}, WorkDir: t.TempDir()},
		Reconciler: opts,
	}
	set(&o)
	ctrl := controller.New(c, lists, nil, slog.New(slog.NewTextHandler(w, nil)), o)
	return ctrl, &controller.StatusStore{Client: c, Namespace: opts.Namespace, Name: "meshcd-status-" + name}, c
}

func run(t *testing.T, ctrl *controller.Controller) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = ctrl.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitStatus(t *testing.T, st *controller.StatusStore, what string, ok func(*controller.Status) bool) *controller.Status {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, _, err := st.Load(context.Background())
		if err == nil && ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed %s: %+v", what, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func condition(s *controller.Status, typ string) (status, reason, message string) {
	for _, c := range s.Conditions {
		if c.Type == typ {
			return string(c.Status), c.Reason, c.Message
		}
	}
	return "", "", ""
}

func configMapMode(t *testing.T, c client.Client, ns string) string {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("ConfigMap")
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "settings"}, u); err != nil {
		return ""
	}
	v, _, _ := unstructured.NestedString(u.Object, "data", "mode")
	return v
}

func TestController_UnreachableRepoKeepsTheLastStateAndStalls(t *testing.T) {
	ns := clustertest.Namespace(t, nil)
	r := newRepo(t, ns)
	rev := r.commit("one")
	ctrl, st, c := newController(t, "file://"+r.dir, ns, 500*time.Millisecond, nil)
	run(t, ctrl)
	waitStatus(t, st, "the first revision applied", func(s *controller.Status) bool { return s.LastAppliedRevision == rev })

	if err := os.Rename(r.dir, r.dir+"-gone"); err != nil {
		t.Fatal(err)
	}
	s := waitStatus(t, st, "Ready=False FetchFailed", func(s *controller.Status) bool {
		status, reason, _ := condition(s, "Ready")
		return status == "False" && reason == "FetchFailed"
	})
	_, _, msg := condition(s, "Ready")
	if !strings.Contains(msg, "keeping the last applied revision") || !strings.Contains(msg, rev) {
		t.Fatalf("the message says what is kept: %q", msg)
	}
	if status, _, _ := condition(s, "Stalled"); status != "True" {
		t.Fatalf("an unreachable repository stalls: %+v", s.Conditions)
	}
	if s.LastAppliedRevision != rev {
		t.Fatalf("last applied revision changed to %q", s.LastAppliedRevision)
	}
	if configMapMode(t, c, ns) != "one" {
		t.Fatal("the applied state must stay while the repository is unreachable")
	}
}

func TestController_SignedWebhookTriggersAReconcileAtOnce(t *testing.T) {
	ns := clustertest.Namespace(t, nil)
	r := newRepo(t, ns)
	first := r.commit("one")
	secret := []byte("webhook-secret")
	ctrl, st, c := newController(t, "file://"+r.dir, ns, 0, secret) // no interval: only the webhook triggers
	srv := httptest.NewServer(ctrl.Handler())
	defer srv.Close()
	if resp, err := http.Get(srv.URL + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz before the first reconcile: %v %v", resp, err)
	}
	run(t, ctrl)
	waitStatus(t, st, "the first revision", func(s *controller.Status) bool { return s.LastAppliedRevision == first })

	second := r.commit("two")
	body := []byte(`{"ref":"refs/heads/main"}`)
	post := func(sig string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/hook", bytes.NewReader(body))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-Hub-Signature-256", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("sha256=" + strings.Repeat("0", 64)); code != http.StatusUnauthorized {
		t.Fatalf("a bad signature must be refused, got %d", code)
	}
	time.Sleep(300 * time.Millisecond)
	if configMapMode(t, c, ns) != "one" {
		t.Fatal("a refused webhook triggered a reconcile")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	start := time.Now()
	if code := post("sha256=" + hex.EncodeToString(mac.Sum(nil))); code != http.StatusAccepted {
		t.Fatalf("a signed push is accepted, got %d", code)
	}
	waitStatus(t, st, "the pushed revision", func(s *controller.Status) bool { return s.LastAppliedRevision == second })
	t.Logf("pushed revision applied %s after the webhook", time.Since(start).Round(time.Millisecond))
	if configMapMode(t, c, ns) != "two" {
		t.Fatal("the pushed change is not applied")
	}
	if resp, err := http.Get(srv.URL + "/metrics"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics: %v %v", resp, err)
	}
}
