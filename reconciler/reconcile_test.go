package reconciler_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/apply"
	"github.com/meshcd/meshcd/reconciler/lister"
	"github.com/meshcd/meshcd/renderer"
	"github.com/meshcd/meshcd/renderer/rules"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// env is a reconciler on the package's cluster with a counted client.
type env struct {
	t      *testing.T
	ns     string
	dir    string
	client client.Client
	writes *clustertest.Writes
	rec    *reconciler.Reconciler
}

func newEnv(t *testing.T, mutate func(*reconciler.Options)) *env {
	t.Helper()
	e := &env{t: t, ns: clustertest.Namespace(t, nil), dir: t.TempDir(), writes: &clustertest.Writes{}}
	cfg := rest.CopyConfig(clustertest.Cluster(t).RESTConfig())
	cfg.WrapTransport = e.writes.Wrap
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.client = c
	e.rec = reconciler.New(c, testOptions(e.ns, mutate))
	return e
}

// testOptions are the options of the tests' reconcilers, of instance name.
func testOptions(name string, mutate func(*reconciler.Options)) reconciler.Options {
	opts := reconciler.DefaultOptions()
	opts.Name = name
	opts.HealthTimeout = 60 * time.Second
	opts.Apply.WaypointTimeout = 90 * time.Second
	opts.Apply.PollInterval = 200 * time.Millisecond
	if mutate != nil {
		mutate(&opts)
	}
	return opts
}

// spec writes the spec files, replacing NS with the test's namespace.
func (e *env) spec(files map[string]string) {
	e.t.Helper()
	entries, _ := os.ReadDir(e.dir)
	for _, f := range entries {
		_ = os.Remove(filepath.Join(e.dir, f.Name()))
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(e.dir, name), []byte(strings.ReplaceAll(content, "NS", e.ns)), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) reconcile() *reconciler.Result {
	e.t.Helper()
	start := time.Now()
	res, err := e.rec.Reconcile(context.Background(), e.dir)
	if err != nil {
		e.t.Fatalf("reconcile (%s): %v", res.Reason, err)
	}
	e.t.Logf("reconcile %s in %s: applied %s", res.Reason, time.Since(start).Round(time.Millisecond), res.Applied.Summary())
	return res
}

func (e *env) get(apiVersion, kind, namespace, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	return u, e.client.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, u)
}

const meshNamespace = `apiVersion: meshcd.dev/v1alpha1
kind: MeshNamespace
metadata: {name: NS}
spec:
  waypoint: {}
  mtls: STRICT
`

const orders = `apiVersion: meshcd.dev/v1alpha1
kind: MeshService
metadata: {name: orders, namespace: NS}
spec:
  port: 8080
  selector: {app: orders}
  versions: {v1: {version: v1}, v2: {version: v2}}
  routes:
    - match: {headers: {x-canary: always}}
      backends: {v2: 100}
    - backends: {v1: 90, v2: 10}
  access:
    - from: {serviceAccounts: [NS/cart]}
    - from: {serviceAccounts: [NS/web]}
      methods: [GET]
`

const ordersApp = `apiVersion: v1
kind: Service
metadata: {name: orders, namespace: NS}
spec:
  selector: {app: orders}
  ports: [{name: http, port: 8080}]
`

func TestReconcile_SecondRunWritesNothing(t *testing.T) {
	e := newEnv(t, nil)
	e.spec(map[string]string{"mesh.yaml": meshNamespace + "---\n" + orders, "app.yaml": ordersApp})
	first := e.reconcile()
	if first.Reason != reconciler.ReasonSucceeded {
		t.Fatalf("first reconcile: %s, health %+v", first.Reason, first.Health)
	}
	if n, _ := e.writes.Take(); n == 0 {
		t.Fatal("the first reconcile must write")
	}
	second := e.reconcile()
	n, seen := e.writes.Take()
	if n != 0 {
		t.Fatalf("a no-op reconcile wrote %d times: %v", n, seen)
	}
	if second.Applied.Writes() != 0 || second.Applied.Count(apply.Unchanged) != len(second.Applied.Changes) {
		t.Fatalf("second reconcile changed objects: %s", second.Applied.Summary())
	}
}

func TestReconcile_EnrollsOnlyBehindAReadyWaypoint(t *testing.T) {
	e := newEnv(t, nil)
	e.spec(map[string]string{"mesh.yaml": meshNamespace + "---\n" + orders, "app.yaml": ordersApp})
	res := e.reconcile()
	ns, err := e.get("v1", "Namespace", "", e.ns)
	if err != nil {
		t.Fatal(err)
	}
	if ns.GetLabels()[ambient.LabelUseWaypoint] != "waypoint" || ns.GetLabels()[ambient.LabelDataplaneMode] != "ambient" {
		t.Fatalf("namespace labels: %v", ns.GetLabels())
	}
	// The label was written after the waypoint was ready: its Deployment
	// has an available replica and the Gateway was Programmed.
	dep, err := e.get("apps/v1", "Deployment", e.ns, "waypoint")
	if err != nil {
		t.Fatalf("istiod's waypoint Deployment: %v", err)
	}
	if n, _, _ := unstructured.NestedInt64(dep.Object, "status", "availableReplicas"); n < 1 {
		t.Fatal("waypoint not available although its label is set")
	}
	healthy := map[string]bool{}
	for _, h := range res.Health {
		healthy[h.Object] = h.Healthy
	}
	for _, want := range []string{"Gateway " + e.ns + "/waypoint", "HTTPRoute " + e.ns + "/orders", "AuthorizationPolicy " + e.ns + "/orders-l7", "AuthorizationPolicy " + e.ns + "/orders-l4"} {
		if !healthy[want] {
			t.Errorf("%s is not healthy: %+v", want, res.Health)
		}
	}
}

func TestPrune_RemovedObjectsGoAndThePartialNamespaceStays(t *testing.T) {
	e := newEnv(t, func(o *reconciler.Options) { o.MaxPrune = 1 })
	e.spec(map[string]string{"mesh.yaml": meshNamespace + "---\n" + orders, "app.yaml": ordersApp})
	e.reconcile()
	// Drop the service intent and the namespace intent; keep the app Service.
	e.spec(map[string]string{"app.yaml": ordersApp})
	res := e.reconcile()
	if res.Pruned == nil || res.Pruned.Count(apply.Pruned) == 0 {
		t.Fatalf("nothing pruned: %+v", res)
	}
	for _, gone := range [][4]string{
		{"gateway.networking.k8s.io/v1", "HTTPRoute", e.ns, "orders"},
		{"v1", "Service", e.ns, "orders-v1"},
		{"security.istio.io/v1", "AuthorizationPolicy", e.ns, "orders-l7"},
		{"gateway.networking.k8s.io/v1", "Gateway", e.ns, "waypoint"},
	} {
		if _, err := e.get(gone[0], gone[1], gone[2], gone[3]); !apierrors.IsNotFound(err) {
			t.Errorf("%s %s/%s still exists after prune (%v)", gone[1], gone[2], gone[3], err)
		}
	}
	ns, err := e.get("v1", "Namespace", "", e.ns)
	if err != nil {
		t.Fatalf("the namespace must survive prune: %v", err)
	}
	for _, l := range []string{ambient.LabelDataplaneMode, ambient.LabelUseWaypoint, ambient.LabelManagedBy} {
		if _, ok := ns.GetLabels()[l]; ok {
			t.Errorf("meshcd's label %s is still on the namespace: %v", l, ns.GetLabels())
		}
	}
	if _, err := e.get("v1", "Service", e.ns, "orders"); err != nil {
		t.Fatalf("the app Service, still in the spec, must stay: %v", err)
	}
}

func TestPrune_NothingWhenRenderFails(t *testing.T) {
	e := newEnv(t, func(o *reconciler.Options) { o.MaxPrune = 1 })
	e.spec(map[string]string{"mesh.yaml": meshNamespace + "---\n" + orders, "app.yaml": ordersApp})
	e.reconcile()
	e.writes.Take()
	e.spec(map[string]string{"mesh.yaml": "apiVersion: meshcd.dev/v1alpha1\nkind: MeshService\nmetadata: {name: orders, namespace: NS}\nspec: {port: [}\n"})
	res, err := e.rec.Reconcile(context.Background(), e.dir)
	if err == nil || res.Reason != reconciler.ReasonRenderFailed {
		t.Fatalf("want a render failure, got %v (%s)", err, res.Reason)
	}
	if !strings.Contains(err.Error(), "mesh.yaml:4") {
		t.Fatalf("the error names the file and line: %v", err)
	}
	if n, seen := e.writes.Take(); n != 0 {
		t.Fatalf("a failed render wrote %d times: %v", n, seen)
	}
	for _, kept := range [][4]string{{"gateway.networking.k8s.io/v1", "HTTPRoute", e.ns, "orders"}, {"gateway.networking.k8s.io/v1", "Gateway", e.ns, "waypoint"}} {
		if _, err := e.get(kept[0], kept[1], kept[2], kept[3]); err != nil {
			t.Errorf("%s %s/%s was lost: %v", kept[1], kept[2], kept[3], err)
		}
	}
}

func TestPrune_MassDeletionIsHeld(t *testing.T) {
	e := newEnv(t, nil) // MaxPrune 0.5
	e.spec(map[string]string{"mesh.yaml": meshNamespace + "---\n" + orders, "app.yaml": ordersApp})
	e.reconcile()
	e.spec(map[string]string{"app.yaml": ordersApp})
	res := e.reconcile()
	if res.PruneHeld == "" || res.Pruned != nil {
		t.Fatalf("pruning most of the inventory must be held: held=%q pruned=%v", res.PruneHeld, res.Pruned)
	}
	if _, err := e.get("gateway.networking.k8s.io/v1", "HTTPRoute", e.ns, "orders"); err != nil {
		t.Fatalf("held prune deleted the route: %v", err)
	}
	e.spec(map[string]string{})
	res = e.reconcile()
	if !strings.Contains(res.PruneHeld, "no objects") {
		t.Fatalf("an empty render prunes nothing without --allow-empty: %q", res.PruneHeld)
	}
}

func TestApply_ConflictNamesTheOtherManager(t *testing.T) {
	e := newEnv(t, nil)
	// Another tool owns orders-v1's selector with a different value.
	other := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "orders-v1", "namespace": e.ns},
		"spec":     map[string]any{"selector": map[string]any{"app": "orders", "version": "legacy"}, "ports": []any{map[string]any{"name": "http", "port": int64(8080)}}},
	}}
	if err := e.client.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(other), client.FieldOwner("helm")); err != nil {
		t.Fatal(err)
	}
	e.spec(map[string]string{"mesh.yaml": strings.Replace(meshNamespace, "  waypoint: {}\n", "", 1) + "---\n" + "apiVersion: meshcd.dev/v1alpha1\nkind: MeshService\nmetadata: {name: orders, namespace: NS}\nspec:\n  port: 8080\n  selector: {app: orders}\n  versions: {v1: {version: v1}}\n"})
	res, err := e.rec.Reconcile(context.Background(), e.dir)
	var ce *apply.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("want a ConflictError, got %v (%s)", err, res.Reason)
	}
	if len(ce.Managers) == 0 || ce.Managers[0] != "helm" || !strings.Contains(err.Error(), `"helm"`) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("the conflict names the manager and the way out: %v", err)
	}
}

// patchLabel changes a label the way `kubectl label --overwrite` does: a
// merge patch under the field manager kubectl-label.
func patchLabel(t testing.TB, c client.Client, obj client.Object, key, value string) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, key, value)
	if err := c.Patch(context.Background(), obj, client.RawPatch(types.MergePatchType, []byte(patch)), client.FieldOwner("kubectl-label")); err != nil {
		t.Fatal(err)
	}
}

func TestLiveContext_ResolvesReferencesToObjectsOnlyInTheCluster(t *testing.T) {
	e := newEnv(t, nil)
	// The app team's Service exists in the cluster but not in the spec repo.
	if err := e.client.Create(context.Background(), &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "legacy", "namespace": e.ns},
		"spec":     map[string]any{"ports": []any{map[string]any{"port": int64(80)}}},
	}}); err != nil {
		t.Fatal(err)
	}
	e.spec(map[string]string{"route.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: to-legacy, namespace: NS}
spec:
  parentRefs: [{group: "", kind: Service, name: legacy}]
  rules: [{backendRefs: [{name: legacy, port: 80}]}]
`})
	b, err := renderer.Render(e.dir, renderer.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	without := rules.Check(b.Objects, rules.Options{})
	if len(without) != 1 || without[0].Rule != "AMB050" || without[0].Severity != rules.SeverityWarning {
		t.Fatalf("without the cluster the backend is unresolved, a warning: %v", without)
	}
	// The namespace is enrolled in ambient by hand, as `kubectl label` does.
	nsObj := &unstructured.Unstructured{}
	nsObj.SetGroupVersionKind(schema.GroupVersionKind{Version: "v1", Kind: "Namespace"})
	nsObj.SetName(e.ns)
	if err := e.client.Patch(context.Background(), nsObj, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"istio.io/dataplane-mode":"ambient"}}}`))); err != nil {
		t.Fatal(err)
	}
	live, err := reconciler.LiveContext(context.Background(), e.client)
	if err != nil {
		t.Fatal(err)
	}
	with := rules.Check(b.Objects, rules.Options{Context: live})
	for _, f := range with {
		if f.Rule == "AMB031" {
			t.Fatalf("the live Service resolves the backend: %v", with)
		}
	}
	// The live namespace is known now, ambient, and without a waypoint: the route is not respected.
	if len(with) != 1 || with[0].Rule != "AMB030" {
		t.Fatalf("with the cluster, the namespace without a waypoint shows: %v", with)
	}
}

// With informers, the wait for a waypoint before its namespace is enrolled
// reads the waypoint's Gateway, Deployment and EndpointSlices from them:
// polling until istiod's waypoint is ready sends none of those reads.
func TestReconcile_WithInformersTheWaypointWaitReadsNoWaypointFromTheServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lists, err := lister.Start(ctx, clustertest.Cluster(t).RESTConfig(), clustertest.Client(t))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *reconciler.Options) { o.Lists = lists; o.Apply.Expect = lists.Expect })
	e.spec(map[string]string{"mesh.yaml": meshNamespace + "---\n" + orders, "app.yaml": ordersApp})
	e.writes.TakeReads()
	e.reconcile()
	reads := e.writes.TakeReads()
	ns, err := e.get("v1", "Namespace", "", e.ns)
	if err != nil {
		t.Fatal(err)
	}
	if ns.GetLabels()[ambient.LabelUseWaypoint] == "" {
		t.Fatalf("the cold reconcile did not enroll the namespace in its waypoint: %v", ns.GetLabels())
	}
	gateways := 0
	for _, r := range reads {
		if strings.Contains(r, "/deployments") || strings.Contains(r, "/endpointslices") {
			t.Errorf("the waypoint wait read %s from the API server", r)
		}
		if strings.HasPrefix(r, "GET ") && strings.Contains(r, "/gateways/") {
			gateways++
		}
	}
	// A Gateway the informer does not hold yet, just created, is read
	// directly; one poll later it holds it.
	if gateways > 5 {
		t.Errorf("the waypoint wait read the Gateway %d times from the API server", gateways)
	}
}

// With informers serving the lists, a no-op reconcile reads no object from
// the API server whatever the number of objects, and an object another
// manager changed is corrected.
func TestReconcile_WithInformersANoOpReadsNoObjectAndAChangedOneIsCorrected(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lists, err := lister.Start(ctx, clustertest.Cluster(t).RESTConfig(), clustertest.Client(t))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *reconciler.Options) { o.Lists = lists; o.Apply.Expect = lists.Expect; o.Apply.Force = true })
	noop := func() int {
		t.Helper()
		e.reconcile() // the first after a change judges it; the next reads only meshcd's state
		e.writes.Take()
		e.writes.TakeRequests()
		res := e.reconcile()
		if n, seen := e.writes.Take(); n != 0 {
			t.Fatalf("a no-op wrote %d times: %v", n, seen)
		}
		if res.Applied.Count(apply.Unchanged) != len(res.Applied.Changes) {
			t.Fatalf("a no-op changed objects: %s", res.Applied.Summary())
		}
		return e.writes.TakeRequests()
	}
	e.spec(map[string]string{"mesh.yaml": meshNamespace + "---\n" + orders, "app.yaml": ordersApp})
	e.reconcile()
	small := noop()
	more := strings.ReplaceAll(orders, "orders", "payments") + "---\n" + strings.ReplaceAll(orders, "orders", "invoices")
	apps := ordersApp + "---\n" + strings.ReplaceAll(ordersApp, "orders", "payments") + "---\n" + strings.ReplaceAll(ordersApp, "orders", "invoices")
	e.spec(map[string]string{"mesh.yaml": meshNamespace + "---\n" + orders + "---\n" + more, "app.yaml": apps})
	e.reconcile()
	if large := noop(); large != small {
		t.Fatalf("a no-op of 3 services sent %d requests, of 1 service %d: objects were read one by one", large, small)
	}
	// The informers hold what the apply expects slim: the no-op judged
	// them without their bodies.
	held := &unstructured.UnstructuredList{}
	held.SetAPIVersion("v1")
	held.SetKind("ServiceList")
	if err := lists.List(ctx, held, client.InNamespace(e.ns), client.MatchingLabels{ambient.LabelManagedBy: ambient.ManagedByValue}); err != nil {
		t.Fatal(err)
	}
	slim := 0
	for _, item := range held.Items {
		if len(item.GetManagedFields()) > 0 {
			continue // istiod's waypoint Service, which carries the Gateway's labels
		}
		if _, body := item.Object["spec"]; body {
			t.Fatalf("the informer holds Service %s whole: it is unchanged and expected", item.GetName())
		}
		slim++
	}
	if slim < 3 {
		t.Fatalf("%d of meshcd's Services are held slim, want every per-version one", slim)
	}

	// Another manager changes a selector meshcd set.
	svc, err := e.get("v1", "Service", e.ns, "payments-v1")
	if err != nil {
		t.Fatal(err)
	}
	patchAs(t, clustertest.Client(t), svc, types.MergePatchType, `{"spec":{"selector":{"version":"v9"}}}`)
	changed, _ := e.get("v1", "Service", e.ns, "payments-v1")
	deadline := time.Now().Add(10 * time.Second)
	for seen := ""; seen != changed.GetResourceVersion(); {
		if time.Now().After(deadline) {
			t.Fatal("the informer did not see the change in 10 s")
		}
		l := &unstructured.UnstructuredList{}
		l.SetAPIVersion("v1")
		l.SetKind("ServiceList")
		if err := lists.List(ctx, l, client.InNamespace(e.ns), client.MatchingLabels{ambient.LabelManagedBy: ambient.ManagedByValue}); err != nil {
			t.Fatal(err)
		}
		for _, item := range l.Items {
			if item.GetName() == "payments-v1" {
				seen = item.GetResourceVersion()
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.writes.Take()
	res := e.reconcile()
	if n, seen := e.writes.Take(); n != 1 || res.Applied.Count(apply.Configured) != 1 {
		t.Fatalf("want one write correcting payments-v1, got %d (%v): %s", n, seen, res.Applied.Summary())
	}
	svc, _ = e.get("v1", "Service", e.ns, "payments-v1")
	if v, _, _ := unstructured.NestedString(svc.Object, "spec", "selector", "version"); v != "v1" {
		t.Fatalf("selector version %q after the reconcile, want v1", v)
	}
}

// A restarted meshcd, with informers and a reconciler of its own, on objects
// it applied before: its first reconcile judges them from what its
// informers list at start, istiod's status among it, and succeeds without
// waiting out its health timeout.
func TestReconcile_ARestartedInstanceReadsTheStatusItsObjectsHave(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	informers := func(ctx context.Context) *lister.Lister {
		l, err := lister.Start(ctx, clustertest.Cluster(t).RESTConfig(), clustertest.Client(t))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	firstCtx, stopFirst := context.WithCancel(ctx)
	first := informers(firstCtx)
	e := newEnv(t, func(o *reconciler.Options) { o.Lists = first; o.Apply.Expect = first.Expect })
	e.spec(map[string]string{"mesh.yaml": meshNamespace + "---\n" + orders, "app.yaml": ordersApp})
	e.reconcileUntil("a reconcile that succeeds", func(r *reconciler.Result) bool { return r.Reason == reconciler.ReasonSucceeded })
	stopFirst()

	second := informers(ctx)
	e.rec = reconciler.New(e.client, testOptions(e.ns, func(o *reconciler.Options) {
		o.Lists = second
		o.Apply.Expect = second.Expect
		o.HealthTimeout = 20 * time.Second
	}))
	if res := e.reconcile(); res.Reason != reconciler.ReasonSucceeded {
		t.Fatalf("the restarted instance's first reconcile: %s, health %+v", res.Reason, res.Health)
	}
}
