package faults_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler"
)

// The points of a reconcile a write can fall on. A kill before a write
// stops meshcd with that write unsent; a kill after it stops meshcd once
// the write is done but before it goes on.
const (
	pointIntent     = "the intent inventory write"
	pointStages     = "the first write of a later apply stage"
	pointApply      = "an apply write"
	pointFirstPrune = "the first prune write"
	pointPrune      = "a later prune write"
	pointFinal      = "the final inventory write"
)

// classify names the point of the last write of seq, from the writes
// before it: the intent inventory write comes first, then the apply in
// stages (Namespaces' labels before the rest), then the prune (deletes, and
// the labels of partially owned objects), then the final inventory write.
func classify(seq []string) string {
	cur, prior := seq[len(seq)-1], seq[:len(seq)-1]
	isInventory := func(s string) bool { return strings.Contains(s, "/configmaps/meshcd-inventory-") }
	isNamespace := func(s string) bool {
		_, rest, ok := strings.Cut(s, "/api/v1/namespaces/")
		return ok && !strings.Contains(rest, "/")
	}
	isObject := func(s string) bool { return !isInventory(s) && !isNamespace(s) && !strings.HasPrefix(s, "DELETE ") }
	isPrune := func(s string, before []string) bool {
		if strings.HasPrefix(s, "DELETE ") {
			return true
		}
		if !isNamespace(s) {
			return false
		}
		for _, p := range before {
			if isObject(p) {
				return true
			}
		}
		return false
	}
	if isInventory(cur) {
		if len(prior) == 0 {
			return pointIntent
		}
		return pointFinal
	}
	if isPrune(cur, prior) {
		for i, p := range prior {
			if isPrune(p, prior[:i]) {
				return pointPrune
			}
		}
		return pointFirstPrune
	}
	if isObject(cur) {
		sawNamespace := false
		for _, p := range prior {
			if isObject(p) {
				return pointApply
			}
			sawNamespace = sawNamespace || isNamespace(p)
		}
		if sawNamespace {
			return pointStages
		}
	}
	return pointApply
}

// errKilled is what the killed process's requests end with.
var errKilled = errors.New("meshcd killed")

// kill runs one reconcile of e's spec that is killed at write k, before
// or after it is sent. It returns the point the kill fell on; "" when the
// reconcile wrote fewer than k+1 times and ran to its end.
func (e *env) kill(k int, after bool, concurrency int) string {
	e.t.Helper()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	w := &clustertest.Writes{}
	var (
		point  string
		killed atomic.Bool // the kill happened, not only its write was seen
	)
	w.Before = func(i int, _ *http.Request) error {
		if i != k {
			return nil
		}
		point = classify(w.First(i + 1))
		if !after {
			killed.Store(true)
			cancel(errKilled)
			return errKilled
		}
		return nil
	}
	w.After = func(i int, _ *http.Request, _ *http.Response) {
		if i == k && after {
			killed.Store(true)
			cancel(errKilled)
		}
	}
	opts := e.opts
	e.opts.Apply.Concurrency = concurrency
	r := e.process(w.Wrap)
	e.opts = opts
	_, err := r.Reconcile(ctx, e.dir)
	if point != "" && !killed.Load() {
		e.t.Fatalf("write %d (%s) failed before the kill after it", k, point)
	}
	if point != "" && err == nil && !after {
		e.t.Fatalf("a reconcile killed before write %d (%s) reported success", k, point)
	}
	return point
}

// transition is a change of the spec from one version to another.
type transition struct {
	name     string
	from, to version
}

var transitions = []transition{{"A to B", versionA, versionB}, {"B to A", versionB, versionA}}

// killAndRecover converges e on t.from, kills a reconcile of t.to at write
// k, lets a new process reconcile once, and records what it finds. It
// reports false when the reconcile had fewer writes than k+1.
func (e *env) killAndRecover(tr transition, k int, after bool, concurrency int) bool {
	e.t.Helper()
	e.write(tr.from)
	e.converge()
	before := e.uids(e.survivors(tr.from, tr.to))
	e.write(tr.to)
	point := e.kill(k, after, concurrency)
	if point == "" {
		return false
	}
	when := "before"
	if after {
		when = "after"
	}
	res, err := e.process(nil).Reconcile(context.Background(), e.dir)
	ok := err == nil && res.Reason == reconciler.ReasonSucceeded
	why := ""
	if !ok {
		why = fmt.Sprintf("the next reconcile: %v", err)
	} else if ok, why = e.converged(); !ok {
		why = "after the next reconcile: " + why
	}
	lost, orphaned, unintended, notes := e.count(tr.to, before)
	if !ok || len(notes) > 0 {
		e.t.Logf("%s, killed %s write %d (%s), concurrency %d: %s %v", tr.name, when, k, point, concurrency, why, notes)
	}
	record(e.t, outcome{Kind: "kill " + when + " " + point, Converged: ok, Lost: lost, Orphaned: orphaned, Unintended: unintended})
	return true
}

// sequence records the writes of an unkilled reconcile of tr and the point
// each falls on, and leaves e converged on tr.from again.
func (e *env) sequence(tr transition) []string {
	e.t.Helper()
	e.write(tr.from)
	e.converge()
	e.write(tr.to)
	w := &clustertest.Writes{}
	if _, err := e.process(w.Wrap).Reconcile(context.Background(), e.dir); err != nil {
		e.t.Fatal(err)
	}
	_, seq := w.Take()
	points := make([]string, len(seq))
	for i := range seq {
		points[i] = classify(seq[:i+1])
	}
	e.write(tr.from)
	e.converge()
	return points
}

// TestKill_EveryPointConvergesOnTheNextReconcile kills meshcd at each
// write of a spec change that adds and removes objects, in both
// directions, and lets a new process reconcile once. The short form kills
// once at each point; the long form at every write, before and after it,
// with one and eight objects applied at a time.
func TestKill_EveryPointConvergesOnTheNextReconcile(t *testing.T) {
	e := newEnv(t, nil)
	start, kills := time.Now(), 0
	for _, tr := range transitions {
		points := e.sequence(tr)
		t.Logf("%s: %d writes: %v", tr.name, len(points), points)
		if !long() {
			covered := map[string]bool{}
			for k, p := range points {
				if !covered[p] {
					covered[p] = true
					if !e.killAndRecover(tr, k, false, e.opts.Apply.Concurrency) {
						t.Fatalf("%s: the kill at write %d (%s) never happened", tr.name, k, p)
					}
					kills++
				}
			}
			continue
		}
		for _, concurrency := range []int{1, 8} {
			for _, after := range []bool{false, true} {
				for k := 0; e.killAndRecover(tr, k, after, concurrency); k++ {
					kills++
				}
			}
		}
	}
	t.Logf("%d kills in %s", kills, time.Since(start).Round(time.Millisecond))
	if kills == 0 {
		t.Fatal("no kill happened")
	}
}

// TestRestart_TheAPIServerStopsMidApply stops kube-apiserver as meshcd
// sends a write, starts it again, and lets the same process reconcile:
// once in the short form, five times (at five points) in the long form.
func TestRestart_TheAPIServerStopsMidApply(t *testing.T) {
	c := clustertest.Cluster(t)
	e := newEnv(t, nil)
	tr := transitions[0]
	points := e.sequence(tr)
	var at []int
	seen := map[string]bool{}
	for k, p := range points {
		if p != pointIntent && !seen[p] {
			seen[p] = true
			at = append(at, k)
		}
	}
	if !long() {
		at = at[len(at)/2 : len(at)/2+1]
	}
	for _, k := range at {
		e.write(tr.from)
		e.converge()
		before := e.uids(e.survivors(tr.from, tr.to))
		e.write(tr.to)
		w := &clustertest.Writes{}
		stopped := false
		w.Before = func(i int, _ *http.Request) error {
			if i == k && !stopped {
				stopped = true
				if err := c.StopAPIServer(); err != nil {
					t.Errorf("stop kube-apiserver: %v", err)
				}
			}
			return nil
		}
		r := e.process(w.Wrap)
		_, err := r.Reconcile(context.Background(), e.dir)
		if !stopped {
			t.Fatalf("the reconcile ended before write %d", k)
		}
		if err == nil {
			t.Fatalf("the reconcile succeeded with kube-apiserver stopped at write %d: the fault was not injected", k)
		}
		t.Logf("reconcile with kube-apiserver stopped at write %d (%s): %v", k, points[k], err)
		start := time.Now()
		if err := c.StartAPIServer(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Logf("kube-apiserver back in %s", time.Since(start).Round(time.Millisecond))
		// The same process goes on: its next reconciles, on its interval,
		// within a bound.
		ok, why := false, ""
		for i := 0; i < 10 && !ok; i++ {
			res, err := r.Reconcile(context.Background(), e.dir)
			ok = err == nil && res.Reason == reconciler.ReasonSucceeded
			why = fmt.Sprintf("%v", err)
			if !ok {
				time.Sleep(time.Second)
			}
		}
		if ok {
			ok, why = e.converged()
		}
		lost, orphaned, unintended, notes := e.count(tr.to, before)
		if !ok || len(notes) > 0 {
			t.Logf("restart at write %d (%s): %s %v", k, points[k], why, notes)
		}
		record(t, outcome{Kind: "kube-apiserver restarted at " + points[k], Converged: ok, Lost: lost, Orphaned: orphaned, Unintended: unintended})
	}
}
