package apply

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/ambient"
)

// stampedOf returns d stamped, as an apply sends it and a live object holds it.
func stampedOf(t *testing.T, d Desired) *unstructured.Unstructured {
	t.Helper()
	out, err := d.Stamped()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func newDesiredT(t *testing.T, obj *unstructured.Unstructured) Desired {
	t.Helper()
	d, err := NewDesired(obj)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDesired_StampedIsWhatStampWrites(t *testing.T) {
	obj := svc(map[string]any{"app": "orders"}, int64(8080))
	d := newDesiredT(t, obj)
	if _, ok := obj.GetAnnotations()[ambient.AnnotationDigest]; ok {
		t.Fatal("taking the digest wrote into the object")
	}
	want := obj.DeepCopy()
	if err := Stamp(want); err != nil {
		t.Fatal(err)
	}
	got := stampedOf(t, d)
	if got.GetAnnotations()[ambient.AnnotationDigest] != d.Digest || d.Digest != want.GetAnnotations()[ambient.AnnotationDigest] {
		t.Fatalf("digest %s, stamped %s, Stamp %s", d.Digest, got.GetAnnotations()[ambient.AnnotationDigest], want.GetAnnotations()[ambient.AnnotationDigest])
	}
	got.SetLabels(map[string]string{"changed": "by-the-caller"})
	if obj.GetLabels()["changed"] != "" {
		t.Fatal("the stamped copy shares fields with the object")
	}

	// An object that carries a digest of its own is held as its stamped copy.
	copied := want.DeepCopy()
	copied.SetAnnotations(map[string]string{ambient.AnnotationDigest: "old"})
	dc := newDesiredT(t, copied)
	if dc.Digest != d.Digest || DigestOf(dc.Object) != d.Digest {
		t.Fatalf("an object with a stale digest annotation: digest %s, held with %s, want %s", dc.Digest, DigestOf(dc.Object), d.Digest)
	}

	// Changed in place after the digest was taken: stamped afresh.
	_ = unstructured.SetNestedField(obj.Object, "ClientIP", "spec", "sessionAffinity")
	again := stampedOf(t, d)
	if again.GetAnnotations()[ambient.AnnotationDigest] == d.Digest {
		t.Fatal("an object changed since its digest was taken kept the old digest")
	}
}

func TestCurrent_IgnoresServerDefaultsButNotChangedFields(t *testing.T) {
	desired := newDesiredT(t, svc(map[string]any{"app": "orders"}, int64(8080)))
	live := stampedOf(t, desired)
	// What the server adds: defaults, status, another label, int64 numbers.
	_ = unstructured.SetNestedField(live.Object, "ClusterIP", "spec", "type")
	_ = unstructured.SetNestedSlice(live.Object, []any{map[string]any{"name": "http", "port": int64(8080), "protocol": "TCP"}}, "spec", "ports")
	_ = unstructured.SetNestedField(live.Object, "kubectl", "metadata", "labels", "extra")
	if !desired.Current(live) {
		t.Fatal("server defaults must not count as a change")
	}
	_ = unstructured.SetNestedField(live.Object, "billing", "metadata", "labels", "app")
	if desired.Current(live) {
		t.Fatal("a changed label must count")
	}
	if desired.Current(nil) {
		t.Fatal("a missing object is not current")
	}
	stale := stampedOf(t, desired)
	stale.SetAnnotations(map[string]string{ambient.AnnotationDigest: "old"})
	if desired.Current(stale) {
		t.Fatal("a different digest means the intent changed")
	}
	// The desired object changed in place since its digest was taken: it
	// vouches for no live object, even one holding every field it has left.
	holds := stampedOf(t, desired)
	delete(desired.Object.Object, "spec")
	if desired.Current(holds) {
		t.Fatal("an object changed since its digest was taken must be current nowhere")
	}
}

func TestSlim_DropsTheBodyOnlyOfAnObjectThatHoldsDesired(t *testing.T) {
	desired := newDesiredT(t, svc(map[string]any{"app": "orders"}, int64(8080)))
	live := stampedOf(t, desired)
	_ = unstructured.SetNestedField(live.Object, "ClusterIP", "spec", "type")
	_ = unstructured.SetNestedField(live.Object, "10.0.0.1", "status", "loadBalancer", "ingress")
	_ = unstructured.SetNestedField(live.Object, int64(3), "status", "observedGeneration")
	if !desired.Slim(live) {
		t.Fatal("a live object holding desired must be slimmed")
	}
	if _, ok := live.Object["spec"]; ok {
		t.Fatal("a slim copy keeps no spec")
	}
	if live.GetName() != "orders-v1" || live.GetLabels()["app"] != "orders" {
		t.Fatalf("a slim copy keeps metadata: %v", live.Object)
	}
	if _, ok := live.Object["status"]; ok {
		t.Fatal("a slim copy keeps its status encoded, not as maps")
	}
	if got, _, _ := unstructured.NestedString(Status(live), "loadBalancer", "ingress"); got != "10.0.0.1" {
		t.Fatalf("a slim copy's status reads %v", Status(live))
	}
	if n, _, _ := unstructured.NestedInt64(Status(live), "observedGeneration"); n != 3 {
		t.Fatalf("a slim copy's status must keep integers as int64, as a decoded object has them: %v", Status(live))
	}
	if !desired.Current(live) {
		t.Fatal("a slim copy of desired is current")
	}
	if !desired.Slim(live) {
		t.Fatal("a slim copy is slim")
	}
	if got, _, _ := unstructured.NestedString(Status(live), "loadBalancer", "ingress"); got != "10.0.0.1" {
		t.Fatalf("a slim copy slimmed again lost its status: %v", live.Object)
	}
	other := newDesiredT(t, svc(map[string]any{"app": "orders"}, int64(9090)))
	if other.Current(live) {
		t.Fatal("a slim copy is current only for the digest it holds")
	}

	changed := stampedOf(t, desired)
	_ = unstructured.SetNestedField(changed.Object, "billing", "metadata", "labels", "app")
	if desired.Slim(changed) {
		t.Fatal("a changed object must not be slimmed")
	}
	if _, ok := changed.Object["spec"]; !ok {
		t.Fatal("an object that is not slimmed keeps its body")
	}
}
