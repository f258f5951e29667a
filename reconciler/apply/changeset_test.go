package apply

import (
	"errors"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestChangeSet_SummaryAndWrites(t *testing.T) {
	cs := &ChangeSet{}
	cs.add(Change{Object: "Service shop/a", Action: Created}, Change{Object: "Service shop/b", Action: Unchanged},
		Change{Object: "Namespace shop", Action: Waiting, Reason: "waypoint not ready"}, Change{Object: "HTTPRoute shop/r", Action: Configured})
	if got, want := cs.Summary(), "1 created, 1 configured, 1 unchanged, 1 waiting"; got != want {
		t.Fatalf("summary %q, want %q", got, want)
	}
	if cs.Writes() != 2 {
		t.Fatalf("writes = %d, want 2", cs.Writes())
	}
	if strings.Contains(cs.String(), "unchanged") || !strings.Contains(cs.String(), "Namespace shop waiting: waypoint not ready") {
		t.Fatalf("String() lists changes and reasons, not unchanged objects:\n%s", cs.String())
	}
	if (&ChangeSet{}).Summary() != "nothing to do" {
		t.Fatal("an empty change set says so")
	}
	var none *ChangeSet // a reconcile that stopped before applying
	if none.Summary() != "nothing applied" || none.Writes() != 0 {
		t.Fatalf("a nil change set: %q, %d writes", none.Summary(), none.Writes())
	}
}

func TestConflict_NamesTheOtherManagerAndFields(t *testing.T) {
	status := &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: 409, Reason: metav1.StatusReasonConflict,
		Message: `Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .spec.selector.app`,
		Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{
			Type: metav1.CauseTypeFieldManagerConflict, Message: `conflict with "kubectl-edit" using v1`, Field: ".spec.selector.app",
		}}},
	}}
	err := conflict("Service shop/orders-v1", status)
	var ce *ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("want a ConflictError, got %T", err)
	}
	if len(ce.Managers) != 1 || ce.Managers[0] != "kubectl-edit" || len(ce.Fields) != 1 || ce.Fields[0] != ".spec.selector.app" {
		t.Fatalf("managers %v fields %v", ce.Managers, ce.Fields)
	}
	msg := err.Error()
	for _, want := range []string{"Service shop/orders-v1", `"kubectl-edit"`, ".spec.selector.app", "--force"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("message %q lacks %q", msg, want)
		}
	}
	if !apierrors.IsConflict(errors.Unwrap(err)) {
		t.Fatal("the API error stays reachable")
	}
}
