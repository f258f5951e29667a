package dataplane

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/meshspec"
)

// Moves says, line by line, what merging head over base does to the data
// plane: for a new or changed DataplaneRollout, the target images, each
// stage in order with its namespaces, strategy and gates, the ztunnel
// stage with its nodes, and what the merge starts and where the rollout
// stops; for a promote, the stage it starts and what follows. Every line
// starts with the rollout's kind and name. objs is the head's render; a
// namespace counts as existing when the head renders it. nodes are the
// nodes the ztunnel DaemonSet runs on (ZtunnelNodes), nil when the plan
// has no cluster to ask.
func Moves(base, head []*meshspec.DataplaneRollout, objs []*unstructured.Unstructured, nodes []string) []string {
	v := View{Namespaces: map[string]map[string]string{}, Waypoints: WaypointsOf(objs)}
	for _, o := range objs {
		if o.GetKind() == "Namespace" && o.GetAPIVersion() == "v1" {
			v.Namespaces[o.GetName()] = o.GetLabels()
		}
	}
	for ns := range v.Waypoints {
		if _, ok := v.Namespaces[ns]; !ok {
			v.Namespaces[ns] = nil
		}
	}
	before := map[string]*meshspec.DataplaneRollout{}
	for _, r := range base {
		before[r.Name] = r
	}
	var out []string
	for _, r := range head {
		b := before[r.Name]
		delete(before, r.Name)
		if b != nil && reflect.DeepEqual(b.Spec, r.Spec) {
			continue
		}
		prefix := "DataplaneRollout " + r.Name + ": "
		bundle, stages, err := Preflight(r, "", v)
		if err != nil {
			out = append(out, prefix+"would not start: "+strings.ReplaceAll(err.Error(), "\n", "; "))
			continue
		}
		var lines []string
		switch {
		case b == nil:
			lines = append(lines, "new, to bundle "+r.Spec.Bundle+": "+images(r, bundle))
		case b.Spec.Bundle != r.Spec.Bundle:
			lines = append(lines, fmt.Sprintf("bundle %s → %s, starting over from the first stage: %s", b.Spec.Bundle, r.Spec.Bundle, images(r, bundle)))
		case r.Spec.Promote != "" && b.Spec.Promote != r.Spec.Promote:
			lines = promotes(r, stages, nodes)
		default:
			lines = append(lines, "stages changed, starting over from the first stage: "+images(r, bundle))
		}
		if len(lines) == 1 {
			lines = append(lines, describeStages(r, stages, nodes)...)
			lines = append(lines, starts(r, stages))
		}
		for _, l := range lines {
			out = append(out, prefix+l)
		}
	}
	names := make([]string, 0, len(before))
	for name := range before {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		out = append(out, "DataplaneRollout "+name+": removed; the images it pinned stay until another rollout moves them")
	}
	return out
}

// images names the images a rollout moves to.
func images(r *meshspec.DataplaneRollout, b Bundle) string {
	s := "waypoints to " + b.Proxy
	if r.Spec.Ztunnel != nil {
		s += ", ztunnel to " + b.Ztunnel
	}
	return s
}

// describeStages is a line per stage, in order: its namespaces, how it
// moves them and its gates; then the ztunnel stage and its nodes.
func describeStages(r *meshspec.DataplaneRollout, stages []Stage, nodes []string) []string {
	total := len(stages)
	if r.Spec.Ztunnel != nil {
		total++
	}
	var out []string
	for i, s := range stages {
		line := fmt.Sprintf("stage %d of %d, %s: ", i+1, total, s.describe())
		switch {
		case awaitsApproval(r, s.Stage):
			line += "manual, waits for a commit that sets `promote: " + s.Name + "`; then "
		case s.Approval == meshspec.ApprovalManual:
			line += "manual, approved by `promote: " + s.Name + "`; "
		}
		if s.Strategy == meshspec.StrategyCanary {
			var w []string
			for _, x := range s.Steps {
				w = append(w, fmt.Sprintf("%d%%", x))
			}
			line += "canary: a second waypoint on the new image takes " + strings.Join(w, " → ") +
				" of new connections, then the primary moves and the canary goes"
		} else {
			line += "replace: each waypoint restarts on the new image"
		}
		out = append(out, line+"; gates: "+describeGates(s.Gates))
	}
	if z := r.Spec.Ztunnel; z != nil {
		out = append(out, fmt.Sprintf("stage %d of %d, ztunnel %s", total, total, describeZtunnel(z, nodes)))
	}
	return out
}

// describeZtunnel says where and how the ztunnel stage replaces pods.
func describeZtunnel(z *meshspec.ZtunnelRollout, nodes []string) string {
	where := "on every node"
	if nodes != nil {
		where = "on " + strings.Join(nodes, ", ")
		if len(nodes) == 0 {
			where = "on no node yet (no ztunnel pod runs)"
		}
	}
	if z.Strategy == meshspec.ZtunnelRolling {
		return where + ": rolling, left to the DaemonSet's RollingUpdate; each node's restart resets its long-lived connections"
	}
	return fmt.Sprintf("%s: node by node, %d at a time, in that order, each node's new pod Ready before the next; each replacement resets that node's long-lived connections", where, z.MaxUnavailable)
}

// describeGates lists a stage's gates; no gates means programmed and ready.
func describeGates(g *meshspec.Gates) string {
	if g == nil {
		g = &meshspec.Gates{Programmed: true, Ready: true}
	}
	var parts []string
	if g.Programmed {
		parts = append(parts, "programmed")
	}
	if g.Ready {
		parts = append(parts, "ready")
	}
	soak, timeout := time.Duration(0), DefaultGateTimeout
	if g.Soak != nil {
		soak = g.Soak.Duration
	}
	if g.Timeout != nil {
		timeout = g.Timeout.Duration
	}
	parts = append(parts, "soak "+short(soak), "timeout "+short(timeout))
	if p := g.Prometheus; p != nil {
		parts = append(parts, fmt.Sprintf("prometheus %s ≤ %s", p.Query, p.Max))
	}
	return strings.Join(parts, ", ")
}

// short writes a duration without zero trailing units: 2m, not 2m0s.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// starts says what merging a new or restarted rollout starts, and where
// it stops for approval.
func starts(r *meshspec.DataplaneRollout, stages []Stage) string {
	if len(stages) == 0 {
		if r.Spec.Ztunnel != nil {
			return "merging starts the ztunnel stage"
		}
		return "nothing to move"
	}
	if awaitsApproval(r, stages[0].Stage) {
		return "merging starts nothing: stage " + stages[0].describe() + " waits for `promote: " + stages[0].Name + "`"
	}
	return "merging starts stage " + stages[0].describe() + "; " + runsUntil(r, stages, 1)
}

// runsUntil says how far a rollout goes by itself from stage i on: to the
// next manual stage that is not promoted, or to the end.
func runsUntil(r *meshspec.DataplaneRollout, stages []Stage, i int) string {
	for ; i < len(stages); i++ {
		if awaitsApproval(r, stages[i].Stage) {
			return "then the rollout goes on by itself and stops before stage " + stages[i].describe() + " until a commit sets `promote: " + stages[i].Name + "`"
		}
	}
	if r.Spec.Ztunnel != nil {
		return "then the rollout goes on by itself to the end, ztunnel included"
	}
	return "then the rollout goes on by itself to the end"
}

// promotes says what a commit that sets promote starts.
func promotes(r *meshspec.DataplaneRollout, stages []Stage, nodes []string) []string {
	for i, s := range stages {
		if s.Name != r.Spec.Promote {
			continue
		}
		lines := []string{"promotes stage " + s.describe() + ": merging starts it as soon as the stages before it have passed, at once if the rollout waits for it"}
		rest := describeStages(r, stages, nodes)
		lines = append(lines, rest[i:]...)
		return append(lines, runsUntil(r, stages, i+1))
	}
	return nil // Preflight refuses a promote that names no manual stage
}

// ZtunnelNodes lists, sorted as the ztunnel stage replaces them, the nodes
// that run a pod of the ztunnel DaemonSet in namespace (istio-system when
// empty). A missing DaemonSet has no nodes.
func ZtunnelNodes(ctx context.Context, c client.Reader, namespace string) ([]string, error) {
	if namespace == "" {
		namespace = meshspec.DefaultRootNamespace
	}
	ds := &appsv1.DaemonSet{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ZtunnelName}, ds); err != nil {
		if apierrors.IsNotFound(err) {
			return []string{}, nil
		}
		return nil, fmt.Errorf("ztunnel DaemonSet %s/%s read failed: %w", namespace, ZtunnelName, err)
	}
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(namespace), client.MatchingLabels(ds.Spec.Selector.MatchLabels)); err != nil {
		return nil, fmt.Errorf("ztunnel pods list failed: %w", err)
	}
	nodes := []string{}
	for _, p := range pods.Items {
		if p.Spec.NodeName != "" && p.DeletionTimestamp == nil {
			nodes = append(nodes, p.Spec.NodeName)
		}
	}
	sort.Strings(nodes)
	return nodes, nil
}
