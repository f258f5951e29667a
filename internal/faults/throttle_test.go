package faults_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler"
)

// requests counts every request and the 429 answers, and how long after a
// 429 the same request was sent again.
type requests struct {
	mu       sync.Mutex
	total    int
	throttle int
	after    []string
	pending  map[string]time.Time
	gaps     []time.Duration
}

func (q *requests) wrap(rt http.RoundTripper) http.RoundTripper {
	return clustertest.RoundTripperFunc(func(req *http.Request) (*http.Response, error) {
		key := req.Method + " " + req.URL.String()
		q.mu.Lock()
		q.total++
		if at, ok := q.pending[key]; ok {
			q.gaps = append(q.gaps, time.Since(at))
			delete(q.pending, key)
		}
		q.mu.Unlock()
		resp, err := rt.RoundTrip(req)
		if err == nil && resp.StatusCode == http.StatusTooManyRequests {
			q.mu.Lock()
			q.throttle++
			q.after = append(q.after, resp.Header.Get("Retry-After"))
			q.pending[key] = time.Now()
			q.mu.Unlock()
		}
		return resp, err
	})
}

// throttled makes the API server's priority and fairness give user one
// seat and reject, with 429, what does not fit.
func throttled(t *testing.T, e *env, user string) {
	t.Helper()
	name := "faults-throttled-" + e.ns
	objs := []*unstructured.Unstructured{
		{Object: map[string]any{
			"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": map[string]any{"name": name},
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
			"subjects": []any{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}},
		}},
		{Object: map[string]any{
			"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration", "metadata": map[string]any{"name": name},
			"spec": map[string]any{"type": "Limited", "limited": map[string]any{
				"nominalConcurrencyShares": int64(1), "lendablePercent": int64(0), "borrowingLimitPercent": int64(0),
				"limitResponse": map[string]any{"type": "Reject"},
			}},
		}},
		{Object: map[string]any{
			"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema", "metadata": map[string]any{"name": name},
			"spec": map[string]any{
				"matchingPrecedence":         int64(500),
				"priorityLevelConfiguration": map[string]any{"name": name},
				"distinguisherMethod":        map[string]any{"type": "ByUser"},
				"rules": []any{map[string]any{
					"subjects":         []any{map[string]any{"kind": "User", "user": map[string]any{"name": user}}},
					"resourceRules":    []any{map[string]any{"verbs": []any{"*"}, "apiGroups": []any{"*"}, "resources": []any{"*"}, "clusterScope": true, "namespaces": []any{"*"}}},
					"nonResourceRules": []any{map[string]any{"verbs": []any{"*"}, "nonResourceURLs": []any{"*"}}},
				}},
			},
		}},
	}
	for _, o := range objs {
		if err := e.admin.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.admin.Delete(context.Background(), o) })
	}
	// The API server's flow control picks up the new schema from its informer.
	time.Sleep(2 * time.Second)
}

// TestThrottling_MeshcdBacksOffAndConverges gives meshcd one seat of the
// API server's concurrency, so that its parallel apply meets 429s: it
// waits as the server says, sends no request in a loop, and converges. A
// peer reconcile of the same change without throttling is the baseline.
func TestThrottling_MeshcdBacksOffAndConverges(t *testing.T) {
	big := version{items: make([]int, 0, 60)}
	for i := 3; i < 63; i++ {
		big.items = append(big.items, i)
	}
	run := func(e *env) (*requests, time.Duration, error) {
		e.write(versionA)
		e.converge()
		e.write(big)
		q := &requests{pending: map[string]time.Time{}}
		start := time.Now()
		res, err := e.process(q.wrap).Reconcile(context.Background(), e.dir)
		if err == nil && res.Reason != reconciler.ReasonSucceeded {
			t.Fatalf("reconcile: %s", res.Reason)
		}
		return q, time.Since(start), err
	}
	peer, peerTook, err := run(newEnv(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, nil)
	throttled(t, e, "faults-throttled")
	e.user = "faults-throttled"
	before := e.uids(nil)
	q, took, err := run(e)
	e.user = ""
	t.Logf("unthrottled: %d requests in %s; throttled: %d requests, %d answered 429 (Retry-After %v), in %s; err %v",
		peer.total, peerTook.Round(time.Millisecond), q.total, q.throttle, uniq(q.after), took.Round(time.Millisecond), err)
	if q.throttle == 0 {
		t.Fatal("no request was throttled: the fault was not injected")
	}
	short := time.Duration(0)
	for _, g := range q.gaps {
		if short == 0 || g < short {
			short = g
		}
	}
	t.Logf("%d retries after a 429, the soonest %s after it", len(q.gaps), short.Round(time.Millisecond))
	// No hot loop: every request that met a 429 was sent again only after
	// a wait, and the throttled reconcile sent no more than its peer's
	// requests plus one retry per 429.
	backedOff := len(q.gaps) > 0 && short >= 500*time.Millisecond && q.total <= peer.total+q.throttle+5
	ok := err == nil && backedOff
	if ok {
		ok, _ = e.converged()
	}
	lost, orphaned, unintended, notes := e.count(big, before)
	if len(notes) > 0 {
		t.Logf("%v", notes)
	}
	record(t, outcome{Kind: "throttling (429 from priority and fairness)", Converged: ok, Lost: lost, Orphaned: orphaned, Unintended: unintended})
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
