package reconciler_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/dataplane"
	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/internal/localcluster"
	"github.com/meshcd/meshcd/reconciler"
)

// writeCanary writes the fleet's namespaces, each with a waypoint and an
// application Service bound to it, and a one-stage canary rollout.
func (f *fleet) writeCanary(gates string) {
	f.t.Helper()
	var b strings.Builder
	for _, ns := range f.names {
		fmt.Fprintf(&b, "---\napiVersion: meshcd.dev/v1alpha1\nkind: MeshNamespace\nmetadata: {name: %s}\nspec: {waypoint: {}}\n", ns)
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Service\nmetadata: {name: app, namespace: %s}\nspec: {selector: {app: app}, ports: [{name: http, port: 8080}]}\n", ns)
	}
	if gates != "" {
		fmt.Fprintf(&b, `---
apiVersion: meshcd.dev/v1alpha1
kind: DataplaneRollout
metadata: {name: proxies}
spec:
  bundle: "1.31.1"
  waypoints:
    stages:
      - {name: all, namespaces: [%s], strategy: canary, steps: [5, 25, 50, 100], gates: %s}
`, strings.Join(f.names, ", "), gates)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "mesh.yaml"), []byte(b.String()), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// weights are the distinct canary weights a Namespace carried, in etcd's
// order, from a watch; "-" stands for no canary label.
func weights(r *recorder) []string {
	var out []string
	for _, e := range r.all(func(e seen) bool { return e.kind == "Namespace" }) {
		w := "-"
		if e.obj.GetLabels()[ambient.LabelUseWaypointCanary] != "" {
			w = e.obj.GetAnnotations()[ambient.AnnotationUseWaypointCanaryWeight]
		}
		if len(out) == 0 || out[len(out)-1] != w {
			out = append(out, w)
		}
	}
	return out
}

// canaryWeight is the weight istiod itself resolved for a Service's canary
// waypoint (/debug/ambientz), or -1 when it resolved none.
func canaryWeight(t *testing.T, namespace, service string) (int, []localcluster.WeightedWaypoint) {
	t.Helper()
	ww, err := localcluster.WeightedWaypoints(context.Background(), clustertest.Cluster(t).IstiodMonitoringURL(), namespace, service)
	if err != nil {
		t.Fatalf("istiod's ambientz: %v", err)
	}
	for _, w := range ww {
		if w.Name == "waypoint"+dataplane.CanarySuffix {
			return w.Weight, ww
		}
	}
	return -1, ww
}

func (f *fleet) deploymentOf(ns, name string) *appsv1.Deployment {
	f.t.Helper()
	d := &appsv1.Deployment{}
	if err := f.client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
		f.t.Fatalf("Deployment %s/%s: %v", ns, name, err)
	}
	return d
}

func TestRollout_CanaryStepsTheWeightsPromotesAndSurvivesARestart(t *testing.T) {
	f := newFleet(t, 2)
	f.writeCanary("")
	if res := f.reconcile(); res.Reason != reconciler.ReasonSucceeded {
		t.Fatalf("before the rollout: %s %+v", res.Reason, res.Health)
	}
	recs := map[string]*recorder{}
	for _, ns := range f.names {
		recs[ns] = record(t, ns)
	}
	before := f.image(f.names[0])
	f.writeCanary("{timeout: 90s}")
	f.writes.Take()

	type step struct {
		weight int32
		took   time.Duration
		writes int
	}
	var steps []step
	last, lastAt := int32(-1), time.Now()
	start := time.Now()
	restarted := false
	var sawIstiod []localcluster.WeightedWaypoint
	st := f.until("proxies", dataplane.PhaseSucceeded, func(st *dataplane.State) {
		n, _ := f.writes.Take()
		if len(steps) > 0 {
			steps[len(steps)-1].writes += n
		}
		c := st.Canary
		if c == nil || c.Step < 0 || c.Weight == last {
			return
		}
		if len(steps) > 0 {
			steps[len(steps)-1].took = time.Since(lastAt)
		}
		steps = append(steps, step{weight: c.Weight})
		last, lastAt = c.Weight, time.Now()
		for _, ns := range f.names {
			if img := f.image(ns); img != before && !c.Promoting {
				t.Fatalf("the primary of %s moved to %s at weight %d, before promotion", ns, img, c.Weight)
			}
		}
		if c.Weight == 25 && !restarted {
			// istiod itself resolved the canary and its weight.
			deadline := time.Now().Add(20 * time.Second)
			for w := -1; w != 25; {
				if time.Now().After(deadline) {
					t.Fatalf("istiod's ambientz never showed the canary at weight 25 for app.%s: %v", f.names[0], sawIstiod)
				}
				time.Sleep(200 * time.Millisecond)
				w, sawIstiod = canaryWeight(t, f.names[0], "app")
			}
			// meshcd is killed between two steps; a new one takes over.
			opts := reconciler.DefaultOptions()
			opts.Name, opts.HealthHold = f.ns, time.Second
			f.rec = reconciler.New(f.client, opts)
			restarted = true
		}
	})
	if len(steps) > 0 {
		steps[len(steps)-1].took = time.Since(lastAt)
	}
	took := time.Since(start)
	if !restarted {
		t.Fatal("the rollout never stopped at weight 25, where istiod is asked")
	}
	t.Logf("istiod at weight 25: weightedWaypoints %v", sawIstiod)

	for _, ns := range f.names {
		if got := strings.Join(weights(recs[ns]), " "); got != "- 5 25 50 100 -" {
			t.Errorf("namespace %s carried canary weights %q, want \"- 5 25 50 100 -\" (no repeat, no reset across the restart)", ns, got)
		}
		if img := f.image(ns); img != target {
			t.Errorf("the primary of %s runs %s after promotion, want %s", ns, img, target)
		}
		if _, err := f.get("gateway.networking.k8s.io/v1", "Gateway", ns, "waypoint-canary"); !apierrors.IsNotFound(err) {
			t.Errorf("the canary Gateway of %s is still there after promotion (%v)", ns, err)
		}
		gws := &metav1.PartialObjectMetadataList{}
		gws.SetGroupVersionKind(ambient.GatewayGK.WithVersion("v1").GroupVersion().WithKind("GatewayList"))
		if err := f.client.List(context.Background(), gws, client.InNamespace(ns)); err != nil || len(gws.Items) != 1 {
			t.Errorf("namespace %s has %d waypoints after promotion, want 1 (%v)", ns, len(gws.Items), err)
		}
		// The canary Gateway went only after the label had moved off.
		on := recs[ns].first(nsLabel(ambient.LabelUseWaypointCanary, "waypoint-canary"))
		gone := recs[ns].first(gatewayDeleted("waypoint-canary"))
		if on == nil || gone == nil {
			t.Errorf("namespace %s: the watch saw no canary label (%v) or no canary Gateway deletion (%v)", ns, on != nil, gone != nil)
			continue
		}
		off := recs[ns].first(func(e seen) bool {
			return e.kind == "Namespace" && e.obj.GetLabels()[ambient.LabelUseWaypointCanary] == "" && e.rv > on.rv
		})
		if off == nil || off.rv > gone.rv {
			t.Errorf("namespace %s: the canary label must go before the canary Gateway", ns)
		}
	}
	t.Logf("canary rollout over 2 namespaces, 0 s soak: %s; %s", took.Round(time.Millisecond), st.Message)
	for _, s := range steps {
		t.Logf("  weight %3d: %6s, %d API writes until the next step", s.weight, s.took.Round(time.Millisecond), s.writes)
	}
}

func TestRollout_ACanaryGateFailingAt25RemovesTheCanaryAndLeavesThePrimary(t *testing.T) {
	f := newFleet(t, 1)
	// The broken canary keeps its Gateway unprogrammed: bound the health
	// wait of each reconcile well below the gate's timeout.
	opts := reconciler.DefaultOptions()
	opts.Name, opts.HealthHold, opts.HealthTimeout = f.ns, time.Second, 3*time.Second
	f.rec = reconciler.New(f.client, opts)
	ns := f.names[0]
	f.writeCanary("")
	if res := f.reconcile(); res.Reason != reconciler.ReasonSucceeded {
		t.Fatalf("before the rollout: %s %+v", res.Reason, res.Health)
	}
	rec := record(t, ns)
	primary := f.deploymentOf(ns, "waypoint")
	f.writeCanary("{timeout: 6s}")
	broken := false
	sawFailed := false
	st := f.until("proxies", dataplane.PhaseRolledBack, func(st *dataplane.State) {
		sawFailed = sawFailed || st.Phase == dataplane.PhaseFailed
		if broken || st.Canary == nil || st.Canary.Weight != 25 {
			return
		}
		// The canary loses its pod at 25 and cannot get another: a quota
		// of one pod, which the primary's uses.
		quota := &corev1.ResourceQuota{
			ObjectMeta: metav1.ObjectMeta{Name: "one-pod", Namespace: ns},
			Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("1")}},
		}
		if err := f.client.Create(context.Background(), quota); err != nil {
			t.Fatal(err)
		}
		if err := f.client.DeleteAllOf(context.Background(), &corev1.Pod{}, client.InNamespace(ns),
			client.MatchingLabels{ambient.LabelGatewayName: "waypoint-canary"}, client.GracePeriodSeconds(0)); err != nil {
			t.Fatal(err)
		}
		broken = true
	})
	if !broken || !sawFailed || !strings.Contains(st.Message, "at weight 25") {
		t.Fatalf("want a failure at weight 25, then RolledBack; broken %v, saw Failed %v, message %q", broken, sawFailed, st.Message)
	}
	t.Logf("rolled back: %s", st.Message)
	if got := strings.Join(weights(rec), " "); got != "- 5 25 -" {
		t.Fatalf("the Namespace carried canary weights %q, want \"- 5 25 -\"", got)
	}
	if _, err := f.get("gateway.networking.k8s.io/v1", "Gateway", ns, "waypoint-canary"); !apierrors.IsNotFound(err) {
		t.Fatalf("the canary Gateway must be removed (%v)", err)
	}
	after := f.deploymentOf(ns, "waypoint")
	if after.Generation != primary.Generation || f.image(ns) != proxyOf(primary) {
		t.Fatalf("the primary changed: generation %d -> %d, image %s -> %s", primary.Generation, after.Generation, proxyOf(primary), f.image(ns))
	}
}

func proxyOf(d *appsv1.Deployment) string {
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "istio-proxy" {
			return c.Image
		}
	}
	return ""
}

func TestHealth_ACanaryIstiodRefusesIsUnhealthyWithItsMessage(t *testing.T) {
	e := newEnv(t, func(o *reconciler.Options) { o.HealthHold, o.HealthTimeout = time.Second, 30*time.Second })
	// A canary that names the primary itself: istiod keeps WaypointBound
	// True and refuses the canary only in the condition's message.
	e.spec(map[string]string{"mesh.yaml": meshNamespace, "app.yaml": `apiVersion: v1
kind: Service
metadata:
  name: app
  namespace: NS
  labels: {istio.io/use-waypoint: waypoint, istio.io/use-waypoint-canary: waypoint}
  annotations: {istio.io/use-waypoint-canary-weight: "10"}
spec:
  selector: {app: app}
  ports: [{name: http, port: 8080}]
`})
	res := e.reconcileUntil("istiod's verdict on the canary", func(r *reconciler.Result) bool {
		for _, h := range r.Health {
			if h.Object == "Service "+e.ns+"/app" && !h.Pending {
				return true
			}
		}
		return false
	})
	for _, h := range res.Health {
		if h.Object != "Service "+e.ns+"/app" {
			continue
		}
		if h.Healthy || !strings.Contains(h.Message, "Canary waypoint not attached") {
			t.Fatalf("a refused canary must be unhealthy with istiod's message: %+v", h)
		}
		t.Logf("istiod: %s", h.Message)
	}
	if res.Reason != reconciler.ReasonUnhealthy {
		t.Fatalf("reconcile reason %s, want Unhealthy", res.Reason)
	}
}
