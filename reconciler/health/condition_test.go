package health

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/ambient"
)

func TestCondition_HealthyReadsReasonAndMessage(t *testing.T) {
	for _, tc := range []struct {
		c    Condition
		want bool
	}{
		{Condition{Status: "True", Reason: "WaypointAccepted", Message: "bound to waypoint"}, true},
		{Condition{Status: "False", Reason: "WaypointAccepted"}, false},
		{Condition{Status: "True", Reason: ambient.ReasonUnsupportedValue}, false},
		{Condition{Status: "True", Reason: ambient.ReasonPartiallyInvalid}, false},
		{Condition{Status: "True", Message: "Service has no waypoint; in ambient mode, route will not be respected"}, false},
		// istiod keeps WaypointBound True when it refuses the canary, and
		// says so only in the message.
		{Condition{Status: "True", Reason: "WaypointAccepted", Message: "Canary waypoint not attached: Gateway shop/waypoint-canary not found"}, false},
	} {
		if got := tc.c.Healthy(); got != tc.want {
			t.Errorf("%+v: Healthy() = %v, want %v", tc.c, got, tc.want)
		}
	}
}

func TestReport_ServiceEnrolledByItsNamespaceIsJudgedByWaypointBound(t *testing.T) {
	svc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "app", "namespace": "shop"},
		"status": map[string]any{"conditions": []any{map[string]any{
			"type": ambient.ConditionWaypointBound, "status": "True", "reason": "WaypointAccepted",
			"message": "Canary waypoint not attached: weight 0 is invalid",
		}}},
	}}
	s := &snapshot{objects: map[ref]*unstructured.Unstructured{{ambient.ServiceGK, "shop", "app"}: svc}}
	r, judged := s.report(ambient.ServiceGK, "Service shop/app", svc, svc)
	if !judged || r.Healthy || r.Message == "" {
		t.Fatalf("a Service bound through its namespace with a refused canary must be unhealthy with istiod's message: %+v (judged %v)", r, judged)
	}
	unbound := svc.DeepCopy()
	delete(unbound.Object, "status")
	s.objects[ref{ambient.ServiceGK, "shop", "app"}] = unbound
	if _, judged := s.report(ambient.ServiceGK, "Service shop/app", unbound, unbound); judged {
		t.Fatal("a Service that uses no waypoint is not judged")
	}
}
