package renderer

import (
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/renderer/rules"
)

const guardedSpec = `apiVersion: meshcd.dev/v1alpha1
kind: MeshNamespace
metadata: {name: shop}
spec:
  waypoint: {}
  defaultDeny: true
  waypointOnly: GUARD_NS
---
apiVersion: meshcd.dev/v1alpha1
kind: MeshService
metadata: {name: orders, namespace: shop}
spec:
  port: 8080
  selector: {app: orders}
  waypointOnly: GUARD_SVC
  access:
    - from: {serviceAccounts: [shop/cart]}
    - from: {serviceAccounts: [shop/web]}
      methods: [GET]
`

// policies indexes the rendered AuthorizationPolicies by name.
func policies(t *testing.T, nsGuard, svcGuard string) map[string]*unstructured.Unstructured {
	t.Helper()
	spec := guardedSpec
	for k, v := range map[string]string{"GUARD_NS": nsGuard, "GUARD_SVC": svcGuard} {
		spec = strings.ReplaceAll(spec, k, v)
	}
	b, err := Render(tree(t, map[string]string{"mesh.yaml": spec}), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if f := rules.Check(b.Objects, rules.Options{Origin: b.Origin}); rules.HasErrors(f) {
		t.Fatalf("a guarded spec must validate clean: %+v", f)
	}
	out := map[string]*unstructured.Unstructured{}
	for _, o := range b.Objects {
		if o.GetKind() == "AuthorizationPolicy" {
			out[o.GetName()] = o
		}
	}
	return out
}

// admitted lists the principals of a policy's rules, and its selector.
func admitted(t *testing.T, p *unstructured.Unstructured) ([]string, map[string]any) {
	t.Helper()
	if p == nil {
		t.Fatal("policy missing")
	}
	if a, _, _ := unstructured.NestedString(p.Object, "spec", "action"); a != "ALLOW" {
		t.Fatalf("%s: action %q, want ALLOW", p.GetName(), a)
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(p.Object, "spec", "targetRefs"); found {
		t.Fatalf("%s must be enforced by ztunnel, not attached to a waypoint", p.GetName())
	}
	rs, _, _ := unstructured.NestedSlice(p.Object, "spec", "rules")
	var out []string
	for _, r := range rs {
		from, _, _ := unstructured.NestedSlice(r.(map[string]any), "from")
		for _, f := range from {
			ps, _, _ := unstructured.NestedStringSlice(f.(map[string]any), "source", "principals")
			out = append(out, ps...)
		}
		if len(r.(map[string]any)) != 1 {
			t.Fatalf("%s: a guard rule says only who, got %v", p.GetName(), r)
		}
	}
	sel, _, _ := unstructured.NestedMap(p.Object, "spec", "selector")
	return out, sel
}

func TestRender_WaypointOnlyAdmitsOnlyTheWaypointAtZtunnel(t *testing.T) {
	waypoint := []string{"cluster.local/ns/shop/sa/waypoint"}
	t.Run("namespace", func(t *testing.T) {
		ps := policies(t, "true", "false")
		got, sel := admitted(t, ps["waypoint-only"])
		if !reflect.DeepEqual(got, waypoint) || sel != nil {
			t.Fatalf("namespace guard admits %v with selector %v, want only %v on every pod", got, sel, waypoint)
		}
		for _, gone := range []string{"orders-l4", "orders-allow-waypoint", "allow-waypoint", "orders-waypoint-only"} {
			if ps[gone] != nil {
				t.Errorf("%s must not be rendered under the guard: a ztunnel ALLOW would admit its sources past it", gone)
			}
		}
		rs, _, _ := unstructured.NestedSlice(ps["orders-l7"].Object, "spec", "rules")
		if len(rs) != 2 {
			t.Fatalf("every access rule is enforced at the waypoint under the guard, got %d rules", len(rs))
		}
	})
	t.Run("service", func(t *testing.T) {
		ps := policies(t, "false", "true")
		got, sel := admitted(t, ps["orders-waypoint-only"])
		if !reflect.DeepEqual(got, waypoint) || !reflect.DeepEqual(sel, map[string]any{"matchLabels": map[string]any{"app": "orders"}}) {
			t.Fatalf("service guard admits %v on %v", got, sel)
		}
		if ps["orders-l4"] != nil || ps["orders-allow-waypoint"] != nil || ps["waypoint-only"] != nil {
			t.Fatalf("unexpected ztunnel policies under a service guard: %v", keysOf(ps))
		}
		if ps["allow-waypoint"] == nil {
			t.Fatal("the unguarded rest of the namespace keeps its default-deny exception for the waypoint")
		}
	})
	t.Run("none", func(t *testing.T) {
		ps := policies(t, "false", "false")
		if ps["orders-l4"] == nil || ps["orders-allow-waypoint"] == nil || ps["waypoint-only"] != nil || ps["orders-waypoint-only"] != nil {
			t.Fatalf("without the guard the ztunnel rules stay as they were: %v", keysOf(ps))
		}
	})
}

func TestRender_WaypointOnlyWithoutAWaypointIsAnError(t *testing.T) {
	renderErr(t, tree(t, map[string]string{"s.yaml": "apiVersion: meshcd.dev/v1alpha1\nkind: MeshNamespace\nmetadata: {name: shop}\nspec: {waypointOnly: true}\n"}),
		"s.yaml:", "spec.waypointOnly", "needs a waypoint")
	renderErr(t, tree(t, map[string]string{"s.yaml": "apiVersion: meshcd.dev/v1alpha1\nkind: MeshNamespace\nmetadata: {name: shop}\nspec: {waypoint: {}, useWaypoint: services, waypointOnly: true}\n"}),
		"s.yaml:", "spec.waypointOnly", "set useWaypoint: namespace")
	renderErr(t, tree(t, map[string]string{"s.yaml": "apiVersion: meshcd.dev/v1alpha1\nkind: MeshNamespace\nmetadata: {name: shop}\nspec: {}\n---\napiVersion: meshcd.dev/v1alpha1\nkind: MeshService\nmetadata: {name: orders, namespace: shop}\nspec: {port: 80, selector: {app: orders}, waypointOnly: true}\n"}),
		"s.yaml:", "spec.waypointOnly", "the waypoint-only guard needs a waypoint")
}

func keysOf(m map[string]*unstructured.Unstructured) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
