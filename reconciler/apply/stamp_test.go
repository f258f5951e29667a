package apply

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestStampCache_AnObjectChangedInPlaceIsDigestedAfresh(t *testing.T) {
	m := New(nil, nil, DefaultOptions())
	orders := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "orders", "namespace": "shop"},
		"spec":     map[string]any{"ports": []any{map[string]any{"port": int64(8080)}}},
	}}
	first := m.mustStamp(t, orders)
	if again := m.mustStamp(t, orders); again != first {
		t.Fatal("an unchanged object was digested again instead of reused")
	}
	first.unchangedAt = "42"
	// The same object, changed in place.
	_ = unstructured.SetNestedField(orders.Object, "ClientIP", "spec", "sessionAffinity")
	changed := m.mustStamp(t, orders)
	if changed == first || changed.unchangedAt != "" {
		t.Fatal("the object changed in place was served what the last apply found for it")
	}
	if changed.Digest == first.Digest {
		t.Fatal("the changed object kept the old digest")
	}
	// An equal object at another pointer keeps the digest and what the
	// last apply found, and is the one held from now on.
	changed.unchangedAt = "43"
	twin := orders.DeepCopy()
	reused := m.mustStamp(t, twin)
	if reused.Digest != changed.Digest || reused.unchangedAt != "43" {
		t.Fatalf("an equal object at another pointer lost its digest or state: %+v", reused)
	}
	if reused.Object != twin {
		t.Fatal("the stamp cache still holds the object of the last apply, not the one passed now")
	}
}

func TestDesired_NoStampedCopyIsKept(t *testing.T) {
	m := New(nil, nil, DefaultOptions())
	orders := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "orders", "namespace": "shop", "annotations": map[string]any{"team": "payments"}},
		"spec":     map[string]any{"ports": []any{map[string]any{"port": int64(8080)}}},
	}}
	handed, err := m.Desired([]*unstructured.Unstructured{orders})
	if err != nil {
		t.Fatal(err)
	}
	if handed[0].Object != orders {
		t.Fatal("Desired holds a copy instead of the object")
	}
	if DigestOf(orders) != "" {
		t.Fatal("taking the digest wrote into the object")
	}
	if s := m.mustStamp(t, orders); s.Digest != handed[0].Digest {
		t.Fatalf("the apply's digest %s differs from the handed one %s", s.Digest, handed[0].Digest)
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
