package lister_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler/lister"
)

// Direct's one-pass decoding gives what client-go's decoder gives: the
// same items, the same values and types, the items' kind filled in.
func TestDirect_ListsWhatTheClientListsDecodingOnce(t *testing.T) {
	ctx := context.Background()
	c := clustertest.Client(t)
	ns := clustertest.Namespace(t, nil)
	managed := map[string]string{ambient.LabelManagedBy: ambient.ManagedByValue}
	for _, name := range []string{"a", "b"} {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: managed, Annotations: map[string]string{"n": "1"}},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}},
		}
		if err := c.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
	}
	policy := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
		"metadata": map[string]any{"name": "p", "namespace": ns, "labels": map[string]any{ambient.LabelManagedBy: ambient.ManagedByValue}},
		"spec":     map[string]any{"action": "ALLOW", "rules": []any{map[string]any{"to": []any{map[string]any{"operation": map[string]any{"ports": []any{"8080"}}}}}}},
	}}
	if err := c.Create(ctx, policy); err != nil {
		t.Fatal(err)
	}
	direct, err := lister.NewDirect(clustertest.Cluster(t).RESTConfig(), c)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		list  string
		opts  []client.ListOption
		items int
	}{
		{"v1/ServiceList", []client.ListOption{client.InNamespace(ns), client.MatchingLabels(managed)}, 2},
		{"security.istio.io/v1/AuthorizationPolicyList", []client.ListOption{client.InNamespace(ns), client.MatchingLabels(managed)}, 1},
		{"v1/NamespaceList", []client.ListOption{client.MatchingFields{"metadata.name": ns}}, 1},
		{"v1/ServiceList", []client.ListOption{client.InNamespace(ns), client.HasLabels{"absent"}}, 0},
	} {
		gv, kind := tc.list[:len(tc.list)-len(kindOf(tc.list))-1], kindOf(tc.list)
		want, got := stableLists(t, gv, kind, func(l *unstructured.UnstructuredList) error { return c.List(ctx, l, tc.opts...) },
			func(l *unstructured.UnstructuredList) error { return direct.List(ctx, l, tc.opts...) })
		if len(got.Items) != tc.items || !equality.Semantic.DeepEqual(got.Items, want.Items) {
			t.Fatalf("%s: Direct listed %d items, the client %d, or their contents differ:\n%v\n%v", tc.list, len(got.Items), len(want.Items), got.Items, want.Items)
		}
		for _, it := range got.Items {
			if it.GetKind() != kind[:len(kind)-4] || it.GetAPIVersion() != gv {
				t.Fatalf("%s: an item is %s %s", tc.list, it.GetAPIVersion(), it.GetKind())
			}
		}
		if got.GetResourceVersion() == "" {
			t.Fatalf("%s: the list's own metadata was lost", tc.list)
		}
	}
	// A port is an int64, as client-go decodes it.
	svcs := &unstructured.UnstructuredList{}
	svcs.SetAPIVersion("v1")
	svcs.SetKind("ServiceList")
	if err := direct.List(ctx, svcs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if port, _, _ := unstructured.NestedSlice(svcs.Items[0].Object, "spec", "ports"); port[0].(map[string]any)["port"] != int64(8080) {
		t.Fatalf("port decoded as %T", port[0].(map[string]any)["port"])
	}
	// An unknown kind is the mapper's error, and typed lists go to the client.
	unknown := &unstructured.UnstructuredList{}
	unknown.SetAPIVersion("example.com/v1")
	unknown.SetKind("WidgetList")
	if err := direct.List(ctx, unknown); !meta.IsNoMatchError(err) {
		t.Fatalf("an unknown kind: %v, want a no-match error", err)
	}
	typed := &corev1.ServiceList{}
	if err := direct.List(ctx, typed, client.InNamespace(ns)); err != nil || len(typed.Items) != 2 {
		t.Fatalf("typed list: %d items, %v", len(typed.Items), err)
	}
}

// stableLists lists with the client, then with Direct, then with the client
// again, until the client's two lists agree: istiod in the test cluster
// writes a policy's status at a time of its own, and a write between the
// lists is not a difference between the decoders.
func stableLists(t *testing.T, gv, kind string, byClient, byDirect func(*unstructured.UnstructuredList) error) (want, got *unstructured.UnstructuredList) {
	t.Helper()
	fresh := func() *unstructured.UnstructuredList {
		l := &unstructured.UnstructuredList{}
		l.SetAPIVersion(gv)
		l.SetKind(kind)
		return l
	}
	for attempt := 0; attempt < 20; attempt++ {
		var after *unstructured.UnstructuredList
		want, got, after = fresh(), fresh(), fresh()
		if err := byClient(want); err != nil {
			t.Fatal(err)
		}
		if err := byDirect(got); err != nil {
			t.Fatalf("%s/%s: %v", gv, kind, err)
		}
		if err := byClient(after); err != nil {
			t.Fatal(err)
		}
		if equality.Semantic.DeepEqual(want.Items, after.Items) {
			return want, got
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s/%s: the objects kept changing between lists", gv, kind)
	return nil, nil
}

func kindOf(list string) string {
	for i := len(list) - 1; i >= 0; i-- {
		if list[i] == '/' {
			return list[i+1:]
		}
	}
	return list
}
