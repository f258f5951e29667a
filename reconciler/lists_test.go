package reconciler

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/reconciler/apply"
)

// countingReader answers every list with one Service named by how many
// lists it answered so far.
type countingReader struct {
	client.Reader
	lists int
}

func (c *countingReader) List(_ context.Context, list client.ObjectList, _ ...client.ListOption) error {
	c.lists++
	u := list.(*unstructured.UnstructuredList)
	item := unstructured.Unstructured{}
	item.SetName(string(rune('a' + c.lists - 1)))
	u.Items = []unstructured.Unstructured{item}
	return nil
}

func TestSharedLists_TheApplysListIsServedOnceToTheReadBackOfANoop(t *testing.T) {
	ctx := context.Background()
	server := &countingReader{}
	s := &sharedLists{Reader: server}
	list := func() string {
		t.Helper()
		l := &unstructured.UnstructuredList{}
		l.SetAPIVersion("v1")
		l.SetKind("ServiceList")
		if err := s.List(ctx, l, client.MatchingLabels{"app.kubernetes.io/managed-by": "meshcd"}); err != nil {
			t.Fatal(err)
		}
		name := l.Items[0].GetName()
		l.Items[0].SetName("changed by the caller")
		return name
	}
	noop := &apply.ChangeSet{Changes: []apply.Change{{Object: "Service shop/orders", Action: apply.Unchanged}}}
	wrote := &apply.ChangeSet{Changes: []apply.Change{{Object: "Service shop/orders", Action: apply.Configured}}}

	s.start()
	if got := list(); got != "a" {
		t.Fatalf("the apply's list: %q", got)
	}
	s.applied(noop, nil)
	if got := list(); got != "a" || server.lists != 1 {
		t.Fatalf("after a no-op the read-back got %q with %d lists, want the apply's list unchanged by its caller and 1 list", got, server.lists)
	}
	if got := list(); got != "b" || server.lists != 2 {
		t.Fatalf("a kept list was served twice: %q, %d lists", got, server.lists)
	}

	s.start()
	list()
	s.applied(wrote, nil)
	if got := list(); got != "d" {
		t.Fatalf("after a write the read-back got the apply's list %q", got)
	}

	s.start()
	list()
	s.applied(noop, &apply.ChangeSet{Changes: []apply.Change{{Object: "Service shop/old", Action: apply.Pruned}}})
	if got := list(); got != "f" {
		t.Fatalf("after a prune the read-back got the apply's list %q", got)
	}

	s.start()
	list()
	s.forget()
	if got := list(); got != "h" {
		t.Fatalf("a forgotten list was served: %q", got)
	}
}
