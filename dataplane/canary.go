package dataplane

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/meshspec"
	"github.com/meshcd/meshcd/reconciler/health"
)

// CanarySuffix names a canary waypoint after its primary: waypoint-canary.
const CanarySuffix = "-canary"

// CanaryState is the progress of a canary stage: a second waypoint on the
// new bundle beside each namespace's waypoint, taking a growing share of
// new connections.
type CanaryState struct {
	// Namespaces are the stage's namespaces, all moved together.
	Namespaces []string `json:"namespaces"`
	// Image is the proxy image the canary waypoints run.
	Image string `json:"image"`
	// Step indexes the stage's steps; -1 while the canaries come up, before
	// any traffic is sent to them.
	Step int `json:"step"`
	// Weight is the share of new connections sent to the canaries.
	Weight int32 `json:"weight"`
	// Promoting is set once the canaries carried 100% and passed their
	// gates: the primaries move to Image while the canaries still carry
	// the traffic, and the canaries are removed once the primaries serve.
	Promoting bool `json:"promoting,omitempty"`
}

// Overlay returns the objects a reconcile applies for the rollouts' states:
// the rendered objects with the pinned images on the waypoint Gateways,
// plus, for every running canary, its waypoint Gateway, copies of the
// policies attached to the primary Gateway, the canary's identity in the
// ztunnel policies that admit the primary, and the canary label and weight
// on the objects enrolled in the primary. Changed objects are copies; objs
// is left as it was.
func Overlay(objs []*unstructured.Unstructured, states map[string]*State) []*unstructured.Unstructured {
	pins := map[string]string{}
	names := make([]string, 0, len(states))
	for n := range states {
		names = append(names, n)
	}
	sort.Strings(names)
	canaries := map[string]*CanaryState{}
	for _, n := range names {
		st := states[n]
		for ns, img := range st.Pins {
			pins[ns] = img
		}
		if c := st.Canary; c != nil {
			for _, ns := range c.Namespaces {
				canaries[ns] = c
			}
		}
	}
	out := pinned(objs, pins)
	if len(canaries) == 0 {
		return out
	}
	primaries := map[string]bool{} // "ns/name" of the waypoints with a canary
	for _, o := range out {
		if isWaypoint(o) && canaries[o.GetNamespace()] != nil {
			primaries[o.GetNamespace()+"/"+o.GetName()] = true
		}
	}
	var added []*unstructured.Unstructured
	for i, o := range out {
		ns := o.GetNamespace()
		if o.GroupVersionKind().GroupKind() == ambient.NamespaceGK {
			ns = o.GetName()
		}
		c := canaries[ns]
		if c == nil {
			continue
		}
		switch {
		case isWaypoint(o):
			gw := o.DeepCopy()
			gw.SetName(o.GetName() + CanarySuffix)
			a := gw.GetAnnotations()
			if a == nil {
				a = map[string]string{}
			}
			a[ambient.AnnotationProxyImage] = c.Image
			gw.SetAnnotations(a)
			added = append(added, gw)
		case targetsGateway(o, primaries):
			added = append(added, forCanary(o))
		case o.GroupVersionKind().GroupKind() == ambient.AuthorizationPolicyGK:
			if p := admitCanary(o, primaries); p != nil {
				out[i] = p
			}
		}
		if c.Step >= 0 {
			if e := enrollCanary(out[i], c.Weight, primaries); e != nil {
				out[i] = e
			}
		}
	}
	return append(out, added...)
}

// targetsGateway reports whether o is attached to one of the primaries by
// a targetRef of kind Gateway: such policies do not follow the traffic to
// the canary and are copied for it.
func targetsGateway(o *unstructured.Unstructured, primaries map[string]bool) bool {
	for _, ref := range targetRefs(o) {
		if kind, _ := ref["kind"].(string); kind == "Gateway" {
			if name, _ := ref["name"].(string); primaries[o.GetNamespace()+"/"+name] {
				return true
			}
		}
	}
	return false
}

func targetRefs(o *unstructured.Unstructured) []map[string]any {
	var out []map[string]any
	refs, _, _ := unstructured.NestedSlice(o.Object, "spec", "targetRefs")
	for _, r := range refs {
		if m, ok := r.(map[string]any); ok {
			out = append(out, m)
		}
	}
	if m, ok, _ := unstructured.NestedMap(o.Object, "spec", "targetRef"); ok {
		out = append(out, m)
	}
	return out
}

// forCanary copies a policy attached to a primary Gateway onto its canary.
func forCanary(o *unstructured.Unstructured) *unstructured.Unstructured {
	c := o.DeepCopy()
	c.SetName(o.GetName() + CanarySuffix)
	retarget := func(m map[string]any) {
		if kind, _ := m["kind"].(string); kind == "Gateway" {
			m["name"] = m["name"].(string) + CanarySuffix
		}
	}
	if refs, ok, _ := unstructured.NestedSlice(c.Object, "spec", "targetRefs"); ok {
		for _, r := range refs {
			if m, ok := r.(map[string]any); ok {
				retarget(m)
			}
		}
		_ = unstructured.SetNestedSlice(c.Object, refs, "spec", "targetRefs")
	}
	if m, ok, _ := unstructured.NestedMap(c.Object, "spec", "targetRef"); ok {
		retarget(m)
		_ = unstructured.SetNestedMap(c.Object, m, "spec", "targetRef")
	}
	return c
}

// admitCanary returns a copy of a ztunnel policy that admits a primary's
// identity with the canary's identity added beside it, or nil when the
// policy names no primary.
func admitCanary(o *unstructured.Unstructured, primaries map[string]bool) *unstructured.Unstructured {
	c := o.DeepCopy()
	rules, _, _ := unstructured.NestedSlice(c.Object, "spec", "rules")
	changed := false
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		from, _ := rule["from"].([]any)
		for _, f := range from {
			fm, _ := f.(map[string]any)
			src, ok := fm["source"].(map[string]any)
			if !ok {
				continue
			}
			ps, _ := src["principals"].([]any)
			var extra []any
			for _, p := range ps {
				s, _ := p.(string)
				if canary := canaryPrincipal(s, primaries); canary != "" {
					extra = append(extra, canary)
				}
			}
			if len(extra) > 0 {
				src["principals"] = append(ps, extra...)
				changed = true
			}
		}
	}
	if !changed {
		return nil
	}
	_ = unstructured.SetNestedSlice(c.Object, rules, "spec", "rules")
	return c
}

// canaryPrincipal is the canary's identity for a primary waypoint's
// identity "<trust domain>/ns/<ns>/sa/<name>", or "".
func canaryPrincipal(p string, primaries map[string]bool) string {
	i := strings.Index(p, "/ns/")
	if i < 0 {
		return ""
	}
	ns, sa, ok := strings.Cut(p[i+len("/ns/"):], "/sa/")
	if !ok || !primaries[ns+"/"+sa] {
		return ""
	}
	return p + CanarySuffix
}

// enrollCanary returns a copy of an object enrolled in a primary with the
// canary label and weight added, or nil when it names no primary.
func enrollCanary(o *unstructured.Unstructured, weight int32, primaries map[string]bool) *unstructured.Unstructured {
	labels := o.GetLabels()
	name := labels[ambient.LabelUseWaypoint]
	if name == "" {
		return nil
	}
	ns := labels[ambient.LabelUseWaypointNamespace]
	if ns == "" {
		ns = o.GetNamespace()
		if o.GroupVersionKind().GroupKind() == ambient.NamespaceGK {
			ns = o.GetName()
		}
	}
	if !primaries[ns+"/"+name] {
		return nil
	}
	c := o.DeepCopy()
	l := c.GetLabels()
	l[ambient.LabelUseWaypointCanary] = name + CanarySuffix
	if other := labels[ambient.LabelUseWaypointNamespace]; other != "" {
		l[ambient.LabelUseWaypointCanaryNamespace] = other
	}
	c.SetLabels(l)
	a := c.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[ambient.AnnotationUseWaypointCanaryWeight] = strconv.Itoa(int(weight))
	c.SetAnnotations(a)
	return c
}

// startCanary begins a canary stage: the canaries come up with no traffic.
func (r *Runner) startCanary(st *State, stage Stage, b Bundle) {
	st.Canary = &CanaryState{Namespaces: stage.Resolved, Image: b.Proxy, Step: -1}
	st.Phase, st.StageStarted = PhaseProgressing, r.now()
	st.Message = fmt.Sprintf("stage %s starts canary waypoints on %s", stage.describe(), b.Proxy)
}

// stepCanary makes one transition of a canary stage: canaries ready →
// first weight → … → 100 → promote the primaries → canaries removed and
// the next stage starts. A gate that does not hold within the timeout
// fails the stage, which removes the canaries.
func (r *Runner) stepCanary(ctx context.Context, ro *meshspec.DataplaneRollout, st *State, stages []Stage, stage Stage, b Bundle, v View, unhealthy []string) error {
	c := st.Canary
	ok, why, err := r.canaryGates(ctx, stage, c, b, v, unhealthy)
	if err != nil {
		return err
	}
	now := r.now()
	if !ok {
		st.HealthySince = time.Time{}
		timeout := DefaultGateTimeout
		if stage.Gates != nil && stage.Gates.Timeout != nil {
			timeout = stage.Gates.Timeout.Duration
		}
		if now.Sub(st.StageStarted) > timeout {
			at := fmt.Sprintf("at weight %d", c.Weight)
			if c.Step < 0 {
				at = "while the canaries came up"
			}
			r.revert(st, fmt.Sprintf("stage %s failed its gates %s within %s: %s; canary weight set to 0 and canaries removed", stage.Name, at, timeout, why), stage.Resolved)
			return nil
		}
		st.Message = fmt.Sprintf("stage %s canary %s waits: %s", stage.describe(), describeStep(c), why)
		return nil
	}
	if c.Step >= 0 && !c.Promoting {
		if st.HealthySince.IsZero() {
			st.HealthySince = now
		}
		soak := time.Duration(0)
		if stage.Gates != nil && stage.Gates.Soak != nil {
			soak = stage.Gates.Soak.Duration
		}
		if held := now.Sub(st.HealthySince); held < soak {
			st.Message = fmt.Sprintf("stage %s canary at weight %d soaks: healthy for %s of %s", stage.describe(), c.Weight, held.Round(time.Second), soak)
			return nil
		}
	}
	st.HealthySince, st.StageStarted = time.Time{}, now
	switch {
	case c.Promoting:
		// The primaries serve the new image: the canaries go.
		st.Canary = nil
		r.startStage(ro, st, stages, b, st.Stage+1)
	case c.Step == len(stage.Steps)-1:
		c.Promoting = true
		if st.Pins == nil {
			st.Pins = map[string]string{}
		}
		for _, ns := range c.Namespaces {
			st.Pins[ns] = c.Image
		}
		st.Message = fmt.Sprintf("stage %s promotes: the primaries move to %s while the canaries carry 100%%", stage.describe(), c.Image)
	default:
		c.Step++
		c.Weight = stage.Steps[c.Step]
		st.Message = fmt.Sprintf("stage %s canary at weight %d", stage.describe(), c.Weight)
	}
	return nil
}

func describeStep(c *CanaryState) string {
	switch {
	case c.Promoting:
		return "promotion"
	case c.Step < 0:
		return "start"
	}
	return fmt.Sprintf("at weight %d", c.Weight)
}

// canaryGates reports whether a canary stage may take its next step: each
// canary (or, while promoting, each primary) is ready and runs the new
// image, and nothing in the stage's namespaces is unhealthy.
func (r *Runner) canaryGates(ctx context.Context, s Stage, c *CanaryState, b Bundle, v View, unhealthy []string) (bool, string, error) {
	hc := &health.Checker{Client: r.Client}
	for _, ns := range s.Resolved {
		for _, primary := range v.Waypoints[ns] {
			name := primary + CanarySuffix
			if c.Promoting {
				name = primary
			}
			ok, why, err := hc.WaypointReady(ctx, ns, name)
			if err != nil {
				return false, "", err
			}
			if !ok {
				return false, fmt.Sprintf("waypoint %s/%s: %s", ns, name, why), nil
			}
			d, err := r.deployment(ctx, ns, name)
			if err != nil {
				return false, "", err
			}
			switch {
			case d == nil:
				return false, fmt.Sprintf("waypoint Deployment %s/%s does not exist yet", ns, name), nil
			case proxyImage(d) != c.Image:
				return false, fmt.Sprintf("waypoint Deployment %s/%s runs %s, not yet %s", ns, name, proxyImage(d), c.Image), nil
			case !rolledOut(d):
				return false, fmt.Sprintf("waypoint Deployment %s/%s is still rolling out", ns, name), nil
			}
		}
		for _, u := range unhealthy {
			if strings.Contains(u, " "+ns+"/") {
				return false, u + " is unhealthy", nil
			}
		}
	}
	if ok, why := prometheusGate(ctx, s); !ok {
		return false, why, nil
	}
	return true, "", nil
}

// canariesGone reports whether the canary Gateways of namespaces are gone.
func (r *Runner) canariesGone(ctx context.Context, v View, namespaces []string) (bool, error) {
	for _, ns := range namespaces {
		for _, name := range v.Waypoints[ns] {
			gw := &unstructured.Unstructured{}
			gw.SetGroupVersionKind(ambient.GatewayGK.WithVersion("v1"))
			err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name + CanarySuffix}, gw)
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return false, fmt.Errorf("canary Gateway %s/%s read failed: %w", ns, name+CanarySuffix, err)
			}
			return false, nil
		}
	}
	return true, nil
}
