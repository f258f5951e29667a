package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler/inventory"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// readyWaypoints says every waypoint is ready: these tests prune, they do
// not enroll.
type readyWaypoints struct{}

func (readyWaypoints) WaypointReady(context.Context, string, string) (bool, string, error) {
	return true, "", nil
}

// pruneEnv is a Manager on the package's cluster and a namespace.
type pruneEnv struct {
	t  *testing.T
	ns string
	c  client.Client
	m  *Manager
}

func newPruneEnv(t *testing.T) *pruneEnv {
	t.Helper()
	c := clustertest.Client(t)
	return &pruneEnv{t: t, ns: clustertest.Namespace(t, nil), c: c, m: New(c, readyWaypoints{}, DefaultOptions())}
}

// parse reads a JSON object, with NS standing for the test's namespace.
func (e *pruneEnv) parse(doc string) *unstructured.Unstructured {
	e.t.Helper()
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON([]byte(strings.ReplaceAll(doc, "NS", e.ns))); err != nil {
		e.t.Fatal(err)
	}
	return u
}

// apply applies objs with meshcd's Manager and returns their inventory.
func (e *pruneEnv) apply(objs ...*unstructured.Unstructured) []inventory.Entry {
	e.t.Helper()
	if _, err := e.m.Apply(context.Background(), objs); err != nil {
		e.t.Fatal(err)
	}
	inv, err := inventory.New(objs)
	if err != nil {
		e.t.Fatal(err)
	}
	return inv.Entries
}

// create creates obj as another tool would, under its own field manager.
func (e *pruneEnv) create(obj *unstructured.Unstructured, manager string) {
	e.t.Helper()
	if err := e.c.Create(context.Background(), obj, client.FieldOwner(manager)); err != nil {
		e.t.Fatal(err)
	}
}

func (e *pruneEnv) get(obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(obj.GroupVersionKind())
	return live, e.c.Get(context.Background(), client.ObjectKeyFromObject(obj), live)
}

// replace deletes live and creates, under the field manager "other-tool",
// a new object of the same name from doc: what another tool does between
// prune's read and its write.
func (e *pruneEnv) replace(live *unstructured.Unstructured, doc string) {
	e.t.Helper()
	ctx := context.Background()
	if err := e.c.Delete(ctx, live); err != nil {
		e.t.Errorf("replace: delete: %v", err)
		return
	}
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := e.get(live)
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		e.t.Errorf("replace: %s not gone: %v", live.GetName(), err)
		return
	}
	e.create(e.parse(doc), "other-tool")
}

func changeOf(cs *ChangeSet, object string) Change {
	for _, c := range cs.Changes {
		if c.Object == object {
			return c
		}
	}
	return Change{}
}

const (
	settingsDoc = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":"NS","labels":{"app.kubernetes.io/managed-by":"meshcd"}},"data":{"mode":"meshcd"}}`
	// The same name, created again by another tool without meshcd's label.
	settingsTheirs = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":"NS"},"data":{"mode":"theirs"}}`
	appServiceDoc  = `{"apiVersion":"v1","kind":"Service","metadata":{"name":"orders","namespace":"NS"},"spec":{"selector":{"app":"orders"},"ports":[{"name":"http","port":8080}]}}`
	// meshcd's labels on the application's Service: a partial object.
	appServiceLabels = `{"apiVersion":"v1","kind":"Service","metadata":{"name":"orders","namespace":"NS","annotations":{"meshcd.dev/ownership":"partial"},
		"labels":{"app.kubernetes.io/managed-by":"meshcd","istio.io/use-waypoint":"waypoint"}}}`
	appServiceTheirs = `{"apiVersion":"v1","kind":"Service","metadata":{"name":"orders","namespace":"NS","labels":{"istio.io/use-waypoint":"theirs"}},"spec":{"selector":{"app":"orders"},"ports":[{"name":"http","port":8080}]}}`
)

// Another tool deletes the stale object and creates one of the same name
// without meshcd's label between prune's read and its write: the new
// object is judged again, and nothing of it is removed.
func TestPrune_AnObjectReplacedBetweenReadAndWriteSurvives(t *testing.T) {
	for _, tc := range []struct {
		name, app, meshcd, theirs, object string
		// untouched reports whether now, the new object, is as the other tool made it.
		untouched func(now *unstructured.Unstructured) bool
	}{
		{
			name: "a whole object is not deleted", meshcd: settingsDoc, theirs: settingsTheirs, object: "ConfigMap NS/settings",
			untouched: func(now *unstructured.Unstructured) bool {
				return now.Object["data"].(map[string]any)["mode"] == "theirs"
			},
		},
		{
			name: "a partial object keeps its labels", app: appServiceDoc, meshcd: appServiceLabels, theirs: appServiceTheirs, object: "Service NS/orders",
			untouched: func(now *unstructured.Unstructured) bool {
				for _, mf := range now.GetManagedFields() {
					if mf.Manager == ambient.FieldManager {
						return false
					}
				}
				return now.GetLabels()[ambient.LabelUseWaypoint] == "theirs"
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newPruneEnv(t)
			if tc.app != "" {
				e.create(e.parse(tc.app), "kubectl-create")
			}
			stale := e.apply(e.parse(tc.meshcd))
			obj := e.parse(tc.theirs)
			old, err := e.get(obj)
			if err != nil {
				t.Fatal(err)
			}
			hooked := 0
			e.m.beforeRemove = func(live *unstructured.Unstructured) {
				if hooked++; hooked == 1 {
					e.replace(live, tc.theirs)
				}
			}
			cs, kept, err := e.m.Prune(context.Background(), stale)
			if err != nil || len(kept) != 0 {
				t.Fatalf("prune: %v, kept %v", err, kept)
			}
			if hooked != 1 {
				t.Fatalf("the hook between read and write ran %d times, want 1", hooked)
			}
			now, err := e.get(obj)
			if err != nil {
				t.Fatalf("the object another tool created again was deleted: %v", err)
			}
			if now.GetUID() == old.GetUID() || !tc.untouched(now) {
				t.Fatalf("the new object (uid %s, old %s) was changed: %v", now.GetUID(), old.GetUID(), now.Object)
			}
			c := changeOf(cs, strings.ReplaceAll(tc.object, "NS", e.ns))
			if c.Action != Skipped {
				t.Fatalf("the new object is judged again and left alone: %+v", c)
			}
			t.Logf("%s %s: %s", c.Object, c.Action, c.Reason)
		})
	}
}

// unlabel removes meshcd's managed-by label the way `kubectl label KEY-`
// does.
func (e *pruneEnv) unlabel(obj *unstructured.Unstructured) {
	e.t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:null}}}`, ambient.LabelManagedBy)
	if err := e.c.Patch(context.Background(), obj, client.RawPatch(types.MergePatchType, []byte(patch)), client.FieldOwner("kubectl-label")); err != nil {
		e.t.Fatal(err)
	}
}

func TestPrune_ObjectsThatLostMeshcdsLabel(t *testing.T) {
	e := newPruneEnv(t)
	e.create(e.parse(appServiceDoc), "kubectl-create")
	settings, labels := e.parse(settingsDoc), e.parse(appServiceLabels)
	stale := e.apply(settings, labels)
	e.unlabel(e.parse(appServiceDoc))
	e.unlabel(settings)

	cs, kept, err := e.m.Prune(context.Background(), stale)
	if err != nil || len(kept) != 0 {
		t.Fatalf("prune: %v, kept %v: both entries go", err, kept)
	}
	t.Logf("pruned:\n%s", cs)

	// The partial Service loses the labels meshcd wrote, and stays.
	svc, err := e.get(e.parse(appServiceDoc))
	if err != nil {
		t.Fatalf("the application's Service must stay: %v", err)
	}
	if v, ok := svc.GetLabels()[ambient.LabelUseWaypoint]; ok {
		t.Fatalf("meshcd's %s=%s is left behind on the Service", ambient.LabelUseWaypoint, v)
	}
	c := changeOf(cs, "Service "+e.ns+"/orders")
	if c.Action != Pruned || !strings.Contains(c.Reason, "another tool removed meshcd's label") || !strings.Contains(c.Reason, "meshcd's other labels removed") {
		t.Fatalf("the Service's change says what happened: %+v", c)
	}

	// The whole object is left in place, and reported. Who removed the
	// label managedFields cannot say: a removed field has no owner.
	if _, err := e.get(settings); err != nil {
		t.Fatalf("an object no longer meshcd's is never deleted: %v", err)
	}
	c = changeOf(cs, "ConfigMap "+e.ns+"/settings")
	if c.Action != Skipped || !strings.Contains(c.Reason, "another tool removed meshcd's label "+ambient.LabelManagedBy) || !strings.Contains(c.Reason, "no longer meshcd's") {
		t.Fatalf("the ConfigMap's change says another tool removed the label: %+v", c)
	}
}

// crd is a Widget kind in a group of the test's own, served at v1alpha1
// and v1 (v1 stored).
func (e *pruneEnv) crd() *unstructured.Unstructured {
	group := e.ns + ".example.com"
	return e.parse(`{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"widgets.` + group + `"},
		"spec":{"group":"` + group + `","scope":"Namespaced","names":{"plural":"widgets","singular":"widget","kind":"Widget","listKind":"WidgetList"},
		"versions":[
			{"name":"v1alpha1","served":true,"storage":false,"schema":{"openAPIV3Schema":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}},
			{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}]}}`)
}

// served waits until the API server serves (or, with want false, no
// longer serves) widgets at version.
func (e *pruneEnv) served(c client.Client, version string, want bool) {
	e.t.Helper()
	u := &unstructured.UnstructuredList{}
	u.SetAPIVersion(e.ns + ".example.com/" + version)
	u.SetKind("WidgetList")
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		err := c.List(ctx, u, client.InNamespace(e.ns))
		return (err == nil) == want, nil
	})
	if err != nil {
		e.t.Fatalf("widgets %s served=%v not reached: %v", version, want, err)
	}
}

func TestPrune_AnEntryAtAVersionNoLongerServedIsDeletedThroughAServedOne(t *testing.T) {
	e := newPruneEnv(t)
	crd := e.crd()
	e.create(crd, "test")
	t.Cleanup(func() { _ = e.c.Delete(context.Background(), crd) })
	e.served(e.c, "v1alpha1", true)
	e.served(e.c, "v1", true)

	// A Manager whose client already knows both versions, as a running
	// controller's does.
	c := clustertest.Client(t)
	e.m = New(c, readyWaypoints{}, DefaultOptions())
	widget := e.parse(`{"apiVersion":"NS.example.com/v1alpha1","kind":"Widget","metadata":{"name":"w","namespace":"NS","labels":{"app.kubernetes.io/managed-by":"meshcd"}},"spec":{"size":1}}`)
	other := e.parse(`{"apiVersion":"NS.example.com/v1alpha1","kind":"Widget","metadata":{"name":"kept","namespace":"NS","labels":{"app.kubernetes.io/managed-by":"meshcd"}},"spec":{"size":2}}`)
	wEntry, otherEntry := e.apply(widget)[0], e.apply(other)[0]
	if wEntry.Version != "v1alpha1" {
		t.Fatalf("the entry was stored at %s", wEntry.Version)
	}

	// v1alpha1 stops being served.
	live, err := e.get(crd)
	if err != nil {
		t.Fatal(err)
	}
	versions, _, _ := unstructured.NestedSlice(live.Object, "spec", "versions")
	versions[0].(map[string]any)["served"] = false
	if err := unstructured.SetNestedSlice(live.Object, versions, "spec", "versions"); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Update(context.Background(), live); err != nil {
		t.Fatal(err)
	}
	e.served(e.c, "v1alpha1", false)

	cs, kept, err := e.m.Prune(context.Background(), []inventory.Entry{wEntry})
	if err != nil || len(kept) != 0 {
		t.Fatalf("prune through v1: %v, kept %v", err, kept)
	}
	if c := changeOf(cs, "Widget "+e.ns+"/w"); c.Action != Pruned {
		t.Fatalf("change %+v", cs.Changes)
	}
	gone := widget.DeepCopy()
	gone.SetAPIVersion(e.ns + ".example.com/v1")
	if _, err := e.get(gone); !apierrors.IsNotFound(err) {
		t.Fatalf("the widget must be deleted: %v", err)
	}

	// The kind itself no longer served: prune holds, as before.
	if err := e.c.Delete(context.Background(), crd); err != nil {
		t.Fatal(err)
	}
	e.served(e.c, "v1", false)
	_, kept, err = e.m.Prune(context.Background(), []inventory.Entry{otherEntry})
	if err == nil || !strings.Contains(err.Error(), "does not serve its kind") || len(kept) != 1 {
		t.Fatalf("an unserved kind holds the prune: %v, kept %v", err, kept)
	}
	t.Logf("held: %v", err)
}

// The label removal carries the resourceVersion it was judged at: the
// API server refuses it once the object changed, and never creates again
// an object that is gone (a bare ConfigMap would be valid).
func TestRelease_RefusedOnceTheObjectChangedOrWent(t *testing.T) {
	e := newPruneEnv(t)
	e.create(e.parse(settingsTheirs), "kubectl-create")
	e.apply(e.parse(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":"NS","annotations":{"meshcd.dev/ownership":"partial"},"labels":{"app.kubernetes.io/managed-by":"meshcd"}}}`))
	cm := e.parse(settingsTheirs)
	live, err := e.get(cm)
	if err != nil {
		t.Fatal(err)
	}
	if !ownsFields(live) {
		t.Fatalf("meshcd's labels were not applied: %v", live.GetManagedFields())
	}
	patch := `{"metadata":{"annotations":{"touched":"yes"}}}`
	if err := e.c.Patch(context.Background(), live.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(patch)), client.FieldOwner("kubectl-annotate")); err != nil {
		t.Fatal(err)
	}
	_, err = e.m.release(context.Background(), Change{Object: "ConfigMap"}, live, true)
	t.Logf("release of a changed ConfigMap: %v", err)
	if !errors.Is(err, errChanged) {
		t.Fatalf("a changed object: want %v, got %v", errChanged, err)
	}
	if err := e.c.Delete(context.Background(), live.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	_, err = e.m.release(context.Background(), Change{Object: "ConfigMap"}, live, true)
	t.Logf("release of a deleted ConfigMap: %v", err)
	if !errors.Is(err, errChanged) {
		t.Fatalf("a gone object: want %v, got %v", errChanged, err)
	}
	if _, err := e.get(cm); !apierrors.IsNotFound(err) {
		t.Fatalf("the label removal created the ConfigMap again: %v", err)
	}
}
