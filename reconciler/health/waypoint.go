package health

import (
	"context"
	"fmt"
	"slices"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/reconciler/apply"
)

// Checker reads health from a cluster.
type Checker struct {
	Client client.Client
	// Lists serves the snapshot's lists; nil lists from Client. An
	// informer cache (package lister) makes a read-back cost no list
	// request.
	Lists client.Reader

	mu sync.Mutex
	// judged is the last read-back's judgement of each desired object, by
	// its identity: a verdict holds while the live object keeps its
	// resourceVersion.
	judged map[judged]judgement
}

var (
	gatewayGVK       = ambient.GatewayGK.WithVersion("v1")
	deploymentGVK    = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	endpointSliceGVK = schema.GroupVersionKind{Group: "discovery.k8s.io", Version: "v1", Kind: "EndpointSlice"}
	namespaceGVK     = schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}
)

// WaypointReady reports whether the waypoint Gateway namespace/name serves
// traffic: Programmed with an address, its Deployment (istiod names it after
// the Gateway) with an available replica, and a ready endpoint behind its
// Service. reason names the first thing missing. With Lists it reads what
// the informers hold, so that a wait polling it sends no request; a Gateway
// they do not hold (not meshcd's, or not cached yet) is read directly.
func (c *Checker) WaypointReady(ctx context.Context, namespace, name string) (bool, string, error) {
	gw, err := c.gateway(ctx, namespace, name)
	if err != nil {
		return false, "", err
	}
	// istiod labels the Deployment, and the EndpointSlice controller copies
	// the Service's labels onto its slices, with the Gateway's name.
	inNamespace := []client.ListOption{client.InNamespace(namespace), client.HasLabels{ambient.LabelGatewayName}}
	deps, err := c.list(ctx, deploymentGVK, inNamespace...)
	if err != nil {
		return false, "", fmt.Errorf("waypoint %s/%s: %w", namespace, name, err)
	}
	var dep *unstructured.Unstructured
	if i := slices.IndexFunc(deps, func(d *unstructured.Unstructured) bool { return d.GetName() == name }); i >= 0 {
		dep = deps[i]
	}
	eps, err := c.list(ctx, endpointSliceGVK, inNamespace...)
	if err != nil {
		return false, "", fmt.Errorf("waypoint %s/%s: %w", namespace, name, err)
	}
	ready := false
	for _, sl := range eps {
		ready = ready || sl.GetLabels()["kubernetes.io/service-name"] == name && hasReadyEndpoint(sl)
	}
	ok, reason := waypointState(namespace, name, gw, dep, ready)
	return ok, reason, nil
}

// gateway reads the Gateway namespace/name, from the informers when they
// hold it; a missing Gateway is nil without error.
func (c *Checker) gateway(ctx context.Context, namespace, name string) (*unstructured.Unstructured, error) {
	if c.Lists != nil {
		gws, err := c.list(ctx, gatewayGVK, client.InNamespace(namespace), client.MatchingLabels{ambient.LabelManagedBy: ambient.ManagedByValue})
		if err != nil {
			return nil, fmt.Errorf("waypoint %s/%s: %w", namespace, name, err)
		}
		if i := slices.IndexFunc(gws, func(g *unstructured.Unstructured) bool { return g.GetName() == name }); i >= 0 {
			return gws[i], nil
		}
	}
	return c.get(ctx, gatewayGVK, namespace, name)
}

// waypointState judges a waypoint from its Gateway, its Deployment and
// whether its Service has a ready endpoint; nil objects are missing.
func waypointState(namespace, name string, gw, dep *unstructured.Unstructured, readyEndpoint bool) (bool, string) {
	if gw == nil {
		return false, fmt.Sprintf("Gateway %s/%s does not exist", namespace, name)
	}
	status := apply.Status(gw)
	if cond := findCondition(conditions(status, "conditions"), ambient.ConditionProgrammed); cond == nil || cond.Status != "True" {
		return false, "Gateway is not Programmed" + cond.detail()
	}
	if addrs, _, _ := unstructured.NestedSlice(status, "addresses"); len(addrs) == 0 {
		return false, "Gateway has no address"
	}
	if dep == nil {
		return false, fmt.Sprintf("waypoint Deployment %s/%s does not exist", namespace, name)
	}
	if n, _, _ := unstructured.NestedInt64(dep.Object, "status", "availableReplicas"); n < 1 {
		return false, "waypoint Deployment has no available replica"
	}
	if !readyEndpoint {
		return false, "waypoint Service has no ready endpoint"
	}
	return true, ""
}

// hasReadyEndpoint reports whether an EndpointSlice has a ready endpoint.
func hasReadyEndpoint(slice *unstructured.Unstructured) bool {
	eps, _, _ := unstructured.NestedSlice(slice.Object, "endpoints")
	for _, ep := range eps {
		if m, ok := ep.(map[string]any); ok {
			if ready, found, _ := unstructured.NestedBool(m, "conditions", "ready"); found && ready {
				return true
			}
		}
	}
	return false
}

// get reads one object; a missing object is nil without error.
func (c *Checker) get(ctx context.Context, gvk schema.GroupVersionKind, namespace, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	err := c.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, u)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s/%s read failed: %w", gvk.Kind, namespace, name, err)
	}
	return u, nil
}
