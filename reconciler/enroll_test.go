package reconciler_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/apply"
)

// seen is one watch event, in etcd's order (rv) and as received (at).
type seen struct {
	rv   int64
	at   time.Time
	kind string
	typ  watch.EventType
	obj  *unstructured.Unstructured
}

// recorder keeps the watch events of a namespace: the Namespace itself,
// and the Gateways, Deployments and EndpointSlices in it. The order of
// writes is read from here, not from meshcd's own account.
type recorder struct {
	mu     sync.Mutex
	events []seen
}

func record(t *testing.T, ns string) *recorder {
	t.Helper()
	dyn, err := dynamic.NewForConfig(clustertest.Cluster(t).RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{}
	var (
		wg       sync.WaitGroup
		watchers []watch.Interface
	)
	t.Cleanup(func() {
		cancel()
		for _, wi := range watchers {
			wi.Stop()
		}
		wg.Wait()
	})
	for _, w := range []struct {
		gvr  schema.GroupVersionResource
		kind string
	}{
		{schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, "Namespace"},
		{schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"}, "Gateway"},
		{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "Deployment"},
		{schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}, "EndpointSlice"},
	} {
		var (
			wi  watch.Interface
			err error
		)
		if w.kind == "Namespace" {
			wi, err = dyn.Resource(w.gvr).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + ns})
		} else {
			wi, err = dyn.Resource(w.gvr).Namespace(ns).Watch(ctx, metav1.ListOptions{})
		}
		if err != nil {
			t.Fatalf("watch %s: %v", w.kind, err)
		}
		watchers = append(watchers, wi)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range wi.ResultChan() {
				u, ok := ev.Object.(*unstructured.Unstructured)
				if !ok {
					continue
				}
				rv, _ := strconv.ParseInt(u.GetResourceVersion(), 10, 64)
				r.mu.Lock()
				r.events = append(r.events, seen{rv: rv, at: time.Now(), kind: w.kind, typ: ev.Type, obj: u})
				r.mu.Unlock()
			}
		}()
	}
	return r
}

// first is the earliest event, in etcd's order, that match accepts.
func (r *recorder) first(match func(seen) bool) *seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	var best *seen
	for i := range r.events {
		if e := r.events[i]; match(e) && (best == nil || e.rv < best.rv) {
			best = &r.events[i]
		}
	}
	return best
}

// all is every event match accepts.
func (r *recorder) all(match func(seen) bool) []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []seen
	for _, e := range r.events {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// waypointServes matches the event in which waypoint name first has a
// ready endpoint behind its Service.
func waypointServes(name string) func(seen) bool {
	return func(e seen) bool {
		if e.kind != "EndpointSlice" || e.typ == watch.Deleted || e.obj.GetLabels()["kubernetes.io/service-name"] != name {
			return false
		}
		eps, _, _ := unstructured.NestedSlice(e.obj.Object, "endpoints")
		for _, ep := range eps {
			if m, ok := ep.(map[string]any); ok {
				if ready, _, _ := unstructured.NestedBool(m, "conditions", "ready"); ready {
					return true
				}
			}
		}
		return false
	}
}

// nsLabel matches Namespace events whose label key is value ("" matches a
// missing label).
func nsLabel(key, value string) func(seen) bool {
	return func(e seen) bool {
		if e.kind != "Namespace" {
			return false
		}
		v, ok := e.obj.GetLabels()[key]
		if value == "" {
			return !ok
		}
		return v == value
	}
}

func gatewayDeleted(name string) func(seen) bool {
	return func(e seen) bool { return e.kind == "Gateway" && e.typ == watch.Deleted && e.obj.GetName() == name }
}

// cordon marks every node unschedulable, so no new pod can run, until the
// returned function (also run at cleanup) undoes it.
func cordon(t *testing.T, c client.Client) func() {
	t.Helper()
	set := func(v bool) {
		nodes := &corev1.NodeList{}
		if err := c.List(context.Background(), nodes); err != nil {
			t.Fatal(err)
		}
		for i := range nodes.Items {
			n := &nodes.Items[i]
			patch := client.MergeFrom(n.DeepCopy())
			n.Spec.Unschedulable = v
			if err := c.Patch(context.Background(), n, patch); err != nil {
				t.Fatalf("node %s unschedulable=%v: %v", n.Name, v, err)
			}
		}
	}
	set(true)
	done := false
	undo := func() {
		if !done {
			done = true
			set(false)
		}
	}
	t.Cleanup(undo)
	return undo
}

// reconcileUntil reconciles until ok holds, within two minutes.
func (e *env) reconcileUntil(what string, ok func(*reconciler.Result) bool) *reconciler.Result {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		res := e.reconcile()
		if ok(res) {
			return res
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s did not happen within 2m; last result %s, applied %s", what, res.Reason, res.Applied.Summary())
		}
	}
}

func (e *env) namespaceLabel(key string) string {
	e.t.Helper()
	ns, err := e.get("v1", "Namespace", "", e.ns)
	if err != nil {
		e.t.Fatal(err)
	}
	return ns.GetLabels()[key]
}

func TestEnrollment_TheLabelWaitsForPodsThatCanRun(t *testing.T) {
	e := newEnv(t, func(o *reconciler.Options) {
		o.Apply.WaypointTimeout, o.HealthTimeout, o.HealthHold = 3*time.Second, 5*time.Second, time.Second
	})
	rec := record(t, e.ns)
	uncordon := cordon(t, e.client)
	e.spec(map[string]string{"mesh.yaml": meshNamespace})

	res := e.reconcile()
	if res.Reason == reconciler.ReasonSucceeded {
		t.Fatalf("with a waypoint that cannot run, the reconcile must not succeed")
	}
	for _, h := range res.Health {
		if h.Object == "Namespace "+e.ns && h.Healthy {
			t.Fatalf("the waiting Namespace is reported healthy: %+v", h)
		}
	}
	var waiting *apply.Change
	for i, c := range res.Applied.Changes {
		if c.Object == "Namespace "+e.ns && c.Action == apply.Waiting {
			waiting = &res.Applied.Changes[i]
		}
	}
	if waiting == nil || !strings.Contains(waiting.Reason, "waypoint "+e.ns+"/waypoint is not ready") {
		t.Fatalf("the Namespace must be reported waiting, with the reason: %+v", res.Applied.Changes)
	}
	t.Logf("waiting: %s", waiting.Reason)
	if got := e.namespaceLabel(ambient.LabelUseWaypoint); got != "" {
		t.Fatalf("use-waypoint written before the waypoint can serve: %q", got)
	}
	if got := e.namespaceLabel(ambient.LabelDataplaneMode); got != "ambient" {
		t.Fatalf("dataplane-mode may go first and should have: %q", got)
	}

	uncordon()
	e.reconcileUntil("enrollment", func(*reconciler.Result) bool { return e.namespaceLabel(ambient.LabelUseWaypoint) == "waypoint" })

	ready := rec.first(waypointServes("waypoint"))
	labelled := rec.first(nsLabel(ambient.LabelUseWaypoint, "waypoint"))
	if ready == nil || labelled == nil {
		t.Fatalf("the watch missed the waypoint's ready endpoint (%v) or the label (%v)", ready != nil, labelled != nil)
	}
	if labelled.rv < ready.rv {
		t.Fatalf("the label (rv %d) was written before the waypoint had a ready endpoint (rv %d)", labelled.rv, ready.rv)
	}
	t.Logf("window between the waypoint's first ready endpoint and its label: %s (rv %d -> %d)", labelled.at.Sub(ready.at).Round(time.Millisecond), ready.rv, labelled.rv)
}

func TestEnrollment_RemovingOrRenamingAWaypointMovesTheLabelsFirst(t *testing.T) {
	e := newEnv(t, func(o *reconciler.Options) {
		o.Apply.WaypointTimeout, o.HealthTimeout, o.HealthHold = 3*time.Second, 5*time.Second, time.Second
		o.MaxPrune = 1
	})
	rec := record(t, e.ns)
	e.spec(map[string]string{"mesh.yaml": meshNamespace})
	e.reconcileUntil("enrollment", func(r *reconciler.Result) bool { return r.Reason == reconciler.ReasonSucceeded })

	// Rename, while no new pod can run: the label keeps naming the old
	// waypoint, which is kept, until the new one serves.
	uncordon := cordon(t, e.client)
	e.spec(map[string]string{"mesh.yaml": strings.Replace(meshNamespace, "waypoint: {}", "waypoint: {name: waypoint-v2}", 1)})
	res := e.reconcile()
	if got := e.namespaceLabel(ambient.LabelUseWaypoint); got != "waypoint" {
		t.Fatalf("while waypoint-v2 cannot serve, the label must stay on the old waypoint, got %q", got)
	}
	if _, err := e.get("gateway.networking.k8s.io/v1", "Gateway", e.ns, "waypoint"); err != nil {
		t.Fatalf("the old waypoint must stay while a label names it: %v", err)
	}
	if res.Pruned.Count(apply.Waiting) != 1 || res.Reason == reconciler.ReasonSucceeded {
		t.Fatalf("the old Gateway's prune must wait and the reconcile not succeed: %s, %+v", res.Reason, res.Pruned)
	}
	t.Logf("prune: %s", res.Pruned.Summary())
	d, err := e.rec.Diff(context.Background(), e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Order) != 2 || !strings.Contains(d.Order[0], "until then it stays waypoint") || !strings.HasPrefix(d.Order[1], "Gateway "+e.ns+"/waypoint is deleted only after Namespace "+e.ns) {
		t.Fatalf("meshcd diff must show the order: %q", d.Order)
	}
	uncordon()
	e.reconcileUntil("the move to waypoint-v2", func(r *reconciler.Result) bool { return r.Reason == reconciler.ReasonSucceeded })

	moved := rec.first(nsLabel(ambient.LabelUseWaypoint, "waypoint-v2"))
	ready := rec.first(waypointServes("waypoint-v2"))
	oldGone := rec.first(gatewayDeleted("waypoint"))
	if moved == nil || ready == nil || oldGone == nil {
		t.Fatalf("the watch missed an event: label moved %v, v2 ready %v, old Gateway deleted %v", moved != nil, ready != nil, oldGone != nil)
	}
	if !(ready.rv < moved.rv && moved.rv < oldGone.rv) {
		t.Fatalf("want v2 ready (rv %d) < label moved (rv %d) < old Gateway deleted (rv %d)", ready.rv, moved.rv, oldGone.rv)
	}
	firstLabel := rec.first(nsLabel(ambient.LabelUseWaypoint, "waypoint"))
	for _, ev := range rec.all(nsLabel(ambient.LabelUseWaypoint, "")) {
		if ev.rv > firstLabel.rv {
			t.Fatalf("the Namespace was without a waypoint label at rv %d during the rename", ev.rv)
		}
	}

	// Removal: the label goes before the Gateway.
	e.spec(map[string]string{"mesh.yaml": strings.Replace(meshNamespace, "  waypoint: {}\n", "", 1)})
	e.reconcileUntil("the removal", func(r *reconciler.Result) bool { return r.Reason == reconciler.ReasonSucceeded })
	unlabelled := rec.first(func(ev seen) bool { return nsLabel(ambient.LabelUseWaypoint, "")(ev) && ev.rv > moved.rv })
	gone := rec.first(gatewayDeleted("waypoint-v2"))
	if unlabelled == nil || gone == nil || unlabelled.rv > gone.rv {
		t.Fatalf("the label must disappear before the Gateway: label removed %+v, Gateway deleted %+v", unlabelled, gone)
	}
	t.Logf("removal: label off at rv %d, Gateway deleted at rv %d, %s apart", unlabelled.rv, gone.rv, gone.at.Sub(unlabelled.at).Round(time.Millisecond))
}
