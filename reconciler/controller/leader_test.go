package controller_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler/controller"
)

// logBuffer is a log sink that several goroutines may write.
type logBuffer struct{ clustertest.Buffer }

// reconciles counts the reconciles a controller logged.
func (l *logBuffer) reconciles() int { return l.Count("msg=reconciled") }

// electionRepo returns a namespace, a repository with one commit in it,
// and a client for the leases.
func electionRepo(t *testing.T) (string, *repo, kubernetes.Interface) {
	t.Helper()
	ns := clustertest.Namespace(t, nil)
	r := newRepo(t, ns)
	r.commit("one")
	kube, err := kubernetes.NewForConfig(clustertest.Cluster(t).RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return ns, r, kube
}

func TestController_OnlyTheLeaderReconcilesAndAFollowerTakesOver(t *testing.T) {
	ns, r, kube := electionRepo(t)
	election := controller.Election{LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 250 * time.Millisecond}
	type replica struct {
		id     string
		log    *logBuffer
		cancel context.CancelFunc
		done   chan error
	}
	var c client.Client
	var ctrlName string
	start := func(id string) *replica {
		rp := &replica{id: id, log: &logBuffer{}, done: make(chan error, 1)}
		ctrl, _, cl := newControllerLogging(t, "file://"+r.dir, ns, rp.log, func(o *controller.Options) {
			o.Interval = 300 * time.Millisecond
			o.Election = election
		})
		c, ctrlName = cl, ctrl.LeaseName()
		ctx, cancel := context.WithCancel(context.Background())
		rp.cancel = cancel
		go func() { rp.done <- ctrl.RunElected(ctx, kube.CoordinationV1(), id) }()
		t.Cleanup(func() { cancel(); <-rp.done })
		return rp
	}
	a, b := start("replica-a"), start("replica-b")

	holder := func() string {
		l := &coordinationv1.Lease{}
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: "meshcd-system", Name: ctrlName}, l); err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("never: %s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("the first commit applied", func() bool { return configMapMode(t, c, ns) == "one" })
	leader, follower := a, b
	if holder() == b.id {
		leader, follower = b, a
	}
	waitFor("the leader reconciles on its interval", func() bool { return leader.log.reconciles() >= 3 })
	if n := follower.log.reconciles(); n != 0 {
		t.Fatalf("the follower %s reconciled %d times while %s led", follower.id, n, leader.id)
	}
	t.Logf("%s leads with %d reconciles, %s follows with 0", leader.id, leader.log.reconciles(), follower.id)

	// The leader stops and releases the lease; the follower takes over and
	// applies the next commit.
	leader.cancel()
	if err := <-leader.done; err != nil {
		t.Fatalf("a cancelled leader returns nil, got %v", err)
	}
	leader.done <- nil // for the cleanup
	stopped := time.Now()
	r.commit("two")
	waitFor("the follower applies the next commit", func() bool { return configMapMode(t, c, ns) == "two" })
	t.Logf("the follower applied the next commit %s after the leader stopped", time.Since(stopped).Round(time.Millisecond))
	if h := holder(); h != follower.id {
		t.Fatalf("the lease is held by %q, want %q", h, follower.id)
	}
	if follower.log.reconciles() == 0 {
		t.Fatal("the follower took the lease but logged no reconcile")
	}
}

// A leader whose reconcile loop fails must not go on renewing its lease:
// RunElected returns the loop's error and releases the lease, so that the
// process ends and another replica can lead.
func TestController_RunElectedEndsAndReleasesTheLeaseWhenTheLoopFails(t *testing.T) {
	ns, r, kube := electionRepo(t)
	log := &logBuffer{}
	ctrl, _, c := newControllerLogging(t, "file://"+r.dir, ns, log, func(o *controller.Options) {
		o.Cron = "every five minutes" // Run refuses it at once
		o.Election = controller.Election{LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 250 * time.Millisecond}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var err error
	start := time.Now()
	go func() { done <- ctrl.RunElected(ctx, kube.CoordinationV1(), "replica-a") }()
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		cancel()
		<-done
		t.Fatalf("RunElected went on for 20 s after its loop failed; log:\n%s", log.String())
	}
	t.Logf("RunElected returned %s after it started: %v", time.Since(start).Round(time.Millisecond), err)
	if err == nil || errors.Is(err, controller.ErrLostLeadership) || !strings.Contains(err.Error(), `cron schedule "every five minutes"`) {
		t.Fatalf("RunElected returns the loop's error, got %v", err)
	}
	if !strings.Contains(log.String(), "msg=leading") {
		t.Fatalf("the replica never led, so the test shows nothing; log:\n%s", log.String())
	}
	l := &coordinationv1.Lease{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "meshcd-system", Name: ctrl.LeaseName()}, l); err != nil {
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" {
		t.Fatalf("the lease is still held by %q after the loop failed", *l.Spec.HolderIdentity)
	}
}
