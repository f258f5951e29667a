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
