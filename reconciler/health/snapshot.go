package health

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
)

// ref names an object by kind.
type ref struct {
	gk              schema.GroupKind
	namespace, name string
}

// snapshot is the live state health is judged from, read with one list
// per kind.
type snapshot struct {
	objects map[ref]*unstructured.Unstructured
	// deployments are istiod's waypoint Deployments, keyed like their Gateway.
	deployments map[ref]*unstructured.Unstructured
	// readyServices holds the Services with a ready endpoint, keyed by the
	// Deployment ref of the same name.
	readyServices map[ref]bool
	// enrolled are meshcd's namespaces whose live labels send their
	// Services to a waypoint: those meshcd has enrolled, not those whose
	// enrollment waits for a waypoint.
	enrolled map[string]bool
}

// reported are the kinds health reads back.
var reported = map[schema.GroupKind]bool{ambient.GatewayGK: true, ambient.ServiceGK: true, ambient.AuthorizationPolicyGK: true, ambient.HTTPRouteGK: true}

// snapshot lists meshcd's objects of kinds, meshcd's Namespaces when there
// are Services among them, and, when there are Gateways, istiod's waypoint
// Deployments and their endpoints.
func (c *Checker) snapshot(ctx context.Context, kinds map[schema.GroupVersionKind]bool) (*snapshot, error) {
	s := &snapshot{objects: map[ref]*unstructured.Unstructured{}, deployments: map[ref]*unstructured.Unstructured{}, readyServices: map[ref]bool{}, enrolled: map[string]bool{}}
	waypoints, services := false, false
	for gvk := range kinds {
		waypoints = waypoints || gvk.GroupKind() == ambient.GatewayGK
		services = services || gvk.GroupKind() == ambient.ServiceGK
		items, err := c.list(ctx, gvk, client.MatchingLabels{ambient.LabelManagedBy: ambient.ManagedByValue})
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			s.objects[ref{gvk.GroupKind(), it.GetNamespace(), it.GetName()}] = it
		}
	}
	if services {
		namespaces, err := c.list(ctx, namespaceGVK, client.MatchingLabels{ambient.LabelManagedBy: ambient.ManagedByValue})
		if err != nil {
			return nil, err
		}
		for _, ns := range namespaces {
			s.enrolled[ns.GetName()] = usesWaypoint(ns)
		}
	}
	if !waypoints {
		return s, nil
	}
	deps, err := c.list(ctx, deploymentGVK, client.HasLabels{ambient.LabelGatewayName})
	if err != nil {
		return nil, err
	}
	for _, d := range deps {
		s.deployments[ref{deploymentGVK.GroupKind(), d.GetNamespace(), d.GetName()}] = d
	}
	// The EndpointSlice controller copies the waypoint Service's labels,
	// istiod's gateway-name among them, onto its slices.
	slices, err := c.list(ctx, endpointSliceGVK, client.HasLabels{ambient.LabelGatewayName})
	if err != nil {
		return nil, err
	}
	for _, sl := range slices {
		if hasReadyEndpoint(sl) {
			s.readyServices[ref{deploymentGVK.GroupKind(), sl.GetNamespace(), sl.GetLabels()["kubernetes.io/service-name"]}] = true
		}
	}
	return s, nil
}

func (c *Checker) list(ctx context.Context, gvk schema.GroupVersionKind, opts ...client.ListOption) ([]*unstructured.Unstructured, error) {
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	lists := c.Lists
	if lists == nil {
		lists = c.Client
	}
	if err := lists.List(ctx, l, opts...); err != nil {
		return nil, fmt.Errorf("list %s failed: %w", gvk.Kind, err)
	}
	out := make([]*unstructured.Unstructured, len(l.Items))
	for i := range l.Items {
		out[i] = &l.Items[i]
	}
	return out, nil
}
