package lister_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/internal/localcluster"
	"github.com/meshcd/meshcd/reconciler/apply"
	"github.com/meshcd/meshcd/reconciler/lister"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// setUp returns the test cluster, a client of it, a namespace of the
// test's own and a context that ends with the test.
func setUp(t *testing.T) (*localcluster.Cluster, client.Client, string, context.Context) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return clustertest.Cluster(t), clustertest.Client(t), clustertest.Namespace(t, nil), ctx
}

// ordersService is meshcd's Service orders in namespace ns, with labels
// next to meshcd's own: the object as rendered, as desired, and as meshcd
// applies it.
func ordersService(t *testing.T, ns string, labels map[string]any) (*unstructured.Unstructured, apply.Desired, *unstructured.Unstructured) {
	t.Helper()
	all := map[string]any{ambient.LabelManagedBy: ambient.ManagedByValue}
	for k, v := range labels {
		all[k] = v
	}
	rendered := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "orders", "namespace": ns, "labels": all},
		"spec":     map[string]any{"ports": []any{map[string]any{"name": "http", "port": int64(80)}}},
	}}
	want, err := apply.NewDesired(rendered)
	if err != nil {
		t.Fatal(err)
	}
	stamped, err := want.Stamped()
	if err != nil {
		t.Fatal(err)
	}
	return rendered, want, stamped
}

// requests records the reads of objects that reach the API server.
type requests struct {
	mu    sync.Mutex
	lists []string
}

func (r *requests) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		// Discovery (/api, /apis) is not a read of objects.
		if req.Method == http.MethodGet && strings.Count(req.URL.Path, "/") > 2 && !strings.Contains(req.URL.RawQuery, "watch=true") {
			r.mu.Lock()
			r.lists = append(r.lists, req.URL.Path+"?"+req.URL.RawQuery)
			r.mu.Unlock()
		}
		return rt.RoundTrip(req)
	})
}

func (r *requests) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.lists
	r.lists = nil
	return out
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func services(t *testing.T, l client.Reader, ns string, opts ...client.ListOption) map[string]bool {
	t.Helper()
	list := &unstructured.UnstructuredList{}
	list.SetAPIVersion("v1")
	list.SetKind("ServiceList")
	if err := l.List(context.Background(), list, append(opts, client.InNamespace(ns))...); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, it := range list.Items {
		out[it.GetName()] = true
	}
	return out
}

func TestLister_ServesMeshcdsListsFromInformersAndTheRestFromTheServer(t *testing.T) {
	cluster, c, ns, ctx := setUp(t)

	create := func(name string, labels map[string]string) {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
		}
		if err := c.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
	}
	managed := map[string]string{ambient.LabelManagedBy: ambient.ManagedByValue}
	create("ours", managed)
	create("theirs", nil)

	reqs := &requests{}
	cfg := rest.CopyConfig(cluster.RESTConfig())
	cfg.WrapTransport = reqs.wrap
	direct, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := lister.Start(ctx, cfg, direct)
	if err != nil {
		t.Fatal(err)
	}
	byManaged := client.MatchingLabels(managed)

	// The first list of a kind starts its informer; later ones cost nothing.
	if got := services(t, l, ns, byManaged); !got["ours"] || got["theirs"] {
		t.Fatalf("managed Services: %v, want only ours", got)
	}
	reqs.take()
	for range 3 {
		services(t, l, ns, byManaged)
	}
	if got := reqs.take(); len(got) != 0 {
		t.Fatalf("lists of managed Services reached the API server: %v", got)
	}

	// A Service meshcd labels shows up through the watch.
	create("new", managed)
	deadline := time.Now().Add(5 * time.Second)
	for !services(t, l, ns, byManaged)["new"] {
		if time.Now().After(deadline) {
			t.Fatal("a new managed Service never reached the informer")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Any other selector is the server's to answer, whole.
	if got := services(t, l, ns); !got["ours"] || !got["theirs"] || !got["new"] {
		t.Fatalf("an unselected list must come from the server, got %v", got)
	}
	if got := reqs.take(); len(got) != 1 || !strings.Contains(got[0], "/namespaces/"+ns+"/services") {
		t.Fatalf("want one list request for the unselected list, got %v", got)
	}

	// Gets are never cached: a read of one object is current.
	svc := &unstructured.Unstructured{}
	svc.SetAPIVersion("v1")
	svc.SetKind("Service")
	if err := l.Get(ctx, client.ObjectKey{Namespace: ns, Name: "theirs"}, svc); err != nil {
		t.Fatal(err)
	}
	if got := reqs.take(); len(got) != 1 {
		t.Fatalf("want the Get to reach the server once, got %v", got)
	}
	if len(svc.GetManagedFields()) == 0 {
		t.Errorf("a direct Get keeps managedFields")
	}
}

func TestLister_InformerIsTheOneItsListsComeFrom(t *testing.T) {
	cluster, c, ns, ctx := setUp(t)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: ns, Labels: map[string]string{ambient.LabelManagedBy: ambient.ManagedByValue}},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}
	if err := c.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	watches := 0
	cfg := rest.CopyConfig(cluster.RESTConfig())
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			if strings.Contains(req.URL.RawQuery, "watch=true") && strings.HasSuffix(req.URL.Path, "/services") {
				mu.Lock()
				watches++
				mu.Unlock()
			}
			return rt.RoundTrip(req)
		})
	}
	direct, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := lister.Start(ctx, cfg, direct)
	if err != nil {
		t.Fatal(err)
	}
	byManaged := client.MatchingLabels{ambient.LabelManagedBy: ambient.ManagedByValue}
	if !services(t, l, ns, byManaged)["orders"] {
		t.Fatal("the managed Service is not listed")
	}
	inf, err := l.Informer(ctx, corev1.SchemeGroupVersion.WithKind("Service"))
	if err != nil {
		t.Fatal(err)
	}
	updated := make(chan *unstructured.Unstructured, 8)
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{UpdateFunc: func(_, obj any) {
		if u, ok := obj.(*unstructured.Unstructured); ok && u.GetName() == "orders" {
			updated <- u
		}
	}}); err != nil {
		t.Fatal(err)
	}
	svc.Labels["team"] = "payments"
	if err := c.Update(ctx, svc); err != nil {
		t.Fatal(err)
	}
	var got *unstructured.Unstructured
	select {
	case got = <-updated:
	case <-time.After(10 * time.Second):
		t.Fatal("the informer's handler never saw the update")
	}
	mu.Lock()
	if watches != 1 {
		t.Errorf("%d watches of Services, want 1: the handler must ride the lists' informer", watches)
	}
	mu.Unlock()

	// The cached copy, rebuilt with shared names, holds what the server
	// holds but meshcd's own managedFields.
	server := &unstructured.Unstructured{}
	server.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Service"))
	if err := c.Get(ctx, client.ObjectKeyFromObject(svc), server); err != nil {
		t.Fatal(err)
	}
	// The server may have written the Service again since the event: wait
	// for the cache to hold the version just read.
	for deadline := time.Now().Add(10 * time.Second); got.GetResourceVersion() != server.GetResourceVersion(); {
		if time.Now().After(deadline) {
			t.Fatalf("the cache never reached resourceVersion %s (holds %s)", server.GetResourceVersion(), got.GetResourceVersion())
		}
		time.Sleep(20 * time.Millisecond)
		list := &unstructured.UnstructuredList{}
		list.SetAPIVersion("v1")
		list.SetKind("ServiceList")
		if err := l.List(ctx, list, client.InNamespace(ns), byManaged); err != nil {
			t.Fatal(err)
		}
		for i := range list.Items {
			if list.Items[i].GetName() == "orders" {
				got = &list.Items[i]
			}
		}
	}
	server.SetManagedFields(nil)
	cached := got.DeepCopy()
	cached.SetManagedFields(nil)
	if !equality.Semantic.DeepEqual(cached.Object, server.Object) {
		t.Fatalf("the cached Service differs from the server's:\ncached %v\nserver %v", cached.Object, server.Object)
	}
}

// cachedService lists the managed Service name of ns through l until cond
// holds for it.
func cachedService(t *testing.T, l *lister.Lister, ns, name, want string, cond func(*unstructured.Unstructured) bool) *unstructured.Unstructured {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list := &unstructured.UnstructuredList{}
		list.SetAPIVersion("v1")
		list.SetKind("ServiceList")
		if err := l.List(context.Background(), list, client.InNamespace(ns), client.MatchingLabels{ambient.LabelManagedBy: ambient.ManagedByValue}); err != nil {
			t.Fatal(err)
		}
		for i := range list.Items {
			if it := &list.Items[i]; it.GetName() == name && cond(it) {
				return it
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cache never held Service %s/%s %s: %v", ns, name, want, list.Items)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLister_KeepsAnExpectedObjectSlimOnlyWhileItHoldsIt(t *testing.T) {
	cluster, c, ns, ctx := setUp(t)
	desired, want, stamped := ordersService(t, ns, map[string]any{"team": "payments"})
	l, err := lister.Start(ctx, cluster.RESTConfig(), c)
	if err != nil {
		t.Fatal(err)
	}
	l.Expect([]apply.Desired{want})
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(stamped.DeepCopy()), client.FieldOwner(ambient.FieldManager)); err != nil {
		t.Fatal(err)
	}
	slim := func(u *unstructured.Unstructured) bool { _, body := u.Object["spec"]; return !body }
	got := cachedService(t, l, ns, "orders", "slim", slim)
	if !want.Current(got) {
		t.Fatal("the slim copy of an expected object must be current")
	}

	// Another writer changes a field meshcd set: the cache keeps the body,
	// and the object is not current.
	patch := []byte(`{"metadata":{"labels":{"team":"billing"}}}`)
	target := stamped.DeepCopy()
	if err := c.Patch(ctx, target, client.RawPatch(types.MergePatchType, patch), client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	got = cachedService(t, l, ns, "orders", "whole after the edit", func(u *unstructured.Unstructured) bool { return u.GetResourceVersion() == target.GetResourceVersion() })
	if slim(got) || want.Current(got) {
		t.Fatalf("an edited object must be cached whole and not current: %v", got.Object)
	}

	// An expected object changed after Expect no longer is what its
	// digest names, even where the live object still holds every field it
	// has left: what meshcd applies next is cached whole.
	restored := stamped.DeepCopy()
	delete(desired.Object, "spec")
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(restored), client.FieldOwner(ambient.FieldManager), client.ForceOwnership); err != nil {
		t.Fatal(err)
	}
	got = cachedService(t, l, ns, "orders", "after the re-apply", func(u *unstructured.Unstructured) bool {
		return u.GetResourceVersion() == restored.GetResourceVersion()
	})
	if slim(got) {
		t.Fatal("an object must not be slimmed against an expected object changed since Expect")
	}
}

func TestLister_KeepsOfAWaypointWhatHealthReads(t *testing.T) {
	cluster, c, ns, ctx := setUp(t)
	labels := map[string]any{ambient.LabelGatewayName: "waypoint", "kubernetes.io/service-name": "waypoint"}
	dep := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "waypoint", "namespace": ns, "labels": labels},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app": "waypoint"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "waypoint"}},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "istio-proxy", "image": "istio/proxyv2"}}},
			},
		},
	}}
	slice := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
		"metadata":  map[string]any{"name": "waypoint-abc", "namespace": ns, "labels": labels},
		"endpoints": []any{map[string]any{"addresses": []any{"10.0.0.7"}, "conditions": map[string]any{"ready": true}}},
	}}
	for _, o := range []*unstructured.Unstructured{dep, slice} {
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner("istio.io/gateway-controller")); err != nil {
			t.Fatal(err)
		}
	}
	// A status, which the deployment controller may rewrite but never removes.
	if err := c.Status().Patch(ctx, dep, client.RawPatch(types.MergePatchType, []byte(`{"status":{"observedGeneration":1}}`))); err != nil {
		t.Fatal(err)
	}
	l, err := lister.Start(ctx, cluster.RESTConfig(), c)
	if err != nil {
		t.Fatal(err)
	}
	list := func(kind string) unstructured.Unstructured {
		t.Helper()
		out := &unstructured.UnstructuredList{}
		out.SetAPIVersion(map[string]string{"Deployment": "apps/v1", "EndpointSlice": "discovery.k8s.io/v1"}[kind])
		out.SetKind(kind + "List")
		if err := l.List(ctx, out, client.InNamespace(ns), client.HasLabels{ambient.LabelGatewayName}); err != nil || len(out.Items) != 1 {
			t.Fatalf("list of waypoint %ss: %v, %d items", kind, err, len(out.Items))
		}
		return out.Items[0]
	}
	d := list("Deployment")
	if _, ok := d.Object["spec"]; ok || len(d.GetManagedFields()) != 0 {
		t.Fatalf("a waypoint Deployment is cached without its spec and managedFields: %v", d.Object)
	}
	if d.GetName() != "waypoint" || d.GetLabels()[ambient.LabelGatewayName] != "waypoint" || d.Object["status"] == nil {
		t.Fatalf("a waypoint Deployment keeps its metadata and status: %v", d.Object)
	}
	s := list("EndpointSlice")
	if eps, _, _ := unstructured.NestedSlice(s.Object, "endpoints"); len(eps) != 1 || len(s.GetManagedFields()) != 0 {
		t.Fatalf("a waypoint EndpointSlice keeps its endpoints, not its managedFields: %v", s.Object)
	}
}

// A meshcd that starts on objects it applied before, which istiod has
// written status on since, caches them slim with that status: the health
// read-back judges them from it. The informer's first list transforms each
// object twice (client-go's reflector streams it into a store of its own,
// then replaces the queue's contents), so slimming must be idempotent.
func TestLister_AnObjectListedSlimKeepsItsStatus(t *testing.T) {
	cluster, c, ns, ctx := setUp(t)
	_, want, stamped := ordersService(t, ns, nil)
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(stamped.DeepCopy()), client.FieldOwner(ambient.FieldManager)); err != nil {
		t.Fatal(err)
	}
	bound := []byte(`{"status":{"conditions":[{"type":"istio.io/WaypointBound","status":"True","reason":"Bound","message":"bound to waypoint","lastTransitionTime":"2026-12-07T00:00:00Z"}]}}`)
	if err := c.Status().Patch(ctx, stamped.DeepCopy(), client.RawPatch(types.MergePatchType, bound), client.FieldOwner("pilot-discovery")); err != nil {
		t.Fatal(err)
	}

	l, err := lister.Start(ctx, cluster.RESTConfig(), c)
	if err != nil {
		t.Fatal(err)
	}
	l.Expect([]apply.Desired{want})
	got := cachedService(t, l, ns, "orders", "slim", func(u *unstructured.Unstructured) bool { _, body := u.Object["spec"]; return !body })
	conds, _, _ := unstructured.NestedSlice(apply.Status(got), "conditions")
	if len(conds) != 1 || conds[0].(map[string]any)["type"] != "istio.io/WaypointBound" {
		t.Fatalf("a slim copy listed at start lost its status: %v", got.Object)
	}
}
