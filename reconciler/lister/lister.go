package lister

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unique"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/reconciler/apply"
	"github.com/meshcd/meshcd/reconciler/foreign"
)

// Lister is a client.Reader whose Lists of meshcd's objects and of
// istiod's waypoints come from informers, started per kind on first use.
type Lister struct {
	// owned informs on meshcd's objects of every kind (managed-by=meshcd),
	// waypoints on what istiod creates for a waypoint.
	owned, waypoints cache.Cache
	direct           client.Reader
	names            *names

	mu sync.RWMutex
	// expected are the objects meshcd wants, by digest (Expect).
	expected map[string]apply.Desired
}

var (
	// managed selects meshcd's own objects.
	managed = labels.SelectorFromSet(labels.Set{ambient.LabelManagedBy: ambient.ManagedByValue})
	// waypoints selects what istiod creates for a waypoint Gateway.
	waypoints = exists(ambient.LabelGatewayName)

	// waypointKinds are the kinds of waypoints' lists.
	waypointKinds = map[schema.GroupKind]bool{
		{Group: "apps", Kind: "Deployment"}:                true,
		{Group: "discovery.k8s.io", Kind: "EndpointSlice"}: true,
	}
)

func exists(key string) labels.Selector {
	r, err := labels.NewRequirement(key, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant, valid key
	}
	return labels.NewSelector().Add(*r)
}

// transform drops the managedFields entries the apply never reads from a
// listed object: meshcd's own and every subresource's, most of them. What
// stays is what package foreign needs to see fields another manager added,
// and on most objects that is nothing. An object of meshcd's that holds the
// expected object with its digest, and has no such entries, then loses its
// body and keeps its status encoded (apply.Desired.Slim): the apply, the
// health read-back and the drift watch read only its metadata and status.
// Last, the object's maps are rebuilt at their size with shared copies of
// its field names and strings, which every object repeats.
func (l *Lister) transform(in any) (any, error) {
	obj, ok := in.(metav1.Object)
	if !ok {
		return in, nil
	}
	kept := slices.DeleteFunc(obj.GetManagedFields(), func(e metav1.ManagedFieldsEntry) bool { return !foreign.Other(e) })
	if len(kept) == 0 {
		kept = nil
	}
	obj.SetManagedFields(kept)
	u, ok := in.(*unstructured.Unstructured)
	if !ok {
		return in, nil
	}
	if kept == nil && obj.GetLabels()[ambient.LabelManagedBy] == ambient.ManagedByValue {
		l.mu.RLock()
		want, ok := l.expected[apply.DigestOf(u)]
		l.mu.RUnlock()
		if ok {
			want.Slim(u)
		}
	}
	u.Object = l.names.object(u.Object)
	return u, nil
}

// waypointTransform keeps of a waypoint's Deployment or EndpointSlice what
// the health read-back reads (package health): its metadata without
// managedFields, its status and its endpoints. A Deployment's spec, the
// pod template istiod wrote, and istiod's managedFields entry over all of
// it, are most of its size.
func (l *Lister) waypointTransform(in any) (any, error) {
	u, ok := in.(*unstructured.Unstructured)
	if !ok {
		return in, nil
	}
	u.SetManagedFields(nil)
	delete(u.Object, "spec")
	u.Object = l.names.object(u.Object)
	return u, nil
}

// Expect tells the informers the objects meshcd wants now, replacing
// those it was told before: an object cached from now on that holds the
// one with its digest is kept slim (apply.Desired.Slim, which vouches for
// no object changed since its digest was taken). An apply tells them
// before it lists, so that what it creates or changes is cached slim.
func (l *Lister) Expect(desired []apply.Desired) {
	by := make(map[string]apply.Desired, len(desired))
	for _, d := range desired {
		by[d.Digest] = d
	}
	l.mu.Lock()
	l.expected = by
	l.mu.Unlock()
}

// names are the field names the cached objects share. Field names come
// from the kinds' schemas and the spec's label keys, so they are few; the
// table stops growing at maxNames all the same.
type names struct {
	mu     sync.Mutex
	shared map[string]string
}

const maxNames = 4096

func (n *names) name(s string) string {
	if c, ok := n.shared[s]; ok {
		return c
	}
	if len(n.shared) < maxNames {
		n.shared[s] = s
	}
	return s
}

// object compacts a cached object. A slim copy's encoded status is a
// string no other object holds: it is kept as it is, not interned.
func (n *names) object(obj map[string]any) map[string]any {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := make(map[string]any, len(obj))
	for k, e := range obj {
		if k == apply.StatusHeld {
			m[k] = e
			continue
		}
		m[n.name(k)] = n.compact(e)
	}
	return m
}

func (n *names) compact(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[n.name(k)] = n.compact(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = n.compact(e)
		}
		return x
	case string:
		// Values change with every write (resourceVersions, times): they
		// are shared through package unique, which forgets them with the
		// objects.
		return unique.Make(x).Value()
	}
	return v
}

// Start starts the informers' caches and returns a Lister reading through
// them; direct serves every read the caches do not. The caches stop with ctx.
func Start(ctx context.Context, cfg *rest.Config, direct client.Reader) (*Lister, error) {
	l := &Lister{direct: direct, names: &names{shared: map[string]string{}}}
	for _, c := range []struct {
		cache     *cache.Cache
		selector  labels.Selector
		transform func(any) (any, error)
	}{{&l.owned, managed, l.transform}, {&l.waypoints, waypoints, l.waypointTransform}} {
		var err error
		if *c.cache, err = cache.New(cfg, cache.Options{DefaultLabelSelector: c.selector, DefaultTransform: c.transform}); err != nil {
			return nil, fmt.Errorf("informer cache: %w", err)
		}
		go func() { _ = (*c.cache).Start(ctx) }()
		if !(*c.cache).WaitForCacheSync(ctx) {
			return nil, fmt.Errorf("informer cache did not start: %w", ctx.Err())
		}
	}
	return l, nil
}

// Informer returns the informer of meshcd's objects of kind gvk, the one
// its Lists are served from, starting it if none runs: a drift watch
// shares it instead of holding a second copy of every object.
func (l *Lister) Informer(ctx context.Context, gvk schema.GroupVersionKind) (cache.Informer, error) {
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(gvk)
	inf, err := l.owned.GetInformer(ctx, obj)
	if err != nil {
		return nil, fmt.Errorf("informer of %s: %w", gvk.Kind, err)
	}
	return inf, nil
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
	c := l.cacheOf(list, lo)
	if c == nil {
		return l.direct.List(ctx, list, opts...)
	}
	// The informer holds only what the selector selects: matching each
	// item against it again would copy every item's labels.
	cacheOpts := []client.ListOption{client.UnsafeDisableDeepCopy}
	if lo.Namespace != "" {
		cacheOpts = append(cacheOpts, client.InNamespace(lo.Namespace))
	}
	if err := c.List(ctx, list, cacheOpts...); err != nil {
		// A kind the cache cannot watch (its CRD is missing, say) is
		// read directly, which reports the error as it is.
		return l.direct.List(ctx, list, opts...)
	}
	return nil
}

// cacheOf returns the cache that serves list: the one whose selector is
// exactly the list's, for an unstructured list; nil otherwise.
func (l *Lister) cacheOf(list client.ObjectList, lo *client.ListOptions) cache.Cache {
	u, ok := list.(*unstructured.UnstructuredList)
	if !ok {
		return nil
	}
	if lo.LabelSelector == nil || lo.FieldSelector != nil || lo.Limit != 0 || lo.Continue != "" || lo.Raw != nil {
		return nil
	}
	gvk := u.GroupVersionKind()
	switch selector := lo.LabelSelector.String(); {
	case selector == managed.String():
		return l.owned
	case selector == waypoints.String() && waypointKinds[schema.GroupKind{Group: gvk.Group, Kind: strings.TrimSuffix(gvk.Kind, "List")}]:
		return l.waypoints
	}
	return nil
}
