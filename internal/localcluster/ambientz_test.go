package localcluster

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// A trimmed /debug/ambientz answer as the pinned istiod writes it
// (protojson: a weight of 0 is left out).
const ambientzAnswer = `{"workloads": [], "policies": [], "services": [
 {"name": "helloworld", "namespace": "other", "weightedWaypoints": [{"destination": {"hostname": {"namespace": "other", "hostname": "waypoint.other.svc.cluster.local"}}, "weight": 100}]},
 {"name": "helloworld", "namespace": "hello", "hostname": "helloworld.hello.svc.cluster.local",
  "waypoint": {"destination": {"hostname": {"namespace": "hello", "hostname": "waypoint.hello.svc.cluster.local"}}},
  "weightedWaypoints": [
   {"destination": {"hostname": {"namespace": "hello", "hostname": "waypoint.hello.svc.cluster.local"}}},
   {"destination": {"hostname": {"namespace": "hello", "hostname": "waypoint-canary.hello.svc.cluster.local"}}, "weight": 100}]},
 {"name": "plain", "namespace": "hello"}]}`

func TestWeightedWaypoints_ReadsTheServicesWeightsFromAmbientz(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/ambientz" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, ambientzAnswer)
	}))
	defer srv.Close()
	got, err := WeightedWaypoints(context.Background(), srv.URL, "hello", "helloworld")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[waypoint 0% waypoint-canary 100%]" {
		t.Fatalf("weighted waypoints %v", got)
	}
	if none, err := WeightedWaypoints(context.Background(), srv.URL, "hello", "plain"); err != nil || len(none) != 0 {
		t.Fatalf("a Service without a canary has no weighted waypoints: %v %v", none, err)
	}
	if _, err := WeightedWaypoints(context.Background(), srv.URL+"/nope", "hello", "helloworld"); err == nil {
		t.Fatal("a 404 from istiod is an error")
	}
}
