package dataplane

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/meshspec"
	"github.com/meshcd/meshcd/reconciler/health"
)

// DefaultGateTimeout bounds a stage whose gates set no timeout.
const DefaultGateTimeout = 10 * time.Minute

// pinned returns objs with each namespace's pinned proxy image written on
// its waypoint Gateways, as the sidecar.istio.io/proxyImage annotation that
// istiod renders into the waypoint Deployment. The Gateways it changes are
// copies; objs is left as it was.
func pinned(objs []*unstructured.Unstructured, pins map[string]string) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o
		img := pins[o.GetNamespace()]
		if img == "" || !isWaypoint(o) {
			continue
		}
		c := o.DeepCopy()
		a := c.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		a[ambient.AnnotationProxyImage] = img
		c.SetAnnotations(a)
		out[i] = c
	}
	return out
}

// Runner steps rollouts: one transition per rollout per Step, every
// decision stored before it is acted on. It writes only the states; the
// reconcile applies what they say (Overlay).
type Runner struct {
	Client client.Client
	Store  *Store
	// Istiod is istiod's version for the skew check; empty skips it.
	Istiod string
	// ZtunnelNamespace holds the ztunnel DaemonSet; empty means istio-system.
	ZtunnelNamespace string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Step advances each rollout of the spec by at most one transition. objs
// are the rendered objects (without the overlay); unhealthy names the
// objects ("Kind namespace/name") the reconcile's read-back found
// unhealthy. moved reports whether what Overlay makes of the states
// changed: the caller then applies it. The decision is stored first, so
// that a restart in between finds it and applies it; a step that changed
// nothing writes nothing.
func (r *Runner) Step(ctx context.Context, rollouts []*meshspec.DataplaneRollout, objs []*unstructured.Unstructured, unhealthy []string) (states map[string]*State, moved bool, err error) {
	if len(rollouts) == 0 {
		return nil, false, nil
	}
	states, version, err := r.Store.Load(ctx)
	if err != nil {
		return nil, false, err
	}
	view, err := r.view(ctx, objs)
	if err != nil {
		return nil, false, err
	}
	before, overlayBefore, err := fingerprints(states)
	if err != nil {
		return nil, false, err
	}
	for _, ro := range rollouts {
		st := states[ro.Name]
		if st == nil {
			st = &State{}
			states[ro.Name] = st
		}
		if err := r.step(ctx, ro, st, view, unhealthy); err != nil {
			return states, false, fmt.Errorf("DataplaneRollout %s: %w", ro.Name, err)
		}
	}
	after, overlayAfter, err := fingerprints(states)
	if err != nil {
		return states, false, err
	}
	if bytes.Equal(before, after) {
		return states, false, nil
	}
	if err := r.Store.Save(ctx, states, version); err != nil {
		return states, false, err
	}
	return states, !bytes.Equal(overlayBefore, overlayAfter), nil
}

// fingerprints encodes the states whole, and the part Overlay reads.
func fingerprints(states map[string]*State) (all, overlay []byte, err error) {
	if all, err = json.Marshal(states); err != nil {
		return nil, nil, fmt.Errorf("rollout states: %w", err)
	}
	type applied struct {
		Pins   map[string]string
		Canary *CanaryState
	}
	o := map[string]applied{}
	for n, st := range states {
		o[n] = applied{st.Pins, st.Canary}
	}
	if overlay, err = json.Marshal(o); err != nil {
		return nil, nil, fmt.Errorf("rollout states: %w", err)
	}
	return all, overlay, nil
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// view lists the live namespaces and indexes the rendered waypoints.
func (r *Runner) view(ctx context.Context, objs []*unstructured.Unstructured) (View, error) {
	list := &corev1.NamespaceList{}
	if err := r.Client.List(ctx, list); err != nil {
		return View{}, fmt.Errorf("namespaces list failed: %w", err)
	}
	v := View{Namespaces: map[string]map[string]string{}, Waypoints: WaypointsOf(objs)}
	for _, ns := range list.Items {
		v.Namespaces[ns.Name] = ns.Labels
	}
	return v, nil
}

// step makes one transition of one rollout.
func (r *Runner) step(ctx context.Context, ro *meshspec.DataplaneRollout, st *State, view View, unhealthy []string) error {
	bundle, stages, perr := Preflight(ro, r.Istiod, view)
	cmd := st.Command
	st.Command = ""

	if st.Bundle != ro.Spec.Bundle {
		// A new target: start over from the first stage, keeping what the
		// namespaces ran before any rollout touched them.
		if perr != nil {
			st.Bundle, st.Phase, st.Message = ro.Spec.Bundle, PhasePending, perr.Error()
			return nil
		}
		st.Bundle = ro.Spec.Bundle
		r.startStage(ro, st, stages, bundle, 0)
		return nil
	}
	switch st.Phase {
	case PhasePending:
		if perr != nil {
			st.Message = perr.Error()
			return nil
		}
		r.startStage(ro, st, stages, bundle, 0)
		return nil
	case PhaseSucceeded, PhaseRolledBack:
		if cmd == CommandRollback && st.Phase == PhaseSucceeded {
			r.revert(st, "rolled back by command", keys(st.Previous))
			r.revertZtunnel(st)
		}
		return nil
	case PhaseFailed:
		return r.settleRollback(ctx, ro, st, bundle, view)
	}
	if perr != nil {
		// The namespaces changed under a running rollout: hold it.
		st.Phase, st.Message = PhasePaused, "paused: "+perr.Error()
		return nil
	}
	if st.Stage >= len(stages) {
		return r.ztunnelStage(ctx, ro, st, bundle, cmd, unhealthy)
	}
	stage := stages[st.Stage]
	switch cmd {
	case CommandAbort:
		r.revert(st, "aborted by command in stage "+stage.Name, stage.Resolved)
		return nil
	case CommandRollback:
		r.revert(st, "rolled back by command in stage "+stage.Name, keys(st.Previous))
		return nil
	case CommandPause:
		st.Phase, st.Message = PhasePaused, "paused by command in stage "+stage.Name
		return nil
	}
	// started: the stage has changed something already.
	started := st.Canary != nil || (len(st.Pins) > 0 && st.Pins[stage.Resolved[0]] == bundle.Proxy)
	if st.Phase == PhasePaused {
		switch {
		case awaitsApproval(ro, stage.Stage):
			return nil
		case cmd == CommandResume || strings.HasPrefix(st.Message, "paused: "):
			if !started {
				r.startStage(ro, st, stages, bundle, st.Stage)
				return nil
			}
			st.Phase, st.Message = PhaseProgressing, "resumed in stage "+stage.Name
		case !started:
			// Paused for approval and now promoted.
			r.startStage(ro, st, stages, bundle, st.Stage)
			return nil
		default:
			return nil
		}
	}
	if st.Canary != nil {
		return r.stepCanary(ctx, ro, st, stages, stage, bundle, view, unhealthy)
	}

	ok, why, err := r.gates(ctx, stage, bundle, view, unhealthy)
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
			r.revert(st, fmt.Sprintf("stage %s failed its gates within %s: %s", stage.Name, timeout, why), stage.Resolved)
			return nil
		}
		st.Message = "stage " + stage.describe() + " waits: " + why
		return nil
	}
	if st.HealthySince.IsZero() {
		st.HealthySince = now
	}
	soak := time.Duration(0)
	if stage.Gates != nil && stage.Gates.Soak != nil {
		soak = stage.Gates.Soak.Duration
	}
	if held := now.Sub(st.HealthySince); held < soak {
		st.Message = fmt.Sprintf("stage %s soaks: healthy for %s of %s", stage.describe(), held.Round(time.Second), soak)
		return nil
	}
	r.startStage(ro, st, stages, bundle, st.Stage+1)
	return nil
}

// ztunnelStage steps the stage after the waypoints: ztunnel, node by node.
func (r *Runner) ztunnelStage(ctx context.Context, ro *meshspec.DataplaneRollout, st *State, b Bundle, cmd Command, unhealthy []string) error {
	switch cmd {
	case CommandPause:
		st.Phase, st.Message = PhasePaused, "paused by command in stage ztunnel"
		return nil
	case CommandAbort:
		r.revert(st, "aborted by command in stage ztunnel", nil)
		r.revertZtunnel(st)
		return nil
	case CommandRollback:
		r.revert(st, "rolled back by command in stage ztunnel", keys(st.Previous))
		r.revertZtunnel(st)
		return nil
	}
	if st.Phase == PhasePaused && cmd != CommandResume && !strings.HasPrefix(st.Message, "paused: ") {
		return nil
	}
	st.Phase = PhaseProgressing
	return r.stepZtunnel(ctx, ro, st, b, unhealthy)
}

// startStage moves stage i's namespaces to the bundle (or starts their
// canaries), or pauses before a manual stage that is not promoted.
func (r *Runner) startStage(ro *meshspec.DataplaneRollout, st *State, stages []Stage, b Bundle, i int) {
	st.Stage, st.StageName, st.HealthySince = i, "", time.Time{}
	if i == len(stages) {
		if ro.Spec.Ztunnel == nil {
			st.Phase, st.Message = PhaseSucceeded, fmt.Sprintf("every stage runs bundle %s", b.Version)
			return
		}
		st.StageName, st.Phase, st.StageStarted = "ztunnel", PhaseProgressing, r.now()
		st.Message = fmt.Sprintf("waypoints done; ztunnel moves to %s %s", b.Ztunnel, ro.Spec.Ztunnel.Strategy)
		return
	}
	stage := stages[i]
	st.StageName = stage.Name
	if awaitsApproval(ro, stage.Stage) {
		st.Phase, st.Message = PhasePaused, fmt.Sprintf("stage %s waits for approval: commit `promote: %s` to start it", stage.describe(), stage.Name)
		return
	}
	if st.Pins == nil {
		st.Pins = map[string]string{}
	}
	if st.Previous == nil {
		st.Previous = map[string]string{}
	}
	for _, ns := range stage.Resolved {
		if _, seen := st.Previous[ns]; !seen {
			st.Previous[ns] = st.Pins[ns]
		}
	}
	if stage.Strategy == meshspec.StrategyCanary {
		r.startCanary(st, stage, b)
		return
	}
	for _, ns := range stage.Resolved {
		st.Pins[ns] = b.Proxy
	}
	st.Phase, st.StageStarted = PhaseProgressing, r.now()
	st.Message = fmt.Sprintf("stage %s moves to %s", stage.describe(), b.Proxy)
}

func awaitsApproval(ro *meshspec.DataplaneRollout, s meshspec.Stage) bool {
	return s.Approval == meshspec.ApprovalManual && ro.Spec.Promote != s.Name
}

// revert removes a running canary, puts namespaces back on their previous
// images and marks the rollout Failed until they run them again.
func (r *Runner) revert(st *State, why string, namespaces []string) {
	st.Canary = nil
	for _, ns := range namespaces {
		if prev := st.Previous[ns]; prev != "" {
			st.Pins[ns] = prev
		} else {
			delete(st.Pins, ns)
		}
	}
	if len(namespaces) > 0 {
		why += "; rolling back " + strings.Join(namespaces, ", ")
	}
	st.Phase, st.Message, st.HealthySince = PhaseFailed, why, time.Time{}
}

// settleRollback moves a Failed rollout to RolledBack once ztunnel, if it
// moved, runs its previous image on every node again and every namespace
// it reverted runs its previous image again.
func (r *Runner) settleRollback(ctx context.Context, ro *meshspec.DataplaneRollout, st *State, b Bundle, v View) error {
	if done, err := r.settleZtunnel(ctx, ro, st); err != nil || !done {
		return err
	}
	for ns, prev := range st.Previous {
		if st.Pins[ns] == b.Proxy {
			continue // a finished stage that was not rolled back
		}
		for _, name := range v.Waypoints[ns] {
			d, err := r.deployment(ctx, ns, name)
			if err != nil || d == nil {
				return err
			}
			img := proxyImage(d)
			if (prev != "" && img != prev) || (prev == "" && img == b.Proxy) || !rolledOut(d) {
				return nil
			}
		}
	}
	if gone, err := r.canariesGone(ctx, v, keys(st.Previous)); err != nil || !gone {
		return err
	}
	st.Phase = PhaseRolledBack
	st.Message = strings.Replace(st.Message, "; rolling back", "; rolled back", 1)
	return nil
}

// gates reports whether a stage's gates hold, and the first that does not.
func (r *Runner) gates(ctx context.Context, s Stage, b Bundle, v View, unhealthy []string) (bool, string, error) {
	programmed, ready := true, true
	if s.Gates != nil {
		programmed, ready = s.Gates.Programmed, s.Gates.Ready
	}
	hc := &health.Checker{Client: r.Client}
	for _, ns := range s.Resolved {
		for _, name := range v.Waypoints[ns] {
			if programmed {
				ok, why, err := hc.WaypointReady(ctx, ns, name)
				if err != nil {
					return false, "", err
				}
				if !ok {
					return false, fmt.Sprintf("waypoint %s/%s: %s", ns, name, why), nil
				}
			}
			d, err := r.deployment(ctx, ns, name)
			if err != nil {
				return false, "", err
			}
			if d == nil {
				return false, fmt.Sprintf("waypoint Deployment %s/%s does not exist yet", ns, name), nil
			}
			if img := proxyImage(d); img != b.Proxy {
				return false, fmt.Sprintf("waypoint Deployment %s/%s runs %s, not yet %s", ns, name, img, b.Proxy), nil
			}
			if ready && !rolledOut(d) {
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

// deployment reads the waypoint Deployment istiod names after its
// Gateway; a missing one is nil.
func (r *Runner) deployment(ctx context.Context, ns, name string) (*appsv1.Deployment, error) {
	d := &appsv1.Deployment{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, d)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("waypoint Deployment %s/%s read failed: %w", ns, name, err)
	}
	return d, nil
}

// proxyImage is the image of a waypoint Deployment's proxy container.
func proxyImage(d *appsv1.Deployment) string {
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "istio-proxy" {
			return c.Image
		}
	}
	return ""
}

// rolledOut reports whether every replica runs the current template.
func rolledOut(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.AvailableReplicas == want && s.Replicas == want
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
