package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/reconciler/inventory"
)

// Prune removes the stale entries: labels first (partially owned objects
// lose meshcd's labels, so traffic leaves a waypoint before it goes), then
// whole objects, Gateways last. A Gateway that a Namespace or Service still
// names as its waypoint waits, since deleting it would let that traffic
// skip the waypoint's policies. It returns the entries that must stay in
// the inventory: those whose removal failed or waits.
//
// An object that no longer carries meshcd's label is no longer meshcd's:
// a whole object is left in place and reported, a partial one still loses
// the labels meshcd wrote (nothing else is meshcd's to remove), and either
// entry goes.
//
// Every stale object is read before any is removed, through the version
// its entry was applied with or, when that version is no longer served,
// another its kind is served at. When one cannot be read, because its kind
// is no longer served at all (a CRD's group is gone, an aggregated API is
// unavailable) or the read fails, nothing is pruned: API discovery that is
// partial now hides what it cannot see, and the next reconcile retries
// with the same inventory.
//
// Each removal is bound to the read that judged it: a delete carries the
// object's UID and resourceVersion as preconditions, and a label removal
// its resourceVersion. An object changed or replaced since (deleted and
// created again by another tool) is read and judged once more, so meshcd
// never removes an object it did not judge; one that changes again stays
// in the inventory for the next reconcile.
func (m *Manager) Prune(ctx context.Context, stale []inventory.Entry) (*ChangeSet, []inventory.Entry, error) {
	cs := &ChangeSet{}
	ordered := append([]inventory.Entry(nil), stale...)
	sort.SliceStable(ordered, func(i, j int) bool { return pruneRank(ordered[i]) < pruneRank(ordered[j]) })
	lives := make([]*unstructured.Unstructured, len(ordered))
	var errs []error
	for i, e := range ordered {
		live, err := m.read(ctx, e)
		if err != nil {
			errs = append(errs, err)
		}
		lives[i] = live
	}
	if len(errs) > 0 {
		return cs, stale, fmt.Errorf("nothing pruned, %d stale objects could not be read: %w", len(errs), errors.Join(errs...))
	}
	var kept []inventory.Entry
	cl := m.newClaims()
	for i, e := range ordered {
		c, err := m.pruneOne(ctx, cl, e, lives[i])
		if err != nil {
			kept = append(kept, e)
			errs = append(errs, err)
			continue
		}
		if c.Action == Waiting {
			kept = append(kept, e)
		}
		cs.add(c)
	}
	return cs, kept, errors.Join(errs...)
}

// errChanged is a removal refused because the object changed since the
// read that judged it.
var errChanged = errors.New("changed since it was read")

// pruneOne judges and removes one stale object, reading and judging it
// once more each time it changed since it was read. istiod writes the
// status of routes, policies and Gateways, so an object can change while
// meshcd prunes it without being anyone else's: up to judgeAttempts
// judgements, then it stays in the inventory for the next reconcile.
func (m *Manager) pruneOne(ctx context.Context, cl *claims, e inventory.Entry, live *unstructured.Unstructured) (Change, error) {
	c, err := m.remove(ctx, cl, e, live)
	for attempt := 1; errors.Is(err, errChanged); attempt++ {
		if attempt == judgeAttempts {
			return c, fmt.Errorf("%s changed %d times while meshcd pruned it; it stays in the inventory and is judged again on the next reconcile: %w", e, attempt, err)
		}
		if live, err = m.read(ctx, e); err != nil {
			return c, err
		}
		c, err = m.remove(ctx, cl, e, live)
	}
	return c, err
}

// judgeAttempts bounds how often prune judges one object that keeps
// changing under it.
const judgeAttempts = 5

// read gets the live object of a stale entry; nil when it is already gone.
// A version the API server no longer serves is read through another
// version of the kind; a kind it does not serve at all is an error, never
// "gone".
func (m *Manager) read(ctx context.Context, e inventory.Entry) (*unstructured.Unstructured, error) {
	stub, err := e.Object()
	if err != nil {
		return nil, err
	}
	gvk := stub.GroupVersionKind()
	live, err := m.get(ctx, gvk, client.ObjectKeyFromObject(stub))
	if !unserved(err) {
		return live, err
	}
	tried := []string{gvk.Version}
	mappings, merr := m.client.RESTMapper().RESTMappings(gvk.GroupKind())
	if merr != nil && !meta.IsNoMatchError(merr) {
		return nil, fmt.Errorf("%s read before prune failed: the API server does not serve version %s of its kind and its other versions could not be discovered: %w", e, gvk.Version, merr)
	}
	for _, mp := range mappings {
		if slices.Contains(tried, mp.GroupVersionKind.Version) {
			continue
		}
		tried = append(tried, mp.GroupVersionKind.Version)
		live, err = m.get(ctx, mp.GroupVersionKind, client.ObjectKeyFromObject(stub))
		if !unserved(err) {
			return live, err
		}
	}
	return nil, fmt.Errorf("%s: the API server does not serve its kind %s at any version (tried %s; a removed CRD or an unavailable aggregated API); restore the API and prune goes on: %w",
		e, gvk.GroupKind(), strings.Join(tried, ", "), err)
}

// get reads one object through gvk; nil, nil when it does not exist.
func (m *Manager) get(ctx context.Context, gvk schema.GroupVersionKind, key client.ObjectKey) (*unstructured.Unstructured, error) {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(gvk)
	err := m.client.Get(ctx, key, live)
	switch {
	case err == nil:
		return live, nil
	case unserved(err):
		return nil, err
	case apierrors.IsNotFound(err):
		return nil, nil
	}
	return nil, fmt.Errorf("%s %s read before prune failed: %w", gvk.Kind, key, err)
}

// unserved reports an error saying the API server does not serve the
// kind, or the version of it, asked for.
func unserved(err error) bool {
	return err != nil && (meta.IsNoMatchError(err) || unservedKind(err))
}

// unservedKind tells a 404 for a resource path the API server does not
// serve from a 404 for an object that does not exist: the first is not a
// Status from the server but its plain "404 page not found".
func unservedKind(err error) bool {
	var status apierrors.APIStatus
	if !apierrors.IsNotFound(err) || !errors.As(err, &status) {
		return false
	}
	if d := status.Status().Details; d != nil {
		for _, c := range d.Causes {
			if c.Type == metav1.CauseTypeUnexpectedServerResponse {
				return true
			}
		}
	}
	return false
}

// pruneRank orders removal: labels, then objects, then waypoint Gateways.
func pruneRank(e inventory.Entry) int {
	switch {
	case e.Partial:
		return 0
	case isGatewayID(e.ID):
		return 2
	}
	return 1
}

func isGatewayID(id string) bool {
	obj, err := inventory.Entry{ID: id, Version: "v1"}.Object()
	return err == nil && obj.GroupVersionKind().GroupKind() == ambient.GatewayGK
}

// remove judges one stale object, as live shows it, and removes it or
// meshcd's labels from it. It returns errChanged when the object changed
// since live was read.
func (m *Manager) remove(ctx context.Context, cl *claims, e inventory.Entry, live *unstructured.Unstructured) (Change, error) {
	c := Change{Object: e.String()}
	if live == nil {
		c.Action, c.Reason = Pruned, "already gone"
		return c, nil
	}
	released, err := m.releasedTo(ctx, cl, e.ID, live)
	if err != nil {
		return c, err
	}
	if released != "" {
		c.Action, c.Reason = Skipped, released
		return c, nil
	}
	labelled := live.GetLabels()[ambient.LabelManagedBy] == ambient.ManagedByValue
	if e.Partial {
		return m.release(ctx, c, live, labelled)
	}
	if !labelled {
		c.Action = Skipped
		c.Reason = fmt.Sprintf("another tool removed meshcd's label %s, or replaced the object: it is left in place and is no longer meshcd's; delete it by hand if it should go", ambient.LabelManagedBy)
		return c, nil
	}
	if live.GroupVersionKind().GroupKind() == ambient.GatewayGK {
		names, err := m.namedBy(ctx, live.GetNamespace(), live.GetName())
		if err != nil {
			return c, err
		}
		if len(names) > 0 {
			c.Action = Waiting
			c.Reason = fmt.Sprintf("%s still name it as their waypoint; it is deleted once their labels move off, so their traffic never skips a waypoint", strings.Join(names, ", "))
			return c, nil
		}
	}
	m.beforeWrite(live)
	uid, rv := live.GetUID(), live.GetResourceVersion()
	err = m.client.Delete(ctx, live, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &uid, ResourceVersion: &rv})
	switch {
	case apierrors.IsConflict(err):
		return c, fmt.Errorf("%s delete refused: %w: %w", c.Object, errChanged, err)
	case err != nil && !apierrors.IsNotFound(err):
		return c, fmt.Errorf("%s delete failed: %w", c.Object, err)
	}
	c.Action = Pruned
	return c, nil
}

// release removes meshcd's fields from a partially owned object: applying
// nothing as meshcd releases every field meshcd owned, its labels and
// annotations go, the object and every other manager's fields stay. On an
// object meshcd owns no field of (one created again by another tool) there
// is nothing to release and nothing is written. Server-side apply only
// ever removes fields meshcd owns, so even a replacement could lose none of
// its own labels; still the apply carries live's resourceVersion and UID,
// so that an object changed after the read is judged again rather than
// written to, and one deleted since is never created again (an apply would
// create it).
func (m *Manager) release(ctx context.Context, c Change, live *unstructured.Unstructured, labelled bool) (Change, error) {
	if !ownsFields(live) {
		c.Action, c.Reason = Skipped, "meshcd owns none of its labels any more; nothing to remove"
		return c, nil
	}
	bare := &unstructured.Unstructured{}
	bare.SetGroupVersionKind(live.GroupVersionKind())
	bare.SetNamespace(live.GetNamespace())
	bare.SetName(live.GetName())
	bare.SetUID(live.GetUID())
	bare.SetResourceVersion(live.GetResourceVersion())
	m.beforeWrite(live)
	err := m.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(bare), client.FieldOwner(ambient.FieldManager), client.ForceOwnership)
	switch {
	case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
		return c, fmt.Errorf("%s label removal refused: %w: %w", c.Object, errChanged, err)
	case err != nil:
		return c, fmt.Errorf("%s label removal failed: %w", c.Object, err)
	}
	c.Action, c.Reason = Pruned, "meshcd's labels removed; the object stays"
	if !labelled {
		c.Reason = fmt.Sprintf("another tool removed meshcd's label %s; meshcd's other labels removed, the object stays", ambient.LabelManagedBy)
	}
	return c, nil
}

// beforeWrite runs the test hook, if any, between the read that judged
// live and the write that removes it.
func (m *Manager) beforeWrite(live *unstructured.Unstructured) {
	if m.beforeRemove != nil {
		m.beforeRemove(live)
	}
}

// ownsFields reports whether meshcd's apply owns any field of live.
func ownsFields(live *unstructured.Unstructured) bool {
	for _, mf := range live.GetManagedFields() {
		if mf.Manager == ambient.FieldManager && mf.Operation == metav1.ManagedFieldsOperationApply && mf.Subresource == "" {
			return true
		}
	}
	return false
}
