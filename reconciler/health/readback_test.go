package health

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
)

// listed serves one Service as every list of Services and, when set, one
// Namespace as every list of Namespaces; other kinds are empty.
type listed struct {
	client.Reader
	svc, ns *unstructured.Unstructured
}

func (l *listed) List(_ context.Context, list client.ObjectList, _ ...client.ListOption) error {
	u := list.(*unstructured.UnstructuredList)
	switch {
	case u.GetKind() == "ServiceList":
		u.Items = []unstructured.Unstructured{*l.svc}
	case u.GetKind() == "NamespaceList" && l.ns != nil:
		u.Items = []unstructured.Unstructured{*l.ns}
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

func TestReadBack_AServiceInAnEnrolledNamespaceIsPendingUntilIstiodBindsIt(t *testing.T) {
	// The Service has no label of its own and istiod has written nothing
	// on it yet.
	unbound := func(rv string) *unstructured.Unstructured {
		s := service(rv, "True")
		s.SetLabels(nil)
		delete(s.Object, "status")
		return s
	}
	namespace := func(rv string, labels map[string]string) *unstructured.Unstructured {
		n := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace"}}
		n.SetName("shop")
		n.SetResourceVersion(rv)
		n.SetLabels(labels)
		return n
	}
	desired := []*unstructured.Unstructured{unbound("")}
	lists := &listed{svc: unbound("1"), ns: namespace("1", map[string]string{ambient.LabelDataplaneMode: "ambient"})}
	c := &Checker{Lists: lists}
	read := func() []Report {
		t.Helper()
		reports, err := c.ReadBack(context.Background(), desired)
		if err != nil {
			t.Fatalf("read-back: %v", err)
		}
		return reports
	}
	// Not enrolled yet (its label waits for the waypoint): istiod will
	// write nothing on the Service, so there is nothing to wait for.
	if r := read(); len(r) != 0 {
		t.Fatalf("a Service whose namespace uses no waypoint was reported: %+v", r)
	}
	// Enrolled: the same Service, at the same resourceVersion, is now
	// awaited, not served the verdict judged before the label.
	lists.ns = namespace("2", map[string]string{ambient.LabelDataplaneMode: "ambient", ambient.LabelUseWaypoint: "waypoint"})
	if r := read(); len(r) != 1 || !r[0].Pending || r[0].Healthy || !strings.Contains(r[0].Message, ambient.ConditionWaypointBound) {
		t.Fatalf("a Service in an enrolled namespace without WaypointBound must be pending: %+v", r)
	}
	// istiod binds it.
	lists.svc = service("2", "True")
	lists.svc.SetLabels(nil)
	if r := read(); len(r) != 1 || !r[0].Healthy || r[0].Pending {
		t.Fatalf("a bound Service must be healthy: %+v", r)
	}
	// A Service that opts out with use-waypoint=none is never awaited.
	lists.svc = unbound("3")
	lists.svc.SetLabels(map[string]string{ambient.LabelUseWaypoint: "none"})
	if r := read(); len(r) != 0 {
		t.Fatalf("a Service labelled use-waypoint=none was reported: %+v", r)
	}
}
