package apply

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/reconciler/inventory"
)

// Prune removes the stale entries: labels first (partially owned objects
// lose meshcd's labels, so traffic leaves a waypoint before it goes), then
// whole objects, Gateways last. A Gateway that a Namespace or Service still
// names as its waypoint waits, since deleting it would let that traffic
// skip the waypoint's policies. An object that no longer carries meshcd's
// label is left alone. It returns the entries that must stay in the
// inventory: those whose removal failed or waits.
//
// Every stale object is read before any is removed. When one cannot be
// read, because its kind is no longer served (a CRD's group is gone, an
// aggregated API is unavailable) or the read fails, nothing is pruned: API
// discovery that is partial now hides what it cannot see, and the next
// reconcile retries with the same inventory.
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

// read gets the live object of a stale entry; nil when it is already gone.
// A kind the API server does not serve is an error, never "gone".
func (m *Manager) read(ctx context.Context, e inventory.Entry) (*unstructured.Unstructured, error) {
	stub, err := e.Object()
	if err != nil {
		return nil, err
	}
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(stub.GroupVersionKind())
	err = m.client.Get(ctx, client.ObjectKeyFromObject(stub), live)
	switch {
	case err == nil:
		return live, nil
	case meta.IsNoMatchError(err) || unservedKind(err):
		return nil, fmt.Errorf("%s: the API server does not serve its kind %s (a removed CRD or an unavailable aggregated API); restore the API and prune goes on: %w",
			e, stub.GroupVersionKind().GroupVersion().WithKind(stub.GetKind()), err)
	case apierrors.IsNotFound(err):
		return nil, nil
	}
	return nil, fmt.Errorf("%s read before prune failed: %w", e, err)
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

func (m *Manager) pruneOne(ctx context.Context, cl *claims, e inventory.Entry, live *unstructured.Unstructured) (Change, error) {
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
	if live.GetLabels()[ambient.LabelManagedBy] != ambient.ManagedByValue {
		c.Action, c.Reason = Skipped, "no longer carries meshcd's label "+ambient.LabelManagedBy+"; left alone"
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
	if e.Partial {
		// Applying nothing as meshcd releases every field meshcd owned:
		// its labels and annotations go, the object stays.
		bare := &unstructured.Unstructured{}
		bare.SetGroupVersionKind(live.GroupVersionKind())
		bare.SetNamespace(live.GetNamespace())
		bare.SetName(live.GetName())
		if err := m.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(bare), client.FieldOwner(ambient.FieldManager), client.ForceOwnership); err != nil {
			return c, fmt.Errorf("%s label removal failed: %w", c.Object, err)
		}
		c.Action, c.Reason = Pruned, "meshcd's labels removed; the object stays"
		return c, nil
	}
	if err := m.client.Delete(ctx, live, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
		return c, fmt.Errorf("%s delete failed: %w", c.Object, err)
	}
	c.Action = Pruned
	return c, nil
}
