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

func TestStamped_ACopyChangedInPlaceIsStampedAgainAndTheObjectIsLeftAlone(t *testing.T) {
	m := New(nil, nil, DefaultOptions())
	orders := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "orders", "namespace": "shop", "annotations": map[string]any{"team": "payments"}},
		"spec":     map[string]any{"ports": []any{map[string]any{"port": int64(8080)}}},
	}}
	handed, err := m.Stamped([]*unstructured.Unstructured{orders})
	if err != nil {
		t.Fatal(err)
	}
	first := m.mustStamp(t, orders)
	if handed[0] != first.obj {
		t.Fatal("Stamped handed out a copy of its own instead of the apply's")
	}
	if _, ok := orders.GetAnnotations()[ambient.AnnotationDigest]; ok {
		t.Fatal("stamping wrote the digest into the object it copied")
	}
	digest := first.obj.GetAnnotations()[ambient.AnnotationDigest]

	// A holder of the copy changes it in place while the object stays as
	// it was: the apply must not send the copy or trust what it found for it.
	first.unchangedAt = "42"
	handed[0].SetLabels(map[string]string{"changed": "by-a-holder"})
	again := m.mustStamp(t, orders)
	if again == first || again.unchangedAt != "" {
		t.Fatal("a copy changed in place was reused with what the last apply found")
	}
	if len(again.obj.GetLabels()) != 0 {
		t.Fatalf("the new copy carries the holder's change: %v", again.obj.GetLabels())
	}
	if got := again.obj.GetAnnotations()[ambient.AnnotationDigest]; got != digest {
		t.Fatalf("digest %s, want %s: the object is as it was", got, digest)
	}
}

func (m *Manager) mustStamp(t *testing.T, obj *unstructured.Unstructured) *stamped {
	t.Helper()
	out, err := m.stamp([]*unstructured.Unstructured{obj})
	if err != nil || len(out) != 1 {
		t.Fatalf("stamp: %v, %d", err, len(out))
	}
	return out[0]
}
