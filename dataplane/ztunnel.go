package dataplane

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/meshspec"
)

// ZtunnelName is the DaemonSet Istio's install names ztunnel.
const ZtunnelName = "ztunnel"

// ZtunnelState is the progress of the ztunnel stage.
type ZtunnelState struct {
	// Previous is the image ztunnel ran before the rollout.
	Previous string `json:"previous,omitempty"`
	// Replaced lists the nodes whose ztunnel pod was replaced, in order.
	Replaced []string `json:"replaced,omitempty"`
	// RollingBack is set when the stage failed or was aborted: ztunnel
	// goes back to Previous, node by node.
	RollingBack bool `json:"rollingBack,omitempty"`
}

// stepZtunnel moves the ztunnel DaemonSet to the bundle one step; a step
// that waits longer than the timeout fails the stage and starts the
// rollback.
func (r *Runner) stepZtunnel(ctx context.Context, ro *meshspec.DataplaneRollout, st *State, b Bundle, unhealthy []string) error {
	if st.Ztunnel == nil {
		st.Ztunnel = &ZtunnelState{}
	}
	m, err := r.moveZtunnel(ctx, ro.Spec.Ztunnel, b.Ztunnel, unhealthy)
	if err != nil {
		return err
	}
	if m.blocked != "" {
		st.Phase, st.Message = PhasePaused, "paused: "+m.blocked
		return nil
	}
	if m.from != "" && st.Ztunnel.Previous == "" {
		st.Ztunnel.Previous = m.from
	}
	st.Ztunnel.Replaced = append(st.Ztunnel.Replaced, m.replaced...)
	if m.done {
		st.Phase, st.Message = PhaseSucceeded, fmt.Sprintf("every stage runs bundle %s; %s", b.Version, m.progress)
		return nil
	}
	now := r.now()
	if m.from != "" || len(m.replaced) > 0 {
		st.StageStarted = now // progress: the next nodes get a full timeout
	}
	timeout := DefaultGateTimeout
	if t := ro.Spec.Ztunnel.Timeout; t != nil {
		timeout = t.Duration
	}
	if now.Sub(st.StageStarted) > timeout {
		st.Phase, st.Message, st.HealthySince = PhaseFailed, fmt.Sprintf("stage ztunnel made no progress within %s: %s", timeout, m.progress), time.Time{}
		r.revertZtunnel(st)
		return nil
	}
	st.Message = m.progress
	return nil
}

// revertZtunnel sends a Failed rollout's ztunnel back to its previous
// image, node by node, if the rollout changed it.
func (r *Runner) revertZtunnel(st *State) {
	if st.Ztunnel == nil || st.Ztunnel.Previous == "" {
		return
	}
	st.Ztunnel.RollingBack = true
	st.Message += "; rolling ztunnel back to " + st.Ztunnel.Previous
}

// settleZtunnel moves a rolled back ztunnel to its previous image; done
// once every node runs it. The rollout stays Failed until then, whatever
// would pause a rollout.
func (r *Runner) settleZtunnel(ctx context.Context, ro *meshspec.DataplaneRollout, st *State) (bool, error) {
	if st.Ztunnel == nil || !st.Ztunnel.RollingBack {
		return true, nil
	}
	z := ro.Spec.Ztunnel
	if z == nil {
		z = &meshspec.ZtunnelRollout{Strategy: meshspec.ZtunnelNodeByNode, MaxUnavailable: 1}
	}
	m, err := r.moveZtunnel(ctx, z, st.Ztunnel.Previous, nil)
	if err != nil || !m.done {
		return false, err
	}
	st.Ztunnel.RollingBack = false
	st.Message = strings.Replace(st.Message, "; rolling ztunnel back to", "; ztunnel rolled back to", 1)
	return true, nil
}

// ztunnelMove is what one move of the ztunnel DaemonSet did and where it
// left it.
type ztunnelMove struct {
	// done is set once every node runs the image, Ready.
	done bool
	// from is the image the move replaced in the DaemonSet, if it set it.
	from string
	// replaced are the nodes whose pod the move deleted.
	replaced []string
	// blocked says why ztunnel cannot be moved at all.
	blocked string
	// progress says where the move left ztunnel.
	progress string
}

// moveZtunnel brings the ztunnel DaemonSet to image: it sets the image,
// then, node by node, deletes one old pod at a time (OnDelete) and waits
// for its replacement to be Ready before the next, within maxUnavailable.
// The rolling strategy leaves the pods to the DaemonSet controller.
func (r *Runner) moveZtunnel(ctx context.Context, z *meshspec.ZtunnelRollout, image string, unhealthy []string) (ztunnelMove, error) {
	ns := r.ZtunnelNamespace
	if ns == "" {
		ns = meshspec.DefaultRootNamespace
	}
	ds := &appsv1.DaemonSet{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ZtunnelName}, ds); err != nil {
		if apierrors.IsNotFound(err) {
			return ztunnelMove{blocked: fmt.Sprintf("no DaemonSet %s/%s to roll; install ztunnel first", ns, ZtunnelName)}, nil
		}
		return ztunnelMove{}, fmt.Errorf("ztunnel DaemonSet read failed: %w", err)
	}
	if z.Strategy == meshspec.ZtunnelNodeByNode && ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType {
		return ztunnelMove{blocked: fmt.Sprintf("node-by-node needs DaemonSet %s/%s with updateStrategy OnDelete, it has %s; change the install or use strategy rolling", ns, ZtunnelName, ds.Spec.UpdateStrategy.Type)}, nil
	}
	i := ztunnelContainer(ds.Spec.Template.Spec.Containers)
	if i < 0 {
		return ztunnelMove{}, fmt.Errorf("DaemonSet %s/%s has no containers", ns, ZtunnelName)
	}
	if img := ds.Spec.Template.Spec.Containers[i].Image; img != image {
		patch := client.StrategicMergeFrom(ds.DeepCopy())
		ds.Spec.Template.Spec.Containers[i].Image = image
		if err := r.Client.Patch(ctx, ds, patch, client.FieldOwner(ambient.FieldManager)); err != nil {
			return ztunnelMove{}, fmt.Errorf("ztunnel DaemonSet image update failed: %w", err)
		}
		return ztunnelMove{from: img, progress: fmt.Sprintf("ztunnel DaemonSet set to %s; replacing its pods %s", image, z.Strategy)}, nil
	}
	desired := int(ds.Status.DesiredNumberScheduled)
	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels(ds.Spec.Selector.MatchLabels)); err != nil {
		return ztunnelMove{}, fmt.Errorf("ztunnel pods list failed: %w", err)
	}
	var old []corev1.Pod
	ready, updated := 0, 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		j := ztunnelContainer(p.Spec.Containers)
		isNew := j >= 0 && p.Spec.Containers[j].Image == image
		if podReady(&p) {
			ready++
			if isNew {
				updated++
			}
		}
		if !isNew {
			old = append(old, p)
		}
	}
	if updated == desired && len(old) == 0 {
		return ztunnelMove{done: true, progress: fmt.Sprintf("ztunnel %s on %d nodes", image, desired)}, nil
	}
	if z.Strategy == meshspec.ZtunnelRolling {
		return ztunnelMove{progress: fmt.Sprintf("ztunnel rolling: %d of %d nodes run %s", updated, desired, image)}, nil
	}
	maxUnavailable := int(z.MaxUnavailable)
	if maxUnavailable < 1 {
		maxUnavailable = 1
	}
	free := maxUnavailable - (desired - ready)
	if free <= 0 || len(unhealthy) > 0 {
		why := fmt.Sprintf("%d of %d ztunnel pods ready", ready, desired)
		if len(unhealthy) > 0 {
			why = unhealthy[0] + " is unhealthy"
		}
		return ztunnelMove{progress: fmt.Sprintf("ztunnel node by node to %s: %d of %d nodes done; waiting: %s", image, updated, desired, why)}, nil
	}
	sort.Slice(old, func(a, b int) bool { return old[a].Spec.NodeName < old[b].Spec.NodeName })
	var nodes []string
	for _, p := range old[:min(free, len(old))] {
		uid := p.UID
		if err := r.Client.Delete(ctx, &p, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
			return ztunnelMove{}, fmt.Errorf("ztunnel pod %s on node %s delete failed: %w", p.Name, p.Spec.NodeName, err)
		}
		nodes = append(nodes, p.Spec.NodeName)
	}
	return ztunnelMove{replaced: nodes, progress: fmt.Sprintf("ztunnel node by node to %s: replacing the pod on %s (%d of %d nodes done)", image, strings.Join(nodes, ", "), updated, desired)}, nil
}

// ztunnelContainer is the index of ztunnel's proxy container.
func ztunnelContainer(cs []corev1.Container) int {
	for i, c := range cs {
		if c.Name == "istio-proxy" {
			return i
		}
	}
	if len(cs) > 0 {
		return 0
	}
	return -1
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
