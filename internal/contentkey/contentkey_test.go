package contentkey

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func object() map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "orders", "namespace": "shop", "labels": map[string]any{"app": "orders"}},
		"spec":     map[string]any{"ports": []any{map[string]any{"port": int64(8080), "name": "http"}}, "publishNotReadyAddresses": false},
	}
}

func TestOf_EqualContentEqualKeyWhateverThePointers(t *testing.T) {
	a, b := object(), object()
	if Of(a) != Of(b) {
		t.Fatal("two copies of the same content got different keys")
	}
	// Map order plays no part: build the same map in the other order.
	c := map[string]any{}
	for _, k := range []string{"spec", "metadata", "kind", "apiVersion"} {
		c[k] = a[k]
	}
	if Of(c) != Of(a) {
		t.Fatal("the same map filled in another order got another key")
	}
}

func TestOf_ChangedInPlaceChangesTheKey(t *testing.T) {
	base := Of(object())
	for name, change := range map[string]func(o map[string]any){
		"label changed": func(o map[string]any) { o["metadata"].(map[string]any)["labels"].(map[string]any)["app"] = "web" },
		"field added":   func(o map[string]any) { o["spec"].(map[string]any)["sessionAffinity"] = "ClientIP" },
		"field removed": func(o map[string]any) { delete(o["metadata"].(map[string]any), "labels") },
		"number changed": func(o map[string]any) {
			o["spec"].(map[string]any)["ports"].([]any)[0].(map[string]any)["port"] = int64(8081)
		},
		"number as string": func(o map[string]any) {
			o["spec"].(map[string]any)["ports"].([]any)[0].(map[string]any)["port"] = "8080"
		},
		"bool flipped": func(o map[string]any) { o["spec"].(map[string]any)["publishNotReadyAddresses"] = true },
		"value moved to another key": func(o map[string]any) {
			m := o["metadata"].(map[string]any)
			m["name"], m["namespace"] = m["namespace"], m["name"]
		},
		"list item appended": func(o map[string]any) {
			s := o["spec"].(map[string]any)
			s["ports"] = append(s["ports"].([]any), map[string]any{"port": int64(9090)})
		},
	} {
		o := object()
		change(o)
		if Of(o) == base {
			t.Errorf("%s: the key did not change", name)
		}
	}
}

func TestObjects_OrderAndNilCount(t *testing.T) {
	a := &unstructured.Unstructured{Object: object()}
	b := &unstructured.Unstructured{Object: object()}
	b.SetName("payments")
	if Objects([]*unstructured.Unstructured{a, b}) == Objects([]*unstructured.Unstructured{b, a}) {
		t.Error("two objects in the other order got the same key")
	}
	if Objects([]*unstructured.Unstructured{a}) == Objects([]*unstructured.Unstructured{a, nil}) {
		t.Error("a nil object added did not change the key")
	}
	a2 := &unstructured.Unstructured{Object: object()}
	if Objects([]*unstructured.Unstructured{a, b}) != Objects([]*unstructured.Unstructured{a2, b}) {
		t.Error("equal objects at other pointers got another key")
	}
}

type spec struct {
	Name     string
	Backends map[string]int
	next     *spec
}

func TestOf_GoValuesAreKeyedByWhatTheyHold(t *testing.T) {
	a := map[string]any{"labels": map[string]string{"app": "orders"}}
	b := map[string]any{"labels": map[string]string{"app": "web"}}
	if Of(a) == Of(b) {
		t.Error("typed maps with other values got the same key")
	}
	if Of(a) != Of(map[string]any{"labels": map[string]string{"app": "orders"}}) {
		t.Error("equal typed maps got other keys")
	}
	if Of(map[string]any{"f": func() {}}) == Of(map[string]any{"f": func() {}}) {
		t.Error("a function matched")
	}
	s := &spec{Name: "orders", Backends: map[string]int{"v1": 90, "v2": 10}, next: &spec{Name: "web"}}
	k := Of(s)
	if Of(&spec{Name: "orders", Backends: map[string]int{"v2": 10, "v1": 90}, next: &spec{Name: "web"}}) != k {
		t.Error("an equal struct got another key")
	}
	s.Backends["v1"] = 80
	if Of(s) == k {
		t.Error("a map value changed in place did not change the key")
	}
	s.Backends["v1"] = 90
	s.next.Name = "payments"
	if Of(s) == k {
		t.Error("an unexported field's target changed in place did not change the key")
	}
	loop := &spec{}
	loop.next = loop
	if Of(loop) == Of(loop) {
		t.Error("a cycle matched")
	}
}
