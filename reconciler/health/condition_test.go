package health

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/reconciler/apply"
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

func TestReport_ASlimCopyIsJudgedAsItsWholeObject(t *testing.T) {
	route := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"name": "reviews", "namespace": "shop"},
		"spec":     map[string]any{"parentRefs": []any{map[string]any{"group": "", "kind": "Service", "name": "reviews"}}},
	}}
	desired, err := apply.NewDesired(route)
	if err != nil {
		t.Fatal(err)
	}
	for _, accepted := range []string{"True", "False"} {
		whole, err := desired.Stamped()
		if err != nil {
			t.Fatal(err)
		}
		_ = unstructured.SetNestedSlice(whole.Object, []any{map[string]any{
			"parentRef":      map[string]any{"group": "", "kind": "Service", "name": "reviews"},
			"controllerName": "istio.io/gateway-controller",
			"conditions": []any{map[string]any{
				"type": ambient.ConditionAccepted, "status": accepted, "reason": "Accepted", "message": "istiod says " + accepted, "observedGeneration": int64(1),
			}},
		}}, "status", "parents")
		slim := whole.DeepCopy()
		if !desired.Slim(slim) {
			t.Fatal("a live copy holding desired must be slimmed")
		}
		if _, ok := slim.Object["status"]; ok {
			t.Fatal("a slim copy keeps its status encoded, not as maps")
		}
		s := &snapshot{}
		want, _ := s.report(ambient.HTTPRouteGK, "HTTPRoute shop/reviews", route, whole)
		got, judged := s.report(ambient.HTTPRouteGK, "HTTPRoute shop/reviews", route, slim)
		if !judged || got != want || got.Healthy != (accepted == "True") {
			t.Fatalf("Accepted=%s: slim copy judged %+v (judged %v), whole %+v", accepted, got, judged, want)
		}
	}
}
