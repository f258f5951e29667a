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
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/dataplane"
	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler"
)

// fleet is an env whose spec spans several namespaces, each with a
// waypoint, for rollouts.
type fleet struct {
	*env
	names []string
}

func newFleet(t *testing.T, n int) *fleet {
	f := &fleet{env: newEnv(t, func(o *reconciler.Options) { o.HealthHold = time.Second })}
	for i := 0; i < n; i++ {
		f.names = append(f.names, clustertest.Namespace(t, nil))
	}
	return f
}

// write writes the fleet's MeshNamespaces and a rollout spec.
func (f *fleet) write(rollout string) {
	f.t.Helper()
	var b strings.Builder
	for _, ns := range f.names {
		fmt.Fprintf(&b, "---\napiVersion: meshcd.dev/v1alpha1\nkind: MeshNamespace\nmetadata: {name: %s}\nspec: {waypoint: {}}\n", ns)
	}
	if rollout != "" {
		b.WriteString("---\n" + rollout)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "mesh.yaml"), []byte(b.String()), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// image is the proxy image of namespace ns's waypoint Deployment template.
func (f *fleet) image(ns string) string {
	f.t.Helper()
	d := &appsv1.Deployment{}
	if err := f.client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "waypoint"}, d); err != nil {
		f.t.Fatalf("waypoint Deployment of %s: %v", ns, err)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "istio-proxy" {
			return c.Image
		}
	}
	return ""
}

// until reconciles until the rollout reaches phase, and returns the state.
func (f *fleet) until(name string, phase dataplane.Phase, each func(*dataplane.State)) *dataplane.State {
	f.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		res := f.reconcile()
		st := res.Rollouts[name]
		if st == nil {
			f.t.Fatalf("the reconcile reported no state for rollout %s", name)
		}
		if each != nil {
			each(st)
		}
		if st.Phase == phase {
			return st
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("rollout never reached %s: %+v", phase, st)
		}
	}
}

var target = func() string {
	b, err := dataplane.Lookup("1.31.1")
	if err != nil {
		panic(err)
	}
	return b.Proxy
}()

func TestRollout_ThreeStagesMoveEachWaypointOnlyInItsOwnStage(t *testing.T) {
	f := newFleet(t, 5)
	f.write("")
	if res := f.reconcile(); res.Reason != reconciler.ReasonSucceeded {
		t.Fatalf("before the rollout: %s %+v", res.Reason, res.Health)
	}
	before := f.image(f.names[0])
	if before == target {
		t.Fatalf("the default waypoint image is already %s; the test needs another", target)
	}
	stageOf := map[string]int{f.names[0]: 0, f.names[1]: 1, f.names[2]: 1, f.names[3]: 2, f.names[4]: 2}
	f.write(fmt.Sprintf(`apiVersion: meshcd.dev/v1alpha1
kind: DataplaneRollout
metadata: {name: proxies}
spec:
  bundle: "1.31.1"
  waypoints:
    stages:
      - {name: canary, namespaces: [%s], gates: {programmed: true, ready: true, soak: 0s}}
      - {name: early, namespaces: [%s, %s]}
      - {name: rest, namespaces: ["*"]}
`, f.names[0], f.names[1], f.names[2]))
	f.writes.Take()
	start := time.Now()
	writesPerStage := map[string]int{}
	reconciles := 0
	st := f.until("proxies", dataplane.PhaseSucceeded, func(st *dataplane.State) {
		reconciles++
		n, _ := f.writes.Take()
		writesPerStage[st.StageName] += n
		for _, ns := range f.names {
			img := f.image(ns)
			if stageOf[ns] > st.Stage && img != before {
				t.Fatalf("namespace %s (stage %d) runs %s while the rollout is in stage %d", ns, stageOf[ns], img, st.Stage)
			}
		}
	})
	took := time.Since(start)
	for _, ns := range f.names {
		if img := f.image(ns); img != target {
			t.Errorf("namespace %s runs %s after the rollout, want %s", ns, img, target)
		}
	}
	t.Logf("3-stage rollout over 5 namespaces with 0 s soak: %s, %d reconciles; writes by the stage each reconcile ended in: %v; %s",
		took.Round(time.Millisecond), reconciles, writesPerStage, st.Message)

	// Succeeded is stable: a further reconcile writes nothing.
	f.writes.Take()
	if res := f.reconcile(); res.Rollouts["proxies"].Phase != dataplane.PhaseSucceeded {
		t.Fatalf("a succeeded rollout moved: %+v", res.Rollouts["proxies"])
	}
	if n, seen := f.writes.Take(); n != 0 {
		t.Fatalf("a reconcile after the rollout wrote %d times: %v", n, seen)
	}
}

func TestRollout_AFailedGateRollsTheStageBack(t *testing.T) {
	f := newFleet(t, 2)
	f.write("")
	if res := f.reconcile(); res.Reason != reconciler.ReasonSucceeded {
		t.Fatalf("before the rollout: %s %+v", res.Reason, res.Health)
	}
	before := f.image(f.names[1])
	// A quota of one pod: the new waypoint pod can never be created, so the
	// second stage never rolls out.
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "one-pod", Namespace: f.names[1]},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("1")}},
	}
	if err := f.client.Create(context.Background(), quota); err != nil {
		t.Fatal(err)
	}
	f.write(fmt.Sprintf(`apiVersion: meshcd.dev/v1alpha1
kind: DataplaneRollout
metadata: {name: proxies}
spec:
  bundle: "1.31.1"
  waypoints:
    stages:
      - {name: first, namespaces: [%s]}
      - {name: stuck, namespaces: [%s], gates: {programmed: true, ready: true, timeout: 5s}}
`, f.names[0], f.names[1]))
	sawFailed := false
	st := f.until("proxies", dataplane.PhaseRolledBack, func(st *dataplane.State) {
		sawFailed = sawFailed || st.Phase == dataplane.PhaseFailed
	})
	if !sawFailed || !strings.Contains(st.Message, "stage stuck failed its gates") {
		t.Fatalf("want Failed, then RolledBack with the failed gate named; saw Failed %v, message %q", sawFailed, st.Message)
	}
	if img := f.image(f.names[1]); img != before {
		t.Fatalf("the failed stage's waypoint runs %s after the rollback, want %s", img, before)
	}
	if img := f.image(f.names[0]); img != target {
		t.Fatalf("the passed stage keeps the new image, got %s", img)
	}
	t.Logf("rolled back: %s", st.Message)
}

func TestRollout_ManualApprovalPauseResumeAndRestart(t *testing.T) {
	f := newFleet(t, 3)
	f.write("")
	if res := f.reconcile(); res.Reason != reconciler.ReasonSucceeded {
		t.Fatalf("before the rollout: %s %+v", res.Reason, res.Health)
	}
	before := f.image(f.names[1])
	spec := func(promote string) string {
		return fmt.Sprintf(`apiVersion: meshcd.dev/v1alpha1
kind: DataplaneRollout
metadata: {name: proxies}
spec:
  bundle: "1.31.1"
  promote: %q
  waypoints:
    stages:
      - {name: canary, namespaces: [%s]}
      - {name: approved, namespaces: [%s], approval: manual}
      - {name: rest, namespaces: ["*"]}
`, promote, f.names[0], f.names[1])
	}
	f.write(spec(""))
	st := f.until("proxies", dataplane.PhasePaused, nil)
	if st.StageName != "approved" || !strings.Contains(st.Message, "waits for approval") {
		t.Fatalf("want a pause before the manual stage, got %+v", st)
	}
	if f.image(f.names[0]) != target || f.image(f.names[1]) != before {
		t.Fatalf("only the canary moves before approval: %s, %s", f.image(f.names[0]), f.image(f.names[1]))
	}

	// meshcd restarts while it waits: a new reconciler finds the same
	// stage and neither redoes the canary nor skips the approval.
	opts := reconciler.DefaultOptions()
	opts.Name, opts.HealthHold = f.ns, time.Second
	f.rec = reconciler.New(f.client, opts)
	f.writes.Take()
	if res := f.reconcile(); res.Rollouts["proxies"].StageName != "approved" || res.Rollouts["proxies"].Phase != dataplane.PhasePaused {
		t.Fatalf("after a restart: %+v", res.Rollouts["proxies"])
	}
	if n, seen := f.writes.Take(); n != 0 {
		t.Fatalf("a restarted meshcd waiting for approval wrote %d times: %v", n, seen)
	}

	// The approval is a commit that sets promote.
	f.write(spec("approved"))
	if res := f.reconcile(); res.Rollouts["proxies"].Phase != dataplane.PhaseProgressing || res.Rollouts["proxies"].StageName != "approved" {
		t.Fatalf("promote starts the stage: %+v", res.Rollouts["proxies"])
	}

	// Pause holds the rollout in its stage; resume goes on.
	if err := f.rec.RolloutStore().Send(context.Background(), "proxies", dataplane.CommandPause); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if st := f.reconcile().Rollouts["proxies"]; st.Phase != dataplane.PhasePaused || st.StageName != "approved" {
			t.Fatalf("paused rollout moved: %+v", st)
		}
	}
	if img := f.image(f.names[2]); img != before {
		t.Fatalf("a paused rollout reached the next stage: %s", img)
	}
	if err := f.rec.RolloutStore().Send(context.Background(), "proxies", dataplane.CommandResume); err != nil {
		t.Fatal(err)
	}
	f.until("proxies", dataplane.PhaseSucceeded, nil)
	for _, ns := range f.names {
		if img := f.image(ns); img != target {
			t.Errorf("namespace %s runs %s, want %s", ns, img, target)
		}
	}
}

// ztunnelOn is a ztunnel DaemonSet in istio-system, running old on the
// cluster's 3 kwok nodes.
type ztunnelOn struct {
	f      *fleet
	labels map[string]string
}

const oldZtunnel = "docker.io/istio/ztunnel:1.30.0"

func newZtunnel(t *testing.T, f *fleet, strategy appsv1.DaemonSetUpdateStrategy) *ztunnelOn {
	t.Helper()
	ctx := context.Background()
	z := &ztunnelOn{f: f, labels: map[string]string{"app": "ztunnel", "test": f.ns}}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: dataplane.ZtunnelName, Namespace: "istio-system"},
		Spec: appsv1.DaemonSetSpec{
			Selector:       &metav1.LabelSelector{MatchLabels: z.labels},
			UpdateStrategy: strategy,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: z.labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "istio-proxy", Image: oldZtunnel}}},
			},
		},
	}
	if err := f.client.Create(ctx, ds); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The next test's DaemonSet has the same name: wait for this one
		// and its pods to be gone.
		_ = f.client.Delete(context.Background(), ds, client.PropagationPolicy(metav1.DeletePropagationForeground))
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			if err := f.client.Get(context.Background(), client.ObjectKeyFromObject(ds), &appsv1.DaemonSet{}); err != nil {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	deadline := time.Now().Add(time.Minute)
	for len(z.pods()) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("ztunnel never ran on 3 nodes: %v", z.pods())
		}
		time.Sleep(200 * time.Millisecond)
	}
	return z
}

// pods is the image of each node's Ready ztunnel pod.
func (z *ztunnelOn) pods() map[string]string {
	z.f.t.Helper()
	list := &corev1.PodList{}
	if err := z.f.client.List(context.Background(), list, client.InNamespace("istio-system"), client.MatchingLabels(z.labels)); err != nil {
		z.f.t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range list.Items {
		ready := false
		for _, c := range p.Status.Conditions {
			ready = ready || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
		}
		if ready && p.DeletionTimestamp == nil {
			out[p.Spec.NodeName] = p.Spec.Containers[0].Image
		}
	}
	return out
}

// allRun fails the test unless every one of the 3 nodes runs image.
func (z *ztunnelOn) allRun(image string) {
	z.f.t.Helper()
	p := z.pods()
	if len(p) != 3 {
		z.f.t.Errorf("want a Ready ztunnel on 3 nodes, got %v", p)
	}
	for node, img := range p {
		if img != image {
			z.f.t.Errorf("node %s runs ztunnel %s, want %s", node, img, image)
		}
	}
}

var onDelete = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}

func TestRollout_ZtunnelNodeByNode(t *testing.T) {
	f := newFleet(t, 1)
	z := newZtunnel(t, f, onDelete)
	f.write(`apiVersion: meshcd.dev/v1alpha1
kind: DataplaneRollout
metadata: {name: proxies}
spec:
  bundle: "1.31.1"
  ztunnel: {strategy: node-by-node, maxUnavailable: 1}
`)
	b, _ := dataplane.Lookup("1.31.1")
	start := time.Now()
	st := f.until("proxies", dataplane.PhaseSucceeded, func(st *dataplane.State) {
		if p := z.pods(); len(p) < 2 {
			t.Fatalf("more than maxUnavailable=1 node without a ready ztunnel: %v", p)
		}
	})
	if got := st.Ztunnel.Replaced; len(got) != 3 || got[0] == got[1] || got[1] == got[2] || got[0] == got[2] {
		t.Fatalf("want 3 nodes replaced one at a time, got %v", got)
	}
	z.allRun(b.Ztunnel)
	t.Logf("ztunnel replaced node by node in %s, in the order %v; %s", time.Since(start).Round(time.Millisecond), st.Ztunnel.Replaced, st.Message)
}

func TestRollout_ZtunnelRollingLeavesThePodsToTheDaemonSet(t *testing.T) {
	f := newFleet(t, 1)
	one := intstr.FromInt32(1)
	z := newZtunnel(t, f, appsv1.DaemonSetUpdateStrategy{
		Type:          appsv1.RollingUpdateDaemonSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &one},
	})
	f.write(`apiVersion: meshcd.dev/v1alpha1
kind: DataplaneRollout
metadata: {name: proxies}
spec:
  bundle: "1.31.1"
  ztunnel: {strategy: rolling}
`)
	b, _ := dataplane.Lookup("1.31.1")
	start := time.Now()
	st := f.until("proxies", dataplane.PhaseSucceeded, nil)
	if len(st.Ztunnel.Replaced) != 0 {
		t.Errorf("the rolling strategy leaves pods to the DaemonSet, yet meshcd replaced %v", st.Ztunnel.Replaced)
	}
	z.allRun(b.Ztunnel)
	t.Logf("ztunnel rolled by its DaemonSet in %s; %s", time.Since(start).Round(time.Millisecond), st.Message)
}

func TestRollout_AZtunnelStepPastItsTimeoutRollsZtunnelBackNodeByNode(t *testing.T) {
	f := newFleet(t, 1)
	z := newZtunnel(t, f, onDelete)
	ctx := context.Background()
	// No new pod can be created in istio-system: the first replaced node
	// never gets its ztunnel back.
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "no-new-pods-" + f.ns, Namespace: "istio-system"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("2")}},
	}
	if err := f.client.Create(ctx, quota); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.client.Delete(context.Background(), quota) })
	f.write(`apiVersion: meshcd.dev/v1alpha1
kind: DataplaneRollout
metadata: {name: proxies}
spec:
  bundle: "1.31.1"
  ztunnel: {strategy: node-by-node, maxUnavailable: 1, timeout: 3s}
`)
	st := f.until("proxies", dataplane.PhaseFailed, func(st *dataplane.State) {
		if p := z.pods(); len(p) < 2 {
			t.Fatalf("more than maxUnavailable=1 node without a ready ztunnel: %v", p)
		}
	})
	if len(st.Ztunnel.Replaced) != 1 || !st.Ztunnel.RollingBack || !strings.Contains(st.Message, "made no progress within 3s") {
		t.Fatalf("want the stage failed after one node, rolling back: %+v %+v", st, st.Ztunnel)
	}
	t.Logf("failed: %s", st.Message)
	// Rolling back waits, within maxUnavailable, for the node that lost
	// its pod; once pods can be created again it settles.
	for i := 0; i < 3; i++ {
		if st := f.reconcile().Rollouts["proxies"]; st.Phase != dataplane.PhaseFailed {
			t.Fatalf("the rollback settled with a node still without ztunnel: %+v", st)
		}
	}
	if err := f.client.Delete(ctx, quota); err != nil {
		t.Fatal(err)
	}
	st = f.until("proxies", dataplane.PhaseRolledBack, func(*dataplane.State) {
		if p := z.pods(); len(p) < 2 {
			t.Fatalf("more than maxUnavailable=1 node without a ready ztunnel during the rollback: %v", p)
		}
	})
	z.allRun(oldZtunnel)
	if !strings.Contains(st.Message, "ztunnel rolled back to "+oldZtunnel) {
		t.Errorf("the message does not say ztunnel rolled back: %s", st.Message)
	}
	t.Logf("rolled back: %s", st.Message)
}

func TestRollout_ARestartMidStageRedoesNothingAndSkipsNothing(t *testing.T) {
	f := newFleet(t, 2)
	f.write("")
	if res := f.reconcile(); res.Reason != reconciler.ReasonSucceeded {
		t.Fatalf("before the rollout: %s %+v", res.Reason, res.Health)
	}
	before := f.image(f.names[1])
	f.write(fmt.Sprintf(`apiVersion: meshcd.dev/v1alpha1
kind: DataplaneRollout
metadata: {name: proxies}
spec:
  bundle: "1.31.1"
  waypoints:
    stages:
      - {name: first, namespaces: [%s], gates: {programmed: true, ready: true, soak: 4s}}
      - {name: second, namespaces: [%s]}
`, f.names[0], f.names[1]))
	if st := f.reconcile().Rollouts["proxies"]; st.Phase != dataplane.PhaseProgressing || st.StageName != "first" {
		t.Fatalf("the rollout starts in stage first: %+v", st)
	}

	// meshcd is killed mid-stage; a new one takes over.
	opts := reconciler.DefaultOptions()
	opts.Name, opts.HealthHold = f.ns, time.Second
	f.rec = reconciler.New(f.client, opts)
	f.writes.Take()
	st := f.reconcile().Rollouts["proxies"]
	if st.StageName != "first" || st.Phase != dataplane.PhaseProgressing {
		t.Fatalf("after the restart the rollout is in %s %s, want Progressing in first", st.Phase, st.StageName)
	}
	_, seen := f.writes.Take()
	for _, w := range seen {
		if strings.Contains(w, "/gateways/") {
			t.Fatalf("the restarted meshcd wrote a Gateway again: %v", seen)
		}
	}
	if img := f.image(f.names[1]); img != before {
		t.Fatalf("the restart skipped ahead: the second stage runs %s", img)
	}
	f.until("proxies", dataplane.PhaseSucceeded, nil)
	for _, ns := range f.names {
		if img := f.image(ns); img != target {
			t.Errorf("namespace %s runs %s, want %s", ns, img, target)
		}
	}
}
