package reconciler_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/internal/localcluster"
	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/apply"
	"github.com/meshcd/meshcd/reconciler/drift"
	"github.com/meshcd/meshcd/reconciler/lister"
)

// newWatcher returns a drift watcher on the cluster, informing through a
// lister of its own that stops with ctx.
func newWatcher(ctx context.Context, t testing.TB, c *localcluster.Cluster, cl client.Client) *drift.Watcher {
	t.Helper()
	lists, err := lister.Start(ctx, c.RESTConfig(), cl)
	if err != nil {
		t.Fatal(err)
	}
	return &drift.Watcher{Client: cl, Informers: lists}
}

// watch starts a drift watch on the env's desired objects and returns the
// channel of drift events.
func (e *env) watch(ctx context.Context) <-chan drift.Event {
	e.t.Helper()
	desired, err := e.rec.Desired(context.Background(), e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	events := make(chan drift.Event, 16)
	w := newWatcher(ctx, e.t, clustertest.Cluster(e.t), e.client)
	synced := make(chan struct{})
	w.Synced = func() { close(synced) }
	go func() {
		if err := w.Watch(ctx, desired, func(ev drift.Event) { events <- ev }); err != nil {
			e.t.Errorf("watch: %v", err)
		}
	}()
	select { // nothing changes before the informers have listed
	case <-synced:
	case <-time.After(time.Minute):
		e.t.Fatal("the drift watch did not sync in a minute")
	}
	return events
}

func TestDrift_ManualLabelIsDetectedReportedAndCorrected(t *testing.T) {
	e := newEnv(t, nil)
	e.spec(map[string]string{"mesh.yaml": meshNamespace + "---\n" + orders, "app.yaml": ordersApp})
	e.reconcile()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := e.watch(ctx)

	ns, err := e.get("v1", "Namespace", "", e.ns)
	if err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	patchLabel(t, e.client, ns, ambient.LabelUseWaypoint, "none")
	var ev drift.Event
	select {
	case ev = <-events:
	case <-time.After(5 * time.Second):
		t.Fatal("drift not noticed within 5 s")
	}
	latency := ev.At.Sub(changed)
	t.Logf("drift noticed %s after the change: %+v", latency.Round(time.Millisecond), ev.Drift)
	if latency > time.Second {
		t.Errorf("drift noticed after %s, want under 1 s", latency)
	}
	if ev.Drift.Object != "Namespace "+e.ns {
		t.Fatalf("drifted object %q", ev.Drift.Object)
	}
	found := false
	for _, f := range ev.Drift.Fields {
		if strings.HasSuffix(f.Path, "istio.io~1use-waypoint") {
			found = true
			if f.Manager != "kubectl-label" || f.Desired != "waypoint" || f.Live != "none" || f.Time == nil {
				t.Fatalf("the report names who changed what and when: %+v", f)
			}
		}
	}
	if !found {
		t.Fatalf("the use-waypoint label is not in the report: %+v", ev.Drift.Fields)
	}

	// correct mode: re-apply, taking the field back.
	if err := e.rec.Correct(context.Background(), ev.Desired.Object); err != nil {
		t.Fatal(err)
	}
	ns, _ = e.get("v1", "Namespace", "", e.ns)
	if ns.GetLabels()[ambient.LabelUseWaypoint] != "waypoint" {
		t.Fatalf("label not corrected: %v", ns.GetLabels())
	}
	rep, err := e.rec.Drift(context.Background(), e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Objects) != 0 {
		t.Fatalf("drift remains after correction: %+v", rep.Objects)
	}
}

func TestDrift_ReportModeLeavesTheChangeAlone(t *testing.T) {
	e := newEnv(t, nil)
	e.spec(map[string]string{"mesh.yaml": meshNamespace + "---\n" + orders, "app.yaml": ordersApp})
	e.reconcile()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := e.watch(ctx)
	svc, err := e.get("v1", "Service", e.ns, "orders-v2")
	if err != nil {
		t.Fatal(err)
	}
	patchLabel(t, e.client, svc, "team", "payments")
	patchLabel(t, e.client, svc, ambient.LabelManagedBy, "someone-else")
	select {
	case ev := <-events:
		if ev.Drift.Object != "Service "+e.ns+"/orders-v2" {
			t.Fatalf("drifted object %q", ev.Drift.Object)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("drift not noticed")
	}
	// Report mode does nothing more: the change stays.
	time.Sleep(500 * time.Millisecond)
	svc, _ = e.get("v1", "Service", e.ns, "orders-v2")
	if svc.GetLabels()[ambient.LabelManagedBy] != "someone-else" {
		t.Fatal("report mode must leave the change alone")
	}
	rep, err := e.rec.Drift(context.Background(), e.dir)
	if err != nil || len(rep.Objects) != 1 {
		t.Fatalf("one-shot drift report: %v %+v", err, rep)
	}
}

// The hello lab without a waypoint: the route is applied (its finding
// allowed) and istiod says it will not be respected.
const helloRoute = `apiVersion: v1
kind: Service
metadata: {name: helloworld, namespace: NS}
spec: {selector: {app: helloworld}, ports: [{name: http, port: 5000}]}
---
apiVersion: v1
kind: Service
metadata: {name: helloworld-v1, namespace: NS}
spec: {selector: {app: helloworld, version: v1}, ports: [{name: http, port: 5000}]}
---
apiVersion: v1
kind: Service
metadata: {name: helloworld-v2, namespace: NS}
spec: {selector: {app: helloworld, version: v2}, ports: [{name: http, port: 5000}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: helloworld, namespace: NS}
spec:
  parentRefs: [{group: "", kind: Service, name: helloworld, port: 5000}]
  rules: [{backendRefs: [{name: helloworld-v1, port: 5000, weight: 95}, {name: helloworld-v2, port: 5000, weight: 5}]}]
`

func TestHealth_RouteWithoutWaypointIsUnhealthyWithIstiodsMessage(t *testing.T) {
	e := newEnv(t, func(o *reconciler.Options) { o.AllowFindings = []string{"AMB030"}; o.HealthTimeout = 20 * time.Second })
	e.spec(map[string]string{"hello.yaml": helloRoute, "ns.yaml": "apiVersion: meshcd.dev/v1alpha1\nkind: MeshNamespace\nmetadata: {name: NS}\nspec: {}\n"})
	res := e.reconcile()
	if res.Reason != reconciler.ReasonUnhealthy {
		t.Fatalf("want Unhealthy, got %s: %+v", res.Reason, res.Health)
	}
	var msg string
	for _, h := range res.Health {
		if h.Object == "HTTPRoute "+e.ns+"/helloworld" && !h.Healthy {
			msg = h.Message
		}
	}
	if !strings.Contains(msg, "route will not be respected") {
		t.Fatalf("the report carries istiod's own message, got %q in %+v", msg, res.Health)
	}
	t.Logf("istiod says: %s", msg)

	// The corrected lab: the namespace gets a waypoint.
	e.spec(map[string]string{"hello.yaml": helloRoute, "ns.yaml": meshNamespace})
	fixed := e.reconcile()
	if fixed.Reason != reconciler.ReasonSucceeded {
		t.Fatalf("with a waypoint the lab is healthy, got %s: %+v", fixed.Reason, fixed.Health)
	}
}

func TestApply_ConvergesAfterTheAPIServerStopsMidway(t *testing.T) {
	c := clustertest.Cluster(t)
	e := newEnv(t, func(o *reconciler.Options) { o.Apply.Concurrency = 1; o.HealthTimeout = 30 * time.Second })
	var many strings.Builder
	many.WriteString(meshNamespace)
	for i := 0; i < 20; i++ {
		name := "orders" + string(rune('a'+i))
		many.WriteString("---\n" + strings.ReplaceAll(strings.Replace(orders, "name: orders,", "name: "+name+",", 1), "app: orders}", "app: "+name+"}"))
		many.WriteString("---\n" + strings.ReplaceAll(strings.Replace(ordersApp, "name: orders,", "name: "+name+",", 1), "app: orders}", "app: "+name+"}"))
	}
	e.spec(map[string]string{"mesh.yaml": many.String()})
	stopped := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		stopped <- c.StopAPIServer()
	}()
	_, err := e.rec.Reconcile(context.Background(), e.dir)
	if serr := <-stopped; serr != nil {
		t.Fatal(serr)
	}
	t.Logf("reconcile with the apiserver stopping midway: %v", err)
	if err == nil {
		t.Log("the reconcile finished before the apiserver stopped")
	}
	if err := c.StartAPIServer(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The apply converges on the first reconcile after the restart. The
	// cluster's own controllers (the Deployment controller, kwok, istiod)
	// re-list with client-go's jittered backoff, which can hold a waypoint
	// unavailable for up to a minute, so health is retried the way the
	// controller retries it: on its next interval, within a bound.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		res := e.reconcile()
		if res.Reason == reconciler.ReasonSucceeded {
			break
		}
		if res.Reason != reconciler.ReasonUnhealthy || time.Now().After(deadline) {
			for _, h := range res.Health {
				if !h.Healthy {
					t.Logf("not healthy: %+v", h)
				}
			}
			t.Fatalf("after the restart: %s", res.Reason)
		}
	}
	desired, err := e.rec.Desired(context.Background(), e.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range apply.Objects(desired) {
		if _, err := e.get(d.GetAPIVersion(), d.GetKind(), d.GetNamespace(), d.GetName()); err != nil {
			t.Errorf("lost: %s %s/%s: %v", d.GetKind(), d.GetNamespace(), d.GetName(), err)
		}
	}
	// Nothing orphaned: the inventory holds exactly the desired objects.
	rep, err := e.rec.Diff(context.Background(), e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Stale) != 0 || len(rep.Changed) != 0 {
		t.Fatalf("not converged: stale %v, changed %v", rep.Stale, rep.Changed)
	}
}
