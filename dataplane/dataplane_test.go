package dataplane_test

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/dataplane"
	"github.com/meshcd/meshcd/meshspec"
)

func TestCatalogue_EveryBundlePinsFourImagesOfItsOwnVersion(t *testing.T) {
	c := dataplane.Catalogue()
	if len(c) == 0 {
		t.Fatal("the catalogue is empty")
	}
	seen := map[string]bool{}
	for _, b := range c {
		if seen[b.Version] {
			t.Errorf("bundle %s is listed twice", b.Version)
		}
		seen[b.Version] = true
		for _, img := range []string{b.Ztunnel, b.Proxy, b.CNI, b.Pilot} {
			if !strings.HasSuffix(img, ":"+b.Version) && !strings.Contains(img, "@sha256:") {
				t.Errorf("bundle %s: image %s is not pinned to its version", b.Version, img)
			}
		}
	}
	if _, err := dataplane.Lookup("0.1.0"); err == nil || !strings.Contains(err.Error(), "meshcd bundle list") {
		t.Fatalf("an unknown bundle names where to look, got %v", err)
	}
}

func TestCheckSkew(t *testing.T) {
	for _, tc := range []struct {
		istiod, dataplane string
		ok                bool
	}{
		{"1.31", "1.31.1", true},
		{"1.31.0", "1.30.0", true},
		{"1.31-dev", "1.29.0", false},
		{"1.30.2", "1.31.0", false},
		{"2.0.0", "1.31.0", false},
		{"main", "1.31.0", false},
	} {
		err := dataplane.CheckSkew(tc.istiod, tc.dataplane)
		if (err == nil) != tc.ok {
			t.Errorf("istiod %s, bundle %s: got %v, want ok=%v", tc.istiod, tc.dataplane, err, tc.ok)
		}
	}
}

func rollout(stages ...meshspec.Stage) *meshspec.DataplaneRollout {
	return &meshspec.DataplaneRollout{ObjectMeta: metav1.ObjectMeta{Name: "proxies"},
		Spec: meshspec.DataplaneRolloutSpec{Bundle: "1.31.1", Waypoints: &meshspec.WaypointRollout{Stages: stages}}}
}

var view = dataplane.View{
	Namespaces: map[string]map[string]string{"a": {"tier": "canary"}, "b": nil, "c": nil, "bare": nil},
	Waypoints:  map[string][]string{"a": {"waypoint"}, "b": {"waypoint"}, "c": {"waypoint"}},
}

func TestPreflight_ResolvesStagesWithTheRestLast(t *testing.T) {
	_, stages, err := dataplane.Preflight(rollout(
		meshspec.Stage{Name: "canary", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "canary"}}},
		meshspec.Stage{Name: "rest", Namespaces: []string{"*"}},
		meshspec.Stage{Name: "last", Namespaces: []string{"c"}},
	), "1.31", view)
	if err != nil {
		t.Fatal(err)
	}
	got := [][]string{stages[0].Resolved, stages[1].Resolved, stages[2].Resolved}
	if strings.Join(got[0], ",") != "a" || strings.Join(got[1], ",") != "b" || strings.Join(got[2], ",") != "c" {
		t.Fatalf("stages resolved to %v", got)
	}
}

func TestPreflight_NamesEveryProblem(t *testing.T) {
	r := rollout(
		meshspec.Stage{Name: "one", Namespaces: []string{"a", "missing"}},
		meshspec.Stage{Name: "two", Namespaces: []string{"a", "bare"}},
		meshspec.Stage{Name: "empty", Namespaces: []string{}},
	)
	r.Spec.Bundle = "1.29.0"
	r.Spec.Promote = "two"
	_, _, err := dataplane.Preflight(r, "1.31", view)
	if err == nil {
		t.Fatal("preflight passed")
	}
	for _, want := range []string{
		"2 minor versions behind istiod",
		"namespace missing does not exist",
		"namespace bare has no waypoint",
		"namespace a is in stages one and two",
		"stage empty moves no namespace",
		`promote names "two", which is not a manual stage`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q:\n%v", want, err)
		}
	}
}

func TestOverlay_PinsTheImageOnWaypointsOnlyAndCopies(t *testing.T) {
	gw := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
		"metadata": map[string]any{"name": "waypoint", "namespace": "a"},
		"spec":     map[string]any{"gatewayClassName": ambient.WaypointClass},
	}}
	other := gw.DeepCopy()
	other.SetNamespace("b")
	ingress := gw.DeepCopy()
	_ = unstructured.SetNestedField(ingress.Object, "istio", "spec", "gatewayClassName")
	ingress.SetName("ingress")
	out := dataplane.Overlay([]*unstructured.Unstructured{gw, other, ingress}, map[string]*dataplane.State{"r": {Pins: map[string]string{"a": "r/proxyv2:1"}}})
	if out[0].GetAnnotations()[ambient.AnnotationProxyImage] != "r/proxyv2:1" {
		t.Fatalf("the waypoint of a is not pinned: %v", out[0].GetAnnotations())
	}
	if len(gw.GetAnnotations()) != 0 {
		t.Fatal("Overlay changed its input")
	}
	if len(out) != 3 || out[1] != other || out[2] != ingress || len(out[2].GetAnnotations()) != 0 {
		t.Fatal("objects without a pin, or not waypoints, must pass through")
	}
}

func obj(apiVersion, kind, namespace, name string, labels map[string]string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind, "spec": spec}}
	if spec == nil {
		delete(u.Object, "spec")
	}
	u.SetNamespace(namespace)
	u.SetName(name)
	u.SetLabels(labels)
	return u
}

func TestOverlay_ACanaryGetsItsGatewayPoliciesIdentityAndWeight(t *testing.T) {
	const primary = "cluster.local/ns/shop/sa/waypoint"
	objs := []*unstructured.Unstructured{
		obj("v1", "Namespace", "", "shop", map[string]string{ambient.LabelUseWaypoint: "waypoint"}, nil),
		obj("v1", "Namespace", "", "other", map[string]string{ambient.LabelUseWaypoint: "waypoint"}, nil),
		obj("gateway.networking.k8s.io/v1", "Gateway", "shop", "waypoint", map[string]string{ambient.LabelWaypointFor: "service"}, map[string]any{"gatewayClassName": ambient.WaypointClass}),
		obj("security.istio.io/v1", "AuthorizationPolicy", "shop", "deny-delete", nil, map[string]any{
			"targetRefs": []any{map[string]any{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "waypoint"}}, "action": "DENY"}),
		obj("security.istio.io/v1", "AuthorizationPolicy", "shop", "orders-l7", nil, map[string]any{
			"targetRefs": []any{map[string]any{"kind": "Service", "name": "orders"}}, "action": "ALLOW"}),
		obj("security.istio.io/v1", "AuthorizationPolicy", "shop", "waypoint-only", nil, map[string]any{
			"action": "ALLOW", "rules": []any{map[string]any{"from": []any{map[string]any{"source": map[string]any{"principals": []any{primary}}}}}}}),
	}
	st := &dataplane.State{Canary: &dataplane.CanaryState{Namespaces: []string{"shop"}, Image: "r/proxyv2:2", Step: 1, Weight: 25}}
	out := dataplane.Overlay(objs, map[string]*dataplane.State{"r": st})
	byName := map[string]*unstructured.Unstructured{}
	for _, o := range out {
		byName[o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName()] = o
	}
	canary := byName["Gateway shop/waypoint-canary"]
	if canary == nil || canary.GetAnnotations()[ambient.AnnotationProxyImage] != "r/proxyv2:2" || canary.GetLabels()[ambient.LabelWaypointFor] != "service" {
		t.Fatalf("canary Gateway: %v", canary)
	}
	if byName["Gateway shop/waypoint"].GetAnnotations()[ambient.AnnotationProxyImage] != "" {
		t.Fatal("the primary must not be touched before promotion")
	}
	copied := byName["AuthorizationPolicy shop/deny-delete-canary"]
	if copied == nil {
		t.Fatal("a policy attached to the primary Gateway must be copied to the canary")
	}
	if refs, _, _ := unstructured.NestedSlice(copied.Object, "spec", "targetRefs"); refs[0].(map[string]any)["name"] != "waypoint-canary" {
		t.Fatalf("the copy targets %v", refs)
	}
	if byName["AuthorizationPolicy shop/orders-l7-canary"] != nil {
		t.Fatal("a policy on a Service follows the traffic and is not copied")
	}
	rules, _, _ := unstructured.NestedSlice(byName["AuthorizationPolicy shop/waypoint-only"].Object, "spec", "rules")
	ps := rules[0].(map[string]any)["from"].([]any)[0].(map[string]any)["source"].(map[string]any)["principals"].([]any)
	if len(ps) != 2 || ps[0] != primary || ps[1] != primary+"-canary" {
		t.Fatalf("the guard must admit the primary and the canary, got %v", ps)
	}
	ns := byName["Namespace /shop"]
	if ns.GetLabels()[ambient.LabelUseWaypointCanary] != "waypoint-canary" || ns.GetAnnotations()[ambient.AnnotationUseWaypointCanaryWeight] != "25" {
		t.Fatalf("the Namespace must carry the canary label and weight: %v %v", ns.GetLabels(), ns.GetAnnotations())
	}
	if o := byName["Namespace /other"]; o.GetLabels()[ambient.LabelUseWaypointCanary] != "" {
		t.Fatal("a namespace outside the stage gets no canary")
	}
	if len(objs[0].GetLabels()) != 1 || len(objs[5].Object["spec"].(map[string]any)["rules"].([]any)[0].(map[string]any)["from"].([]any)[0].(map[string]any)["source"].(map[string]any)["principals"].([]any)) != 1 {
		t.Fatal("Overlay changed its input")
	}
	// While the canary comes up (step -1) no traffic is sent to it.
	st.Canary.Step, st.Canary.Weight = -1, 0
	for _, o := range dataplane.Overlay(objs, map[string]*dataplane.State{"r": st}) {
		if o.GetKind() == "Namespace" && o.GetLabels()[ambient.LabelUseWaypointCanary] != "" {
			t.Fatal("the canary label must wait for the first step")
		}
	}
}
