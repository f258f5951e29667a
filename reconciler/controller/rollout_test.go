package controller_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/dataplane"
	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler/controller"
)

// commitFile commits one file with content and returns the revision.
func (r *repo) commitFile(name, content, message string) string {
	r.t.Helper()
	if err := os.WriteFile(filepath.Join(r.dir, name), []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
	wt, _ := r.r.Worktree()
	if _, err := wt.Add(name); err != nil {
		r.t.Fatal(err)
	}
	h, err := wt.Commit(message, &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Now()}})
	if err != nil {
		r.t.Fatal(err)
	}
	return "main@sha1:" + h.String()
}

func TestController_AManualStageStartsOnTheCommitThatPromotesIt(t *testing.T) {
	a, b := clustertest.Namespace(t, nil), clustertest.Namespace(t, nil)
	repo := newRepo(t, a)
	spec := func(promote string) string {
		return fmt.Sprintf(`apiVersion: meshcd.dev/v1alpha1
kind: MeshNamespace
metadata: {name: %[1]s}
spec: {waypoint: {}}
---
apiVersion: meshcd.dev/v1alpha1
kind: MeshNamespace
metadata: {name: %[2]s}
spec: {waypoint: {}}
---
apiVersion: meshcd.dev/v1alpha1
kind: DataplaneRollout
metadata: {name: proxies}
spec:
  bundle: "1.31.1"
  waypoints:
    stages:
      - {name: first, namespaces: [%[1]s], gates: {programmed: true, ready: true}}
      - {name: second, namespaces: [%[2]s], approval: manual}
%[3]s`, a, b, promote)
	}
	repo.commitFile("mesh.yaml", spec(""), "roll out 1.31.1")
	name := "approval-" + a[len(a)-6:]
	// No interval: what moves the rollout between commits is the
	// controller's own rollout poll.
	ctrl, _, c := newControllerLogging(t, repo.dir, name, os.Stderr, func(o *controller.Options) { o.RolloutPoll = 300 * time.Millisecond })
	run(t, ctrl)

	target, err := dataplane.Lookup("1.31.1")
	if err != nil {
		t.Fatal(err)
	}
	store := &dataplane.Store{Client: c, Namespace: "meshcd-system", Name: "meshcd-rollout-" + name}
	waitRollout := func(what string, ok func(*dataplane.State) bool) *dataplane.State {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			states, _, err := store.Load(context.Background())
			if st := states["proxies"]; err == nil && st != nil && ok(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("the rollout never %s: %+v", what, states["proxies"])
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	st := waitRollout("paused for approval", func(st *dataplane.State) bool {
		return st.Phase == dataplane.PhasePaused && st.StageName == "second"
	})
	t.Logf("before the promote commit: %s", st.Message)
	if img := waypointImage(t, c, a); img != target.Proxy {
		t.Fatalf("stage first must have moved %s to %s, it runs %s", a, target.Proxy, img)
	}
	before := waypointImage(t, c, b)
	if before == target.Proxy {
		t.Fatalf("stage second moved before its approval")
	}
	// It stays paused: nothing but a commit starts it.
	time.Sleep(2 * time.Second)
	if img := waypointImage(t, c, b); img != before {
		t.Fatalf("stage second moved without a promote commit: %s", img)
	}

	rev := repo.commitFile("mesh.yaml", spec("  promote: second\n"), "promote second")
	ctrl.Trigger("push")
	waitRollout("succeeded after the promote commit", func(st *dataplane.State) bool { return st.Phase == dataplane.PhaseSucceeded })
	if img := waypointImage(t, c, b); img != target.Proxy {
		t.Fatalf("after %s, %s runs %s, want %s", rev, b, img, target.Proxy)
	}
}

func waypointImage(t *testing.T, c client.Client, ns string) string {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "waypoint"}, d); err != nil {
		return ""
	}
	for _, ct := range d.Spec.Template.Spec.Containers {
		if ct.Name == "istio-proxy" {
			return ct.Image
		}
	}
	return ""
}
