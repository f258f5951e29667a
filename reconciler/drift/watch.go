package drift

import (
	"context"
	"fmt"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/meshspec"
	"github.com/meshcd/meshcd/reconciler/apply"
	"github.com/meshcd/meshcd/reconciler/foreign"
)

// Informers are the informers of the objects meshcd owns, selected by its
// managed-by label: package lister's, which the reconciles list from, so
// that a watch holds no second copy of them.
type Informers interface {
	Informer(ctx context.Context, gvk schema.GroupVersionKind) (crcache.Informer, error)
}

// Watcher watches the objects meshcd owns and reports those that drift.
type Watcher struct {
	// Client judges drift with server-side dry-runs.
	Client client.Client
	// Informers tell the watch of every change.
	Informers Informers
	// Synced, when set, is called once the informers have listed every
	// kind: from then on a change is noticed as it happens.
	Synced func()
}

// Event is a drifted object noticed by a watch.
type Event struct {
	Drift Object
	// Desired is the desired object, to correct it with.
	Desired apply.Desired
	// At is when the change was seen.
	At time.Time
}

// selfInflicted reports a difference made by meshcd's own writes alone,
// such as an apply of a newer revision than the watch knows.
func selfInflicted(o *Object) bool {
	if o.Missing || len(o.Fields) == 0 {
		return false
	}
	for _, f := range o.Fields {
		if f.Manager != ambient.FieldManager {
			return false
		}
	}
	return true
}

// addedTo reports whether another manager added fields to live, or its
// managedFields cannot be read (then the dry-run judges).
func addedTo(desired, live *unstructured.Unstructured) bool {
	added, err := foreign.Added(desired, live)
	return err != nil || len(added) > 0
}

// Watch informs on every kind of desired, filtered by meshcd's label, and
// calls onDrift for each object whose live copy stops matching desired. It
// blocks until ctx ends. onDrift runs on one goroutine, in the order
// changes are seen.
func (w *Watcher) Watch(ctx context.Context, desired []apply.Desired, onDrift func(Event)) error {
	want := make(map[object.ObjMetadata]apply.Desired, len(desired))
	gvks := map[schema.GroupVersionKind]bool{}
	for _, d := range desired {
		o := d.Object
		want[object.ObjMetadata{Namespace: o.GetNamespace(), Name: o.GetName(), GroupKind: o.GroupVersionKind().GroupKind()}] = d
		gvks[o.GroupVersionKind()] = true
	}
	// A delete may also mean the object left meshcd's label selector; its
	// event can carry the last state that matched, so it is always judged.
	type change struct {
		obj     *unstructured.Unstructured
		deleted bool
	}
	changes := make(chan change, 1024)
	send := func(obj any, deleted bool) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if u, ok := obj.(*unstructured.Unstructured); ok {
			select {
			case changes <- change{u, deleted}:
			case <-ctx.Done():
			}
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { send(obj, false) },
		DeleteFunc: func(obj any) { send(obj, true) },
	}
	var synced []cache.InformerSynced
	for gvk := range gvks {
		inf, err := w.Informers.Informer(ctx, gvk)
		if err != nil {
			return fmt.Errorf("watch %s: %w", gvk.Kind, err)
		}
		reg, err := inf.AddEventHandler(handler)
		if err != nil {
			return fmt.Errorf("watch %s: %w", gvk.Kind, err)
		}
		defer func() { _ = inf.RemoveEventHandler(reg) }()
		synced = append(synced, reg.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return ctx.Err()
	}
	if w.Synced != nil {
		w.Synced()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ch := <-changes:
			at, live := time.Now(), ch.obj
			d, ok := want[object.ObjMetadata{Namespace: live.GetNamespace(), Name: live.GetName(), GroupKind: live.GroupVersionKind().GroupKind()}]
			if !ok || (!ch.deleted && live.GetDeletionTimestamp() == nil && d.Current(live) && !addedTo(d.Object, live)) {
				continue
			}
			drifted, err := Judge(ctx, w.Client, d)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				drifted = &Object{Object: meshspec.RefOf(d.Object).String(), Fields: []Field{{Path: "/", Manager: "unknown: " + err.Error()}}}
			}
			if drifted != nil && !selfInflicted(drifted) {
				onDrift(Event{Drift: *drifted, Desired: d, At: at})
			}
		}
	}
}
