package dataplane

import (
	"context"
	"fmt"
	"sort"
	"strings"

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
}

// stepZtunnel moves the ztunnel DaemonSet to the bundle: it sets the image,
// then, node by node, deletes one old pod at a time (OnDelete) and waits
// for its replacement to be Ready before the next, within maxUnavailable.
// The rolling strategy leaves the pods to the DaemonSet controller.
func (r *Runner) stepZtunnel(ctx context.Context, ro *meshspec.DataplaneRollout, st *State, b Bundle, unhealthy []string) error {
	z := ro.Spec.Ztunnel
	ns := r.ZtunnelNamespace
	if ns == "" {
		ns = meshspec.DefaultRootNamespace
	}
	ds := &appsv1.DaemonSet{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ZtunnelName}, ds); err != nil {
		if apierrors.IsNotFound(err) {
			st.Phase, st.Message = PhasePaused, fmt.Sprintf("paused: no DaemonSet %s/%s to roll; install ztunnel first", ns, ZtunnelName)
			return nil
		}
		return fmt.Errorf("ztunnel DaemonSet read failed: %w", err)
	}
	if z.Strategy == meshspec.ZtunnelNodeByNode && ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType {
		st.Phase, st.Message = PhasePaused, fmt.Sprintf("paused: node-by-node needs DaemonSet %s/%s with updateStrategy OnDelete, it has %s; change the install or use strategy rolling", ns, ZtunnelName, ds.Spec.UpdateStrategy.Type)
		return nil
	}
	if st.Ztunnel == nil {
		st.Ztunnel = &ZtunnelState{}
	}
	i := ztunnelContainer(ds.Spec.Template.Spec.Containers)
	if i < 0 {
		return fmt.Errorf("DaemonSet %s/%s has no containers", ns, ZtunnelName)
	}
	if img := ds.Spec.Template.Spec.Containers[i].Image; img != b.Ztunnel {
		if st.Ztunnel.Previous == "" {
			st.Ztunnel.Previous = img
		}
		patch := client.StrategicMergeFrom(ds.DeepCopy())
		ds.Spec.Template.Spec.Containers[i].Image = b.Ztunnel
		if err := r.Client.Patch(ctx, ds, patch, client.FieldOwner(ambient.FieldManager)); err != nil {
			return fmt.Errorf("ztunnel DaemonSet image update failed: %w", err)
		}
		st.Message = fmt.Sprintf("ztunnel DaemonSet set to %s; replacing its pods %s", b.Ztunnel, z.Strategy)
		return nil
	}
	desired := int(ds.Status.DesiredNumberScheduled)
	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels(ds.Spec.Selector.MatchLabels)); err != nil {
		return fmt.Errorf("ztunnel pods list failed: %w", err)
	}
	var old []corev1.Pod
	ready, updated := 0, 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		j := ztunnelContainer(p.Spec.Containers)
		isNew := j >= 0 && p.Spec.Containers[j].Image == b.Ztunnel
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
		st.Phase, st.Message = PhaseSucceeded, fmt.Sprintf("every stage runs bundle %s; ztunnel replaced on %d nodes", b.Version, desired)
		return nil
	}
	if z.Strategy == meshspec.ZtunnelRolling {
		st.Message = fmt.Sprintf("ztunnel rolling: %d of %d nodes run %s", updated, desired, b.Ztunnel)
		return nil
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
		st.Message = fmt.Sprintf("ztunnel node by node: %d of %d nodes done; waiting: %s", updated, desired, why)
		return nil
	}
	sort.Slice(old, func(a, b int) bool { return old[a].Spec.NodeName < old[b].Spec.NodeName })
	var nodes []string
	for _, p := range old[:min(free, len(old))] {
		uid := p.UID
		if err := r.Client.Delete(ctx, &p, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("ztunnel pod %s on node %s delete failed: %w", p.Name, p.Spec.NodeName, err)
		}
		nodes = append(nodes, p.Spec.NodeName)
	}
	st.Ztunnel.Replaced = append(st.Ztunnel.Replaced, nodes...)
	st.Message = fmt.Sprintf("ztunnel node by node: replacing the pod on %s (%d of %d nodes done)", strings.Join(nodes, ", "), updated, desired)
	return nil
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
