package apply

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/ambient"
)

func TestStampCache_AnObjectChangedInPlaceIsStampedAfresh(t *testing.T) {
	m := New(nil, nil, DefaultOptions())
	orders := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "orders", "namespace": "shop"},
		"spec":     map[string]any{"ports": []any{map[string]any{"port": int64(8080)}}},
	}}
	stamp := func() *stamped {
		t.Helper()
		out, err := m.stamp([]*unstructured.Unstructured{orders})
		if err != nil || len(out) != 1 {
			t.Fatalf("stamp: %v, %d", err, len(out))
		}
		return out[0]
	}
	first := stamp()
	if again := stamp(); again != first {
		t.Fatal("an unchanged object was stamped again instead of reused")
	}
	// The same object, changed in place.
	_ = unstructured.SetNestedField(orders.Object, "ClientIP", "spec", "sessionAffinity")
	changed := stamp()
	if changed == first {
		t.Fatal("the object changed in place was served its old stamped copy")
	}
	if v, _, _ := unstructured.NestedString(changed.obj.Object, "spec", "sessionAffinity"); v != "ClientIP" {
		t.Fatalf("the stamped copy lacks the change: %v", changed.obj.Object["spec"])
	}
	if changed.obj.GetAnnotations()[ambient.AnnotationDigest] == first.obj.GetAnnotations()[ambient.AnnotationDigest] {
		t.Fatal("the changed object kept the old digest")
	}
	// A copy at another pointer with the same content reuses the stamped copy.
	if reused, err := m.stamp([]*unstructured.Unstructured{orders.DeepCopy()}); err != nil || reused[0] != changed {
		t.Fatalf("an equal object at another pointer was stamped again: %v", err)
	}
}
