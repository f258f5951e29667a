package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/dataplane"
	"github.com/meshcd/meshcd/internal/localcluster"
	"github.com/meshcd/meshcd/reconciler/plan"
)

// The rollout the demo runs: examples/helloworld-canary's rollout.yaml.
const (
	rolloutFile = "rollout.yaml"
	rolloutName = "proxies"
	manualStage = "rest"
	// canaryService is the Service whose waypoints istiod is asked about
	// while the canary stage runs.
	canaryNamespace, canaryService = "hello", "helloworld"
	// fromBundle is what the platform installed before the rollout.
	fromBundle = "1.31.0"
)

// rollout is the rollout part of a demo run.
type rollout struct {
	n       *narrator
	opts    Options
	c       client.Client
	repo    *git.Repository
	repoDir string
	res     *Result
	store   *dataplane.Store
	// last is the state the narration printed last.
	last *dataplane.State
	// start is when the rollout's pull request merged.
	start time.Time
}

// run adds the DataplaneRollout by pull request, follows it to the manual
// stage, promotes it by a second pull request and follows it to the end.
func (r *rollout) run(ctx context.Context) error {
	nodes, err := dataplane.ZtunnelNodes(ctx, r.c, "")
	if err != nil {
		return err
	}
	example, err := os.ReadFile(filepath.Join(r.opts.Example, rolloutFile))
	if err != nil {
		return err
	}

	r.n.step("a pull request adds %s, a DataplaneRollout; the plan posted on it names every stage, its namespaces and the ztunnel nodes", rolloutFile)
	head, err := commit(r.repo, r.repoDir, "rollout", "mesh: roll the proxies out to 1.31.1", rolloutFile, func([]byte) (string, error) { return string(example), nil })
	if err != nil {
		return err
	}
	if r.res.RolloutPlan, err = r.plan(ctx, "rollout", nodes); err != nil {
		return err
	}
	if err := r.images(ctx, "before the merge"); err != nil {
		return err
	}

	r.n.step("the pull request merges; each step of the rollout as meshcd takes it (a watch on ConfigMap %s/%s)", r.store.Namespace, r.store.Name)
	if err := fastForward(r.repo, "main", head); err != nil {
		return err
	}
	r.start = time.Now()
	if _, err := r.follow(ctx, func(st *dataplane.State) bool {
		return st.Phase == dataplane.PhasePaused && st.StageName == manualStage
	}); err != nil {
		return err
	}

	r.n.step("the rollout stops before the manual stage %s: what runs where now", manualStage)
	if err := r.stillWaits(ctx, 2*time.Second); err != nil {
		return err
	}
	if err := r.images(ctx, "while stage "+manualStage+" waits for approval"); err != nil {
		return err
	}

	r.n.step("a second pull request sets `promote: %s`; its plan says what the merge does", manualStage)
	head, err = commit(r.repo, r.repoDir, "promote", "mesh: promote stage "+manualStage, rolloutFile, func(old []byte) (string, error) {
		return promote(string(old), manualStage)
	})
	if err != nil {
		return err
	}
	if r.res.PromotePlan, err = r.plan(ctx, "promote", nodes); err != nil {
		return err
	}

	r.n.step("it merges; the rollout finishes, ztunnel node by node included")
	if err := fastForward(r.repo, "main", head); err != nil {
		return err
	}
	r.res.PromoteMerged = time.Now()
	if _, err := r.follow(ctx, func(st *dataplane.State) bool { return st.Phase == dataplane.PhaseSucceeded }); err != nil {
		return err
	}
	r.res.Rollout = time.Since(r.start)
	if err := r.images(ctx, "after the rollout"); err != nil {
		return err
	}

	r.n.step("meshcd rollout status --name %s", r.opts.Name)
	states, _, err := r.store.Load(ctx)
	if err != nil {
		return err
	}
	return dataplane.WriteStatus(indentWriter{r.opts.Out}, states)
}

// stillWaits checks, after a while, that the rollout is still paused
// before the manual stage: nothing but a commit starts it.
func (r *rollout) stillWaits(ctx context.Context, after time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(after):
	}
	states, _, err := r.store.Load(ctx)
	if err != nil {
		return err
	}
	st := states[rolloutName]
	if st == nil || st.Phase != dataplane.PhasePaused || st.StageName != manualStage {
		return fmt.Errorf("rollout %s moved on without a promote commit: %+v", rolloutName, st)
	}
	r.n.say("%s later, still %s before stage %s: only a commit that promotes it starts it", after, st.Phase, manualStage)
	return nil
}

// promote sets promote: stage in a DataplaneRollout's YAML, under its
// bundle.
func promote(spec, stage string) (string, error) {
	const at = "  bundle: \"1.31.1\"\n"
	if !strings.Contains(spec, at) {
		return "", fmt.Errorf("%s has no line %q to set promote under", rolloutFile, strings.TrimSpace(at))
	}
	return strings.Replace(spec, at, at+"  promote: "+stage+"\n", 1), nil
}

// plan prints the plan of branch over main, as the CI job posts it.
func (r *rollout) plan(ctx context.Context, branch string, nodes []string) (*plan.Plan, error) {
	baseDir, headDir, cleanup, err := checkouts(ctx, r.repoDir, "main", branch)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	opts := plan.DefaultOptions()
	opts.ZtunnelNodes = nodes
	p, err := plan.Compute("main", baseDir, branch, headDir, opts)
	if err != nil {
		return nil, err
	}
	fmt.Fprint(r.opts.Out, indent(p.Text()))
	return p, nil
}

// follow prints each change of the rollout's state from a watch until
// done holds; a Failed or RolledBack rollout ends the demo.
func (r *rollout) follow(ctx context.Context, done func(*dataplane.State) bool) (*dataplane.State, error) {
	cs, err := kubernetes.NewForConfig(r.opts.Config)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cms := cs.CoreV1().ConfigMaps(r.store.Namespace)
	selector := fields.OneTermEqualSelector("metadata.name", r.store.Name).String()
	list, err := cms.List(ctx, metav1.ListOptions{FieldSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("rollout state %s/%s list failed: %w", r.store.Namespace, r.store.Name, err)
	}
	seen := func(cm *corev1.ConfigMap) (*dataplane.State, bool, error) {
		if cm.Data[rolloutName] == "" {
			return nil, false, nil
		}
		st := &dataplane.State{}
		if err := json.Unmarshal([]byte(cm.Data[rolloutName]), st); err != nil {
			return nil, false, fmt.Errorf("rollout state %s/%s: %w", cm.Namespace, cm.Name, err)
		}
		r.narrate(ctx, st)
		if st.Phase == dataplane.PhaseFailed || st.Phase == dataplane.PhaseRolledBack {
			return st, false, fmt.Errorf("rollout %s %s: %s", rolloutName, st.Phase, st.Message)
		}
		return st, done(st), nil
	}
	for i := range list.Items {
		if st, ok, err := seen(&list.Items[i]); err != nil || ok {
			return st, err
		}
	}
	rv := list.ResourceVersion
	for {
		w, err := cms.Watch(ctx, metav1.ListOptions{FieldSelector: selector, ResourceVersion: rv})
		if err != nil {
			return nil, fmt.Errorf("rollout state %s/%s watch failed: %w", r.store.Namespace, r.store.Name, err)
		}
		for e := range w.ResultChan() {
			if e.Type == watch.Error {
				w.Stop()
				return nil, fmt.Errorf("rollout state %s/%s watch failed: %w", r.store.Namespace, r.store.Name, apierrors.FromObject(e.Object))
			}
			cm, ok := e.Object.(*corev1.ConfigMap)
			if !ok || e.Type == watch.Deleted {
				continue
			}
			rv = cm.ResourceVersion
			if st, ok, err := seen(cm); err != nil || ok {
				w.Stop()
				return st, err
			}
		}
		w.Stop()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("rollout %s did not get there within 2 minutes: %s", rolloutName, r.lastMessage())
		}
	}
}

func (r *rollout) lastMessage() string {
	if r.last == nil {
		return "no state yet"
	}
	return fmt.Sprintf("%s in stage %s: %s", r.last.Phase, r.last.StageName, r.last.Message)
}

// narrate prints what changed from the last state printed: a new stage or
// phase, the message (which names the gate that holds the stage), and at
// every canary weight istiod's own view of the canary Service.
func (r *rollout) narrate(ctx context.Context, st *dataplane.State) {
	prev := r.last
	r.last = st
	at := fmt.Sprintf("%5.1fs", time.Since(r.start).Seconds())
	if prev != nil && prev.StageName != st.StageName && prev.StageName != "" {
		r.n.say("%s    stage %s passed its gates", at, prev.StageName)
	}
	if prev == nil || prev.StageName != st.StageName || prev.Phase != st.Phase {
		r.n.say("%s  stage %s, %s", at, st.StageName, st.Phase)
	}
	if prev == nil || prev.Message != st.Message {
		r.n.say("%s    %s", at, st.Message)
	}
	c := st.Canary
	if c == nil || c.Step < 0 || c.Promoting || (prev != nil && prev.Canary != nil && prev.Canary.Step == c.Step) {
		return
	}
	ww, err := r.istiodWaits(ctx, c.Weight)
	if err != nil {
		r.n.say("         istiod: %v", err)
		return
	}
	r.res.Istiod = append(r.res.Istiod, CanaryView{Weight: c.Weight, Istiod: ww})
	parts := make([]string, len(ww))
	for i, w := range ww {
		parts[i] = w.String()
	}
	r.n.say("         istiod /debug/ambientz, Service %s/%s: %s", canaryNamespace, canaryService, strings.Join(parts, ", "))
}

// istiodWaits asks istiod for the canary Service's weighted waypoints
// until it reports weight on the canary (the label is applied right after
// the state is stored), for at most 10 s; it returns what istiod said last.
func (r *rollout) istiodWaits(ctx context.Context, weight int32) ([]localcluster.WeightedWaypoint, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ww, err := localcluster.WeightedWaypoints(ctx, r.opts.IstiodMonitoringURL, canaryNamespace, canaryService)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(ww, func(w localcluster.WeightedWaypoint) bool {
			return strings.HasSuffix(w.Name, dataplane.CanarySuffix) && w.Weight == int(weight)
		}) || time.Now().After(deadline) {
			return ww, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// images prints the proxy image of each namespace's waypoint Deployment
// and of each node's ztunnel pod.
func (r *rollout) images(ctx context.Context, when string) error {
	r.n.say("%s:", when)
	for _, ns := range namespaces {
		d := &appsv1.Deployment{}
		if err := r.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "waypoint"}, d); err != nil {
			return fmt.Errorf("waypoint Deployment %s/waypoint read failed: %w", ns, err)
		}
		r.n.say("  waypoint %-8s %s", ns, proxyImage(d.Spec.Template.Spec.Containers))
	}
	pods := &corev1.PodList{}
	if err := r.c.List(ctx, pods, client.InNamespace(ztunnelNamespace), client.MatchingLabels(ztunnelLabels)); err != nil {
		return fmt.Errorf("ztunnel pods list failed: %w", err)
	}
	slices.SortFunc(pods.Items, func(a, b corev1.Pod) int { return strings.Compare(a.Spec.NodeName, b.Spec.NodeName) })
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			r.n.say("  ztunnel  %-8s %s", p.Spec.NodeName, proxyImage(p.Spec.Containers))
		}
	}
	return nil
}

func proxyImage(cs []corev1.Container) string {
	for _, c := range cs {
		if c.Name == "istio-proxy" {
			return c.Image
		}
	}
	return ""
}

// The ztunnel the platform installs, as Istio's ambient profile does, but
// with updateStrategy OnDelete so that meshcd replaces it node by node.
var (
	ztunnelNamespace = "istio-system"
	ztunnelLabels    = map[string]string{"app": "ztunnel"}
)

// installZtunnel creates the ztunnel DaemonSet on fromBundle's image and
// waits until every node runs a Ready pod of it.
func installZtunnel(ctx context.Context, c client.Client, n *narrator) error {
	b, err := dataplane.Lookup(fromBundle)
	if err != nil {
		return err
	}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: dataplane.ZtunnelName, Namespace: ztunnelNamespace},
		Spec: appsv1.DaemonSetSpec{
			Selector:       &metav1.LabelSelector{MatchLabels: ztunnelLabels},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: ztunnelLabels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "istio-proxy", Image: b.Ztunnel}}},
			},
		},
	}
	if err := c.Create(ctx, ds); err != nil {
		return fmt.Errorf("ztunnel DaemonSet create failed: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if err := c.Get(ctx, client.ObjectKeyFromObject(ds), ds); err != nil {
			return err
		}
		s := ds.Status
		if s.DesiredNumberScheduled > 0 && s.NumberReady == s.DesiredNumberScheduled {
			n.say("DaemonSet %s/%s, updateStrategy OnDelete: %s Ready on %d nodes", ztunnelNamespace, ds.Name, b.Ztunnel, s.NumberReady)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ztunnel DaemonSet not Ready on every node within a minute: %d of %d", s.NumberReady, s.DesiredNumberScheduled)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
