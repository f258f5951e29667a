package demo_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/internal/demo"
	"github.com/meshcd/meshcd/reconciler/plan"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// TestDemo_RunsTheMainJobEndToEnd is the short form of `make demo`.
func TestDemo_RunsTheMainJobEndToEnd(t *testing.T) {
	c := clustertest.Cluster(t)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := demo.Run(ctx, demo.Options{Example: "../../examples/helloworld-canary", Config: c.RESTConfig(), Out: &out, Interval: time.Second, Name: "demo-test"})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Plan.Changes) != 1 || res.Plan.Changes[0].Object != "HTTPRoute hello/helloworld" || res.Plan.Changes[0].Action != plan.Changed {
		t.Fatalf("the weight change plans one changed route: %+v", res.Plan.Changes)
	}
	// A push is applied within one interval (plus the reconcile itself).
	if res.WeightApplied > 10*time.Second {
		t.Fatalf("the merged change took %s to apply with a 1 s interval", res.WeightApplied)
	}
	for _, want := range []string{"helloworld-v1=50 helloworld-v2=50", "corrected: istio.io/use-waypoint=waypoint", "Gateway hello/waypoint healthy", "HTTPRoute hello/helloworld healthy"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo does not show %q", want)
		}
	}
}
