package reconciler

import (
	"context"
	"fmt"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
)

// referenced are the kinds the rule catalogue looks references up in.
var referenced = []schema.GroupVersionKind{
	{Version: "v1", Kind: "Namespace"},
	{Version: "v1", Kind: "Service"},
	ambient.GatewayGK.WithVersion("v1"),
	ambient.HTTPRouteGK.WithVersion("v1"),
	ambient.VirtualServiceGK.WithVersion("v1"),
	ambient.DestinationRuleGK.WithVersion("v1"),
}

// LiveContext lists, from the cluster, the objects the rule catalogue
// resolves references against: Namespaces, Services, Gateways, HTTPRoutes,
// VirtualServices and DestinationRules. A kind the cluster does not serve
// is skipped.
func LiveContext(ctx context.Context, c client.Reader) ([]*unstructured.Unstructured, error) {
	return ListKinds(ctx, c, referenced)
}

// ListKinds lists every object of kinds from the cluster, in every
// namespace, each with its kind set. A kind the cluster does not serve is
// skipped.
func ListKinds(ctx context.Context, c client.Reader, kinds []schema.GroupVersionKind) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, gvk := range kinds {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := c.List(ctx, l); err != nil {
			if apimeta.IsNoMatchError(err) {
				continue
			}
			return nil, fmt.Errorf("list live %s: %w", gvk.Kind, err)
		}
		for i := range l.Items {
			l.Items[i].SetGroupVersionKind(gvk)
			out = append(out, &l.Items[i])
		}
	}
	return out, nil
}
