package health

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
)

// listed serves one Service as every list of Services; other kinds are empty.
type listed struct {
	client.Reader
	svc *unstructured.Unstructured
}

func (l *listed) List(_ context.Context, list client.ObjectList, _ ...client.ListOption) error {
	u := list.(*unstructured.UnstructuredList)
	if u.GetKind() == "ServiceList" {
		u.Items = []unstructured.Unstructured{*l.svc}
	}
	return nil
}

func service(rv, status string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "app", "namespace": "shop", "resourceVersion": rv, "labels": map[string]any{ambient.LabelUseWaypoint: "waypoint"}},
		"status": map[string]any{"conditions": []any{map[string]any{
			"type": ambient.ConditionWaypointBound, "status": status, "reason": "WaypointAccepted", "message": "istiod says " + status,
		}}},
	}}
}

func TestReadBack_JudgesAgainOnlyAChangedLiveCopy(t *testing.T) {
	desired := service("", "True")
	lists := &listed{svc: service("1", "True")}
	c := &Checker{Lists: lists}
	read := func() Report {
		t.Helper()
		reports, err := c.ReadBack(context.Background(), []*unstructured.Unstructured{desired})
		if err != nil || len(reports) != 1 {
			t.Fatalf("read-back: %v, %+v", err, reports)
		}
		return reports[0]
	}
	if r := read(); !r.Healthy || r.Object != "Service shop/app" {
		t.Fatalf("a bound Service must be healthy: %+v", r)
	}
	// The same resourceVersion is not judged again: a copy whose status
	// was changed behind the apiserver's back keeps the verdict.
	lists.svc = service("1", "False")
	if r := read(); !r.Healthy {
		t.Fatalf("an unchanged resourceVersion was judged again: %+v", r)
	}
	lists.svc = service("2", "False")
	if r := read(); r.Healthy || !strings.Contains(r.Message, "istiod says False") {
		t.Fatalf("a new resourceVersion with WaypointBound=False must be unhealthy with istiod's message: %+v", r)
	}
	lists.svc = service("3", "True")
	if r := read(); !r.Healthy {
		t.Fatalf("a new resourceVersion with WaypointBound=True must be healthy again: %+v", r)
	}
}

func TestReadBack_ADesiredObjectRenamedInPlaceIsNotServedTheOldVerdict(t *testing.T) {
	desired := service("", "True")
	lists := &listed{svc: service("1", "True")}
	c := &Checker{Lists: lists}
	reports, err := c.ReadBack(context.Background(), []*unstructured.Unstructured{desired})
	if err != nil || len(reports) != 1 || !reports[0].Healthy {
		t.Fatalf("a bound Service must be healthy: %v, %+v", err, reports)
	}
	// The same desired object, renamed in place: the live Service of the
	// new name is unhealthy, at the resourceVersion the old one was judged.
	desired.SetName("payments")
	renamed := service("1", "False")
	renamed.SetName("payments")
	lists.svc = renamed
	reports, err = c.ReadBack(context.Background(), []*unstructured.Unstructured{desired})
	if err != nil || len(reports) != 1 || reports[0].Healthy || reports[0].Object != "Service shop/payments" {
		t.Fatalf("the renamed object was served the verdict of the old name: %v, %+v", err, reports)
	}
}
