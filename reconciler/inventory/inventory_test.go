package inventory

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/ambient"
)

func obj(apiVersion, kind, namespace, name string, partial bool) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(namespace)
	u.SetName(name)
	if partial {
		u.SetAnnotations(map[string]string{ambient.AnnotationOwnership: ambient.OwnershipPartial})
	}
	return u
}

func ids(entries []Entry) []string {
	out := []string{}
	for _, e := range entries {
		out = append(out, e.String())
	}
	return out
}

func TestStale_IsOldMinusNew(t *testing.T) {
	old, err := New([]*unstructured.Unstructured{
		obj("gateway.networking.k8s.io/v1", "HTTPRoute", "shop", "orders", false),
		obj("v1", "Service", "shop", "orders-v1", false),
		obj("v1", "Namespace", "", "shop", true),
	})
	if err != nil {
		t.Fatal(err)
	}
	next, err := New([]*unstructured.Unstructured{
		obj("v1", "Service", "shop", "orders-v1", false),
		obj("v1", "Service", "shop", "orders-v2", false),
	})
	if err != nil {
		t.Fatal(err)
	}
	got := ids(old.Stale(next))
	want := []string{"Namespace shop", "HTTPRoute shop/orders"} // sorted by id: cluster-scoped first
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("stale = %v, want %v", got, want)
	}
	if s := next.Stale(next); len(s) != 0 {
		t.Fatalf("an inventory has nothing stale against itself, got %v", ids(s))
	}
}

func TestUnion_KeepsBothSidesSorted(t *testing.T) {
	a, _ := New([]*unstructured.Unstructured{obj("v1", "Service", "b", "x", false), obj("v1", "Service", "a", "x", false)})
	b, _ := New([]*unstructured.Unstructured{obj("v1", "Service", "c", "x", false), obj("v1", "Service", "a", "x", false)})
	u := a.Union(b)
	got := ids(u.Entries)
	want := []string{"Service a/x", "Service b/x", "Service c/x"}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("union = %v, want %v", got, want)
	}
	// What a prune kept comes in any order; the other side's version wins.
	kept := &Inventory{Entries: []Entry{{ID: b.Entries[1].ID, Version: "v2"}, {ID: b.Entries[0].ID, Version: "v2"}}}
	u = a.Union(kept)
	got = ids(u.Entries)
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("union with unsorted entries = %v, want %v", got, want)
	}
	if u.Entries[0].Version != "v2" || u.Entries[1].Version != "v1" {
		t.Fatalf("the other side's version must win for an object on both sides: %+v", u.Entries)
	}
}

func TestEntryObject_RoundTripsIdentityAndPartialOwnership(t *testing.T) {
	inv, err := New([]*unstructured.Unstructured{
		obj("security.istio.io/v1", "AuthorizationPolicy", "shop", "orders-l7", false),
		obj("v1", "Namespace", "", "shop", true),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range inv.Entries {
		u, err := e.Object()
		if err != nil {
			t.Fatal(err)
		}
		again, err := New([]*unstructured.Unstructured{u})
		if err != nil {
			t.Fatal(err)
		}
		if again.Entries[0] != e {
			t.Fatalf("round trip changed the entry: %+v != %+v", again.Entries[0], e)
		}
	}
	if !inv.Entries[0].Partial && !inv.Entries[1].Partial {
		t.Fatal("the Namespace entry must be partial")
	}
}

func TestEntryObject_MalformedIDIsAnError(t *testing.T) {
	if _, err := (Entry{ID: "not-an-id", Version: "v1"}).Object(); err == nil {
		t.Fatal("want an error for a malformed id")
	}
}

func TestKeyOf_ChangesWithAnIdentityChangedInPlace(t *testing.T) {
	objs := []*unstructured.Unstructured{obj("v1", "Service", "shop", "orders", false), obj("v1", "Namespace", "", "shop", true)}
	key := KeyOf(objs)
	if KeyOf([]*unstructured.Unstructured{obj("v1", "Service", "shop", "orders", false), obj("v1", "Namespace", "", "shop", true)}) != key {
		t.Fatal("the same identities at other pointers got another key")
	}
	for name, change := range map[string]func(o *unstructured.Unstructured){
		"renamed":       func(o *unstructured.Unstructured) { o.SetName("payments") },
		"moved":         func(o *unstructured.Unstructured) { o.SetNamespace("web") },
		"other version": func(o *unstructured.Unstructured) { o.SetAPIVersion("v2") },
		"other kind":    func(o *unstructured.Unstructured) { o.SetKind("Endpoints") },
		"partially owned": func(o *unstructured.Unstructured) {
			o.SetAnnotations(map[string]string{ambient.AnnotationOwnership: ambient.OwnershipPartial})
		},
	} {
		o := obj("v1", "Service", "shop", "orders", false)
		changed := []*unstructured.Unstructured{o, objs[1]}
		change(o)
		if KeyOf(changed) == key {
			t.Errorf("%s in place: the key did not change", name)
		}
	}
}

func TestStoreDecode_ServesNeitherACallersChangeNorAnOldEncoding(t *testing.T) {
	s := NewStore(nil, "meshcd-system", "meshcd-inventory-default")
	raw := `{"entries":[{"id":"shop_orders__Service","v":"v1"}]}`
	first, err := s.decode(map[string]string{dataKey: raw})
	if err != nil {
		t.Fatal(err)
	}
	first.Entries[0].ID = "changed by the caller"
	again, err := s.decode(map[string]string{dataKey: raw})
	if err != nil || again.Entries[0].ID != "shop_orders__Service" {
		t.Fatalf("got %+v, %v: a caller's change to a decoded inventory was served", again, err)
	}
	// Another encoding of the same length is decoded afresh.
	other := `{"entries":[{"id":"shop_orderz__Service","v":"v1"}]}`
	got, err := s.decode(map[string]string{dataKey: other})
	if err != nil || got.Entries[0].ID != "shop_orderz__Service" {
		t.Fatalf("got %+v, %v: the old encoding's inventory was served", got, err)
	}
}
