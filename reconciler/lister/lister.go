package lister

import (
	"context"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/reconciler/foreign"
)

// Lister is a client.Reader whose Lists of meshcd's objects and of
// istiod's waypoints come from informers, started per kind on first use.
type Lister struct {
	cache  cache.Cache
	direct client.Reader
	// byKind holds the selector of the kinds whose informer is not the
	// default one (managed-by=meshcd).
	byKind map[schema.GroupKind]string
}

var (
	// managed selects meshcd's own objects.
	managed = labels.SelectorFromSet(labels.Set{ambient.LabelManagedBy: ambient.ManagedByValue})
	// waypoints selects what istiod creates for a waypoint Gateway.
	waypoints = exists(ambient.LabelGatewayName)

	deploymentGK    = schema.GroupKind{Group: "apps", Kind: "Deployment"}
	endpointSliceGK = schema.GroupKind{Group: "discovery.k8s.io", Kind: "EndpointSlice"}
)

func exists(key string) labels.Selector {
	r, err := labels.NewRequirement(key, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant, valid key
	}
	return labels.NewSelector().Add(*r)
}

// keepForeignFields drops the managedFields entries the apply never reads
// from a listed object: meshcd's own and every subresource's, most of
// them. What stays is what package foreign needs to see fields another
// manager added, and on most objects that is nothing.
func keepForeignFields(in any) (any, error) {
	if obj, ok := in.(metav1.Object); ok {
		kept := slices.DeleteFunc(obj.GetManagedFields(), func(e metav1.ManagedFieldsEntry) bool { return !foreign.Other(e) })
		if len(kept) == 0 {
			kept = nil
		}
		obj.SetManagedFields(kept)
	}
	return in, nil
}

// Start starts the informers' cache and returns a Lister reading through
// it; direct serves every read the cache does not. The cache stops with ctx.
func Start(ctx context.Context, cfg *rest.Config, direct client.Reader) (*Lister, error) {
	deployment := &unstructured.Unstructured{}
	deployment.SetGroupVersionKind(deploymentGK.WithVersion("v1"))
	slice := &unstructured.Unstructured{}
	slice.SetGroupVersionKind(endpointSliceGK.WithVersion("v1"))
	c, err := cache.New(cfg, cache.Options{
		DefaultLabelSelector: managed,
		DefaultTransform:     keepForeignFields,
		ByObject: map[client.Object]cache.ByObject{
			deployment: {Label: waypoints},
			slice:      {Label: waypoints},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("informer cache: %w", err)
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("informer cache did not start: %w", ctx.Err())
	}
	return &Lister{
		cache:  c,
		direct: direct,
		byKind: map[schema.GroupKind]string{deploymentGK: waypoints.String(), endpointSliceGK: waypoints.String()},
	}, nil
}

// Get reads from the API server.
func (l *Lister) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	return l.direct.Get(ctx, key, obj, opts...)
}

// List serves an unstructured list from its kind's informer when the
// selector is exactly the informer's, and from the API server otherwise.
// The items served from an informer are its own, not copies: the caller
// must not change them.
func (l *Lister) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	lo := (&client.ListOptions{}).ApplyOptions(opts)
	if !l.cached(list, lo) {
		return l.direct.List(ctx, list, opts...)
	}
	// The informer holds only what the selector selects: matching each
	// item against it again would copy every item's labels.
	cacheOpts := []client.ListOption{client.UnsafeDisableDeepCopy}
	if lo.Namespace != "" {
		cacheOpts = append(cacheOpts, client.InNamespace(lo.Namespace))
	}
	if err := l.cache.List(ctx, list, cacheOpts...); err != nil {
		// A kind the cache cannot watch (its CRD is missing, say) is
		// read directly, which reports the error as it is.
		return l.direct.List(ctx, list, opts...)
	}
	return nil
}

func (l *Lister) cached(list client.ObjectList, lo *client.ListOptions) bool {
	u, ok := list.(*unstructured.UnstructuredList)
	if !ok {
		return false
	}
	if lo.LabelSelector == nil || lo.FieldSelector != nil || lo.Limit != 0 || lo.Continue != "" || lo.Raw != nil {
		return false
	}
	gvk := u.GroupVersionKind()
	gk := schema.GroupKind{Group: gvk.Group, Kind: strings.TrimSuffix(gvk.Kind, "List")}
	want, ok := l.byKind[gk]
	if !ok {
		want = managed.String()
	}
	return lo.LabelSelector.String() == want
}
