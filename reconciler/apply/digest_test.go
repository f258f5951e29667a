package apply

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/ambient"
)

func svc(labels map[string]any, port any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "orders-v1", "namespace": "shop", "labels": labels},
		"spec":     map[string]any{"ports": []any{map[string]any{"name": "http", "port": port}}},
	}}
}

func TestStamp_SameIntentSameDigest(t *testing.T) {
	a, b := svc(map[string]any{"app": "orders"}, int64(8080)), svc(map[string]any{"app": "orders"}, int64(8080))
	if err := Stamp(a); err != nil {
		t.Fatal(err)
	}
	if err := Stamp(b); err != nil {
		t.Fatal(err)
	}
	da, db := a.GetAnnotations()[ambient.AnnotationDigest], b.GetAnnotations()[ambient.AnnotationDigest]
	if da == "" || da != db {
		t.Fatalf("digests %q and %q should be equal and set", da, db)
	}
	if err := Stamp(a); err != nil {
		t.Fatal(err)
	}
	if again := a.GetAnnotations()[ambient.AnnotationDigest]; again != da {
		t.Fatalf("stamping twice changed the digest: %q != %q", again, da)
	}
	c := svc(map[string]any{"app": "orders", "tier": "api"}, int64(8080))
	if err := Stamp(c); err != nil {
		t.Fatal(err)
	}
	if c.GetAnnotations()[ambient.AnnotationDigest] == da {
		t.Fatal("a different object got the same digest")
	}
}

func TestCurrent_IgnoresServerDefaultsButNotChangedFields(t *testing.T) {
	desired := svc(map[string]any{"app": "orders"}, int64(8080))
	if err := Stamp(desired); err != nil {
		t.Fatal(err)
	}
	live := desired.DeepCopy()
	// What the server adds: defaults, status, another label, int64 numbers.
	_ = unstructured.SetNestedField(live.Object, "ClusterIP", "spec", "type")
	_ = unstructured.SetNestedSlice(live.Object, []any{map[string]any{"name": "http", "port": int64(8080), "protocol": "TCP"}}, "spec", "ports")
	_ = unstructured.SetNestedField(live.Object, "kubectl", "metadata", "labels", "extra")
	if !Current(desired, live) {
		t.Fatal("server defaults must not count as a change")
	}
	_ = unstructured.SetNestedField(live.Object, "billing", "metadata", "labels", "app")
	if Current(desired, live) {
		t.Fatal("a changed label must count")
	}
	if Current(desired, nil) {
		t.Fatal("a missing object is not current")
	}
	stale := desired.DeepCopy()
	stale.SetAnnotations(map[string]string{ambient.AnnotationDigest: "old"})
	if Current(desired, stale) {
		t.Fatal("a different digest means the intent changed")
	}
}

func TestDrifted_ComparesLabelsAnnotationsAndSpecOnly(t *testing.T) {
	live := svc(map[string]any{"app": "orders"}, int64(8080))
	dry := live.DeepCopy()
	_ = unstructured.SetNestedField(dry.Object, "12345", "metadata", "resourceVersion")
	_ = unstructured.SetNestedField(dry.Object, map[string]any{"loadBalancer": map[string]any{}}, "status")
	if Drifted(live, dry) {
		t.Fatal("resourceVersion and status are not drift")
	}
	_ = unstructured.SetNestedField(dry.Object, "v2", "metadata", "labels", "version")
	if !Drifted(live, dry) {
		t.Fatal("a label the dry-run adds is drift")
	}
}

func TestSlim_DropsTheBodyOnlyOfAnObjectThatHoldsDesired(t *testing.T) {
	desired := svc(map[string]any{"app": "orders"}, int64(8080))
	if err := Stamp(desired); err != nil {
		t.Fatal(err)
	}
	live := desired.DeepCopy()
	_ = unstructured.SetNestedField(live.Object, "ClusterIP", "spec", "type")
	_ = unstructured.SetNestedField(live.Object, "10.0.0.1", "status", "loadBalancer", "ingress")
	if !Slim(desired, live) {
		t.Fatal("a live object holding desired must be slimmed")
	}
	if _, ok := live.Object["spec"]; ok {
		t.Fatal("a slim copy keeps no spec")
	}
	if live.GetName() != desired.GetName() || live.GetLabels()["app"] != "orders" || live.Object["status"] == nil {
		t.Fatalf("a slim copy keeps metadata and status: %v", live.Object)
	}
	if !Current(desired, live) {
		t.Fatal("a slim copy of desired is current")
	}
	other := svc(map[string]any{"app": "orders"}, int64(9090))
	if err := Stamp(other); err != nil {
		t.Fatal(err)
	}
	if Current(other, live) {
		t.Fatal("a slim copy is current only for the digest it holds")
	}

	changed := desired.DeepCopy()
	_ = unstructured.SetNestedField(changed.Object, "billing", "metadata", "labels", "app")
	if Slim(desired, changed) {
		t.Fatal("a changed object must not be slimmed")
	}
	if _, ok := changed.Object["spec"]; !ok {
		t.Fatal("an object that is not slimmed keeps its body")
	}
}
