package demo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/dataplane"
	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/internal/demo"
	"github.com/meshcd/meshcd/reconciler/plan"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// TestDemo_RunsTheMainJobEndToEnd is the short form of `make demo`. The
// order of the rollout's stages is read from a watch of the cluster, not
// from the demo's narration.
func TestDemo_RunsTheMainJobEndToEnd(t *testing.T) {
	c := clustertest.Cluster(t)
	w := watchAll(t, c.RESTConfig())
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := demo.Run(ctx, demo.Options{Example: "../../examples/helloworld-canary", Config: c.RESTConfig(), Out: &out, Interval: time.Second, Name: "demo-test", IstiodMonitoringURL: c.IstiodMonitoringURL()})
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
	checkPlans(t, res)
	checkIstiod(t, res)
	checkStageOrder(t, w, res)
}

// checkPlans: the pull requests' plans name the stages, their namespaces,
// the ztunnel nodes, and what each merge starts.
func checkPlans(t *testing.T, res *demo.Result) {
	t.Helper()
	add := strings.Join(res.RolloutPlan.Rollouts, "\n")
	for _, want := range []string{
		"stage 1 of 4, tools (httpbin): replace",
		"stage 2 of 4, hello (hello): canary: a second waypoint on the new image takes 10% → 50% → 100%",
		"stage 3 of 4, rest (payments, shop): manual, waits for a commit that sets `promote: rest`",
		"stage 4 of 4, ztunnel on kwok-node-0, kwok-node-1, kwok-node-2: node by node",
		"merging starts stage tools (httpbin); then the rollout goes on by itself and stops before stage rest (payments, shop)",
	} {
		if !strings.Contains(add, want) {
			t.Errorf("the plan of the rollout's pull request lacks %q:\n%s", want, add)
		}
	}
	promote := strings.Join(res.PromotePlan.Rollouts, "\n")
	for _, want := range []string{"promotes stage rest (payments, shop)", "ztunnel on kwok-node-0, kwok-node-1, kwok-node-2", "to the end, ztunnel included"} {
		if !strings.Contains(promote, want) {
			t.Errorf("the plan of the promote lacks %q:\n%s", want, promote)
		}
	}
}

// checkIstiod: at each canary weight istiod itself resolved the canary
// waypoint with that weight and the primary with the rest.
func checkIstiod(t *testing.T, res *demo.Result) {
	t.Helper()
	var weights []int32
	for _, v := range res.Istiod {
		weights = append(weights, v.Weight)
		got := map[string]int{}
		for _, w := range v.Istiod {
			got[w.Name] = w.Weight
		}
		if got["waypoint-canary"] != int(v.Weight) || got["waypoint"] != 100-int(v.Weight) {
			t.Errorf("at weight %d istiod resolved %v", v.Weight, v.Istiod)
		}
	}
	if fmt.Sprint(weights) != "[10 50 100]" {
		t.Errorf("istiod was read at the weights %v, want [10 50 100]", weights)
	}
}

// checkStageOrder reads the rollout from the watch: the stages in the
// state ConfigMap, the proxy image annotations on the Gateways, the canary
// weights on the Namespace, and the ztunnel DaemonSet and pods.
func checkStageOrder(t *testing.T, w *watched, res *demo.Result) {
	t.Helper()
	// The stages and phases the state went through, in order.
	var stages []string
	for _, e := range w.of("ConfigMap") {
		if e.obj.GetName() != "meshcd-rollout-demo-test" {
			continue
		}
		raw, _, _ := unstructured.NestedString(e.obj.Object, "data", "proxies")
		st := &dataplane.State{}
		if raw == "" || json.Unmarshal([]byte(raw), st) != nil {
			continue
		}
		s := st.StageName + " " + string(st.Phase)
		if len(stages) == 0 || stages[len(stages)-1] != s {
			stages = append(stages, s)
		}
	}
	want := "tools Progressing, hello Progressing, rest Paused, rest Progressing, ztunnel Progressing, ztunnel Succeeded"
	t.Logf("watch: the rollout state went through %s", strings.Join(stages, ", "))
	if got := strings.Join(stages, ", "); got != want {
		t.Errorf("the rollout state went through\n  %s\nwant\n  %s", got, want)
	}

	b, err := dataplane.Lookup("1.31.1")
	if err != nil {
		t.Fatal(err)
	}
	pinned := func(ns, name string) func(event) bool {
		return func(e event) bool {
			return e.kind == "Gateway" && e.obj.GetNamespace() == ns && e.obj.GetName() == name &&
				e.typ != watch.Deleted && e.obj.GetAnnotations()[ambient.AnnotationProxyImage] == b.Proxy
		}
	}
	canaryGone := func(e event) bool {
		return e.kind == "Gateway" && e.obj.GetNamespace() == "hello" && e.obj.GetName() == "waypoint-canary" && e.typ == watch.Deleted
	}
	ztunnelSet := func(e event) bool {
		img, _ := containerImage(e.obj, "spec", "template", "spec", "containers")
		return e.kind == "DaemonSet" && e.obj.GetName() == dataplane.ZtunnelName && img == b.Ztunnel
	}
	// A step marked with the one before it belongs to the same stage: the
	// stage writes them concurrently, so only their order against the
	// stages before and after is asserted.
	order := []struct {
		what  string
		match func(event) bool
		with  bool
	}{
		{"stage tools pins httpbin's waypoint", pinned("httpbin", "waypoint"), false},
		{"stage hello starts the canary waypoint", pinned("hello", "waypoint-canary"), false},
		{"stage hello promotes hello's waypoint", pinned("hello", "waypoint"), false},
		{"stage hello removes the canary", canaryGone, false},
		{"stage rest pins shop's waypoint", pinned("shop", "waypoint"), false},
		{"stage rest pins payments' waypoint", pinned("payments", "waypoint"), true},
		{"stage ztunnel sets the DaemonSet's image", ztunnelSet, false},
	}
	// before is the last event of the steps before this one's stage, last
	// the last event so far.
	var before, last *event
	var beforeWhat, lastWhat string
	for i, o := range order {
		e := w.first(o.match)
		if e == nil {
			t.Errorf("the watch never saw: %s", o.what)
			continue
		}
		if !o.with {
			before, beforeWhat = last, lastWhat
		}
		if before != nil && e.rv < before.rv {
			t.Errorf("%q (rv %d) came before %q (rv %d)", o.what, e.rv, beforeWhat, before.rv)
		}
		if i >= 4 && e.at.Before(res.PromoteMerged) {
			t.Errorf("%q at %s, before the promote merged at %s", o.what, e.at, res.PromoteMerged)
		}
		t.Logf("watch: rv %d: %s", e.rv, o.what)
		if last == nil || e.rv > last.rv {
			last, lastWhat = e, o.what
		}
	}

	// The canary weights on the hello Namespace, in etcd's order.
	var weights []string
	for _, e := range w.of("Namespace") {
		if e.obj.GetName() != "hello" {
			continue
		}
		v := "-"
		if e.obj.GetLabels()[ambient.LabelUseWaypointCanary] != "" {
			v = e.obj.GetAnnotations()[ambient.AnnotationUseWaypointCanaryWeight]
		}
		if len(weights) == 0 || weights[len(weights)-1] != v {
			weights = append(weights, v)
		}
	}
	t.Logf("watch: Namespace hello carried the canary weights %s", strings.Join(weights, " "))
	if got := strings.Join(weights, " "); got != "- 10 50 100 -" {
		t.Errorf("Namespace hello carried the canary weights %q, want \"- 10 50 100 -\"", got)
	}

	checkNodeByNode(t, w, b.Ztunnel)
}

// checkNodeByNode: the old ztunnel pods were deleted one node at a time,
// in node order, each once the node before had its new pod Ready.
func checkNodeByNode(t *testing.T, w *watched, image string) {
	t.Helper()
	var order []string
	deletedAt, readyAt := map[string]int64{}, map[string]int64{}
	for _, e := range w.of("Pod") {
		node, _, _ := unstructured.NestedString(e.obj.Object, "spec", "nodeName")
		img, _ := containerImage(e.obj, "spec", "containers")
		_, deleted := deletedAt[node]
		_, ready := readyAt[node]
		switch {
		case img != image && !deleted && (e.typ == watch.Deleted || e.obj.GetDeletionTimestamp() != nil):
			deletedAt[node] = e.rv
			order = append(order, node)
		case img == image && !ready && e.typ != watch.Deleted && podReady(e.obj):
			readyAt[node] = e.rv
		}
	}
	t.Logf("watch: old ztunnel pods deleted on %s, each after the node before had its new pod Ready (rv %v, %v)", strings.Join(order, " "), deletedAt, readyAt)
	if got := strings.Join(order, " "); got != "kwok-node-0 kwok-node-1 kwok-node-2" {
		t.Fatalf("old ztunnel pods deleted on the nodes %q, want one at a time on kwok-node-0 kwok-node-1 kwok-node-2", got)
	}
	for i := 1; i < len(order); i++ {
		if r := readyAt[order[i-1]]; r == 0 || r > deletedAt[order[i]] {
			t.Errorf("the old ztunnel pod on %s was deleted (rv %d) before the new pod on %s was Ready (rv %d)", order[i], deletedAt[order[i]], order[i-1], r)
		}
	}
}

func podReady(o *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// containerImage is the image of the istio-proxy container in the list at
// path.
func containerImage(o *unstructured.Unstructured, path ...string) (string, bool) {
	cs, _, _ := unstructured.NestedSlice(o.Object, path...)
	for _, c := range cs {
		m, _ := c.(map[string]any)
		if m["name"] == "istio-proxy" {
			img, ok := m["image"].(string)
			return img, ok
		}
	}
	return "", false
}

// event is one watch event.
type event struct {
	rv   int64
	at   time.Time
	kind string
	typ  watch.EventType
	obj  *unstructured.Unstructured
}

// watched keeps the events of the watches watchAll started.
type watched struct {
	mu     sync.Mutex
	events []event
}

// watchAll watches, until the test ends, what the rollout changes: the
// Gateways and Namespaces, meshcd's state ConfigMaps, and the ztunnel
// DaemonSet and pods in istio-system.
func watchAll(t *testing.T, cfg *rest.Config) *watched {
	t.Helper()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := &watched{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, s := range []struct {
		kind, ns string
		gvr      schema.GroupVersionResource
	}{
		{"Gateway", "", schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"}},
		{"Namespace", "", schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}},
		{"ConfigMap", "meshcd-system", schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}},
		{"DaemonSet", "istio-system", schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}},
		{"Pod", "istio-system", schema.GroupVersionResource{Version: "v1", Resource: "pods"}},
	} {
		wi, err := dyn.Resource(s.gvr).Namespace(s.ns).Watch(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("watch %s: %v", s.kind, err)
		}
		wg.Add(1)
		go func(kind string, wi watch.Interface) {
			defer wg.Done()
			defer wi.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case e, ok := <-wi.ResultChan():
					if !ok {
						return
					}
					o, isObj := e.Object.(*unstructured.Unstructured)
					if !isObj {
						continue
					}
					rv, _ := strconv.ParseInt(o.GetResourceVersion(), 10, 64)
					w.mu.Lock()
					w.events = append(w.events, event{rv: rv, at: time.Now(), kind: kind, typ: e.Type, obj: o})
					w.mu.Unlock()
				}
			}
		}(s.kind, wi)
	}
	return w
}

// of returns the events of kind in etcd's order.
func (w *watched) of(kind string) []event {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []event
	for _, e := range w.events {
		if e.kind == kind {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rv < out[j].rv })
	return out
}

// first returns the earliest event match accepts, or nil.
func (w *watched) first(match func(event) bool) *event {
	w.mu.Lock()
	defer w.mu.Unlock()
	var best *event
	for i := range w.events {
		if e := w.events[i]; match(e) && (best == nil || e.rv < best.rv) {
			best = &w.events[i]
		}
	}
	return best
}
