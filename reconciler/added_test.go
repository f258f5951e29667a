package reconciler_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/apply"
	"github.com/meshcd/meshcd/reconciler/drift"
	"github.com/meshcd/meshcd/reconciler/lister"
)

const defaultDeny = `apiVersion: meshcd.dev/v1alpha1
kind: MeshNamespace
metadata: {name: NS}
spec: {defaultDeny: true}
`

// patchAs changes obj the way `kubectl patch` does, under the field
// manager kubectl-patch.
func patchAs(t testing.TB, c client.Client, obj client.Object, pt types.PatchType, patch string) {
	t.Helper()
	if err := c.Patch(context.Background(), obj, client.RawPatch(pt, []byte(patch)), client.FieldOwner("kubectl-patch")); err != nil {
		t.Fatal(err)
	}
}

// addedField finds, in a drift report's objects, the field at path of
// object, reported with no desired value.
func addedField(objs []drift.Object, object, path string) *drift.Field {
	for _, o := range objs {
		if o.Object != object {
			continue
		}
		for i, f := range o.Fields {
			if f.Path == path && f.Desired == nil {
				return &o.Fields[i]
			}
		}
	}
	return nil
}

// diffAndDrift asserts that `meshcd diff` and `meshcd drift` both report
// the field at path of object as added by kubectl-patch.
func (e *env) diffAndDrift(object, path string) {
	e.t.Helper()
	diff, err := e.rec.Diff(context.Background(), e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	if f := addedField(diff.Changed, object, path); f == nil || f.Manager != "kubectl-patch" {
		e.t.Fatalf("diff does not report %s %s added by kubectl-patch: %+v", object, path, diff.Changed)
	}
	rep, err := e.rec.Drift(context.Background(), e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	f := addedField(rep.Objects, object, path)
	if f == nil || f.Manager != "kubectl-patch" || f.Time == nil {
		e.t.Fatalf("drift does not report %s %s added by kubectl-patch: %+v", object, path, rep.Objects)
	}
	var b strings.Builder
	if err := rep.Write(&b, "text"); err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("meshcd drift:\n%s", b.String())
}

// removedByApply reconciles and asserts that object was configured to
// remove the field at path, in one write, and that nothing drifts or is
// written afterwards.
func (e *env) removedByApply(object, path, urlPath string) {
	e.t.Helper()
	e.writes.Take()
	res := e.reconcile()
	var c apply.Change
	for _, ch := range res.Applied.Changes {
		if ch.Object == object {
			c = ch
		}
	}
	if c.Action != apply.Configured || !strings.Contains(c.Reason, path+" (kubectl-patch)") {
		e.t.Fatalf("the apply removes %s: %+v", path, c)
	}
	if n := e.writes.To(urlPath); n != 1 {
		_, seen := e.writes.Take()
		e.t.Fatalf("%d writes to %s, want the removal alone: %v", n, urlPath, seen)
	}
	rep, err := e.rec.Drift(context.Background(), e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(rep.Objects) != 0 {
		e.t.Fatalf("drift remains after the apply: %+v", rep.Objects)
	}
	e.writes.Take()
	e.reconcile()
	if n, seen := e.writes.Take(); n != 0 {
		e.t.Fatalf("the reconcile after wrote %d times: %v", n, seen)
	}
}

func TestDrift_RuleAddedToDefaultDenyIsReportedAndRemoved(t *testing.T) {
	e := newEnv(t, nil)
	e.spec(map[string]string{"mesh.yaml": defaultDeny})
	e.reconcile()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := e.watch(ctx)

	object := "AuthorizationPolicy " + e.ns + "/default-deny"
	policy, err := e.get("security.istio.io/v1", "AuthorizationPolicy", e.ns, "default-deny")
	if err != nil {
		t.Fatal(err)
	}
	// A rule matching every request: the namespace is open to everyone.
	changed := time.Now()
	patchAs(t, e.client, policy, types.MergePatchType, `{"spec":{"rules":[{}]}}`)

	select {
	case ev := <-events:
		latency := ev.At.Sub(changed)
		t.Logf("the watch noticed it %s after the change: %+v", latency.Round(time.Millisecond), ev.Drift)
		if latency > time.Second {
			t.Errorf("noticed after %s, want under 1 s", latency)
		}
		f := addedField([]drift.Object{ev.Drift}, object, "/spec/rules")
		if f == nil || f.Manager != "kubectl-patch" {
			t.Fatalf("the watch names the rule and who added it: %+v", ev.Drift)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the drift watch did not notice the added rule within 5 s")
	}
	e.diffAndDrift(object, "/spec/rules")

	e.removedByApply(object, "/spec/rules", "/apis/security.istio.io/v1/namespaces/"+e.ns+"/authorizationpolicies/default-deny")
	policy, err = e.get("security.istio.io/v1", "AuthorizationPolicy", e.ns, "default-deny")
	if err != nil {
		t.Fatal(err)
	}
	if spec, _, _ := unstructured.NestedMap(policy.Object, "spec"); len(spec) != 0 {
		t.Fatalf("the policy's spec is empty again, got %v", spec)
	}
}

// The apply reads its lists from the controller's informer cache here,
// which keeps only other managers' managedFields entries.
func TestDrift_PortAddedToAPerVersionServiceIsReportedAndRemoved(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lists, err := lister.Start(ctx, clustertest.Cluster(t).RESTConfig(), clustertest.Client(t))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *reconciler.Options) { o.Lists = lists })
	e.spec(map[string]string{"mesh.yaml": meshNamespace + "---\n" + orders, "app.yaml": ordersApp})
	e.reconcile()

	object := "Service " + e.ns + "/orders-v1"
	svc, err := e.get("v1", "Service", e.ns, "orders-v1")
	if err != nil {
		t.Fatal(err)
	}
	patchAs(t, e.client, svc, types.StrategicMergePatchType, `{"spec":{"ports":[{"name":"debug","port":9090}]}}`)
	svc, _ = e.get("v1", "Service", e.ns, "orders-v1")
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	debug := -1
	for i, p := range ports {
		if p.(map[string]any)["port"] == int64(9090) {
			debug = i
		}
	}
	if len(ports) != 2 || debug < 0 {
		t.Fatalf("the patch adds a port: %v", ports)
	}
	path := fmt.Sprintf("/spec/ports/%d", debug)
	e.diffAndDrift(object, path)
	// The apply judges what the cache holds: wait for it to see the port.
	deadline := time.Now().Add(10 * time.Second)
	for cached := 0; cached != 2; {
		if time.Now().After(deadline) {
			t.Fatal("the informer cache did not see the added port in 10 s")
		}
		l := &unstructured.UnstructuredList{}
		l.SetAPIVersion("v1")
		l.SetKind("ServiceList")
		if err := lists.List(ctx, l, client.InNamespace(e.ns), client.MatchingLabels{ambient.LabelManagedBy: ambient.ManagedByValue}); err != nil {
			t.Fatal(err)
		}
		for _, item := range l.Items {
			if item.GetName() == "orders-v1" {
				ports, _, _ := unstructured.NestedSlice(item.Object, "spec", "ports")
				cached = len(ports)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}

	e.removedByApply(object, path, "/api/v1/namespaces/"+e.ns+"/services/orders-v1")
	svc, _ = e.get("v1", "Service", e.ns, "orders-v1")
	ports, _, _ = unstructured.NestedSlice(svc.Object, "spec", "ports")
	if len(ports) != 1 || ports[0].(map[string]any)["port"] != int64(8080) {
		t.Fatalf("only the rendered port stays: %v", ports)
	}
}
