package reconciler

import (
	"context"
	"fmt"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"

	"github.com/meshcd/meshcd/reconciler/apply"
	"github.com/meshcd/meshcd/reconciler/drift"
	"github.com/meshcd/meshcd/reconciler/health"
	"github.com/meshcd/meshcd/reconciler/inventory"
	"github.com/meshcd/meshcd/reconciler/proof"
)

// Desired renders dir, adds what the rollouts have reached, and returns
// every object with the digest an apply stamps it with.
func (r *Reconciler) Desired(ctx context.Context, dir string) ([]apply.Desired, error) {
	bundle, err := r.rendered.Render(dir, r.opts.Render)
	if err != nil {
		return nil, fmt.Errorf("render failed: %w", err)
	}
	if err := r.admit(bundle, &Result{}); err != nil {
		return nil, err
	}
	objs, err := r.overlay(ctx, bundle.Objects)
	if err != nil {
		return nil, err
	}
	return r.apply.Desired(objs)
}

// Diff is what an apply of a directory would change.
type Diff struct {
	// Changed lists the objects that would be created or changed, with their
	// field-level differences from the live state.
	Changed []drift.Object `json:"changed"`
	// Stale lists the objects the inventory owns that the render no longer
	// has: an apply would prune them.
	Stale []string `json:"stale"`
	// Order says which waypoint labels would wait for their waypoint, and
	// which waypoints would be deleted only after the labels move off.
	Order []string `json:"order,omitempty"`
}

// HasChanges reports whether an apply would write anything.
func (d *Diff) HasChanges() bool { return len(d.Changed) > 0 || len(d.Stale) > 0 }

// Diff compares the render of dir with the cluster using server-side
// dry-runs, and the inventory with the render.
func (r *Reconciler) Diff(ctx context.Context, dir string) (*Diff, error) {
	desired, err := r.Desired(ctx, dir)
	if err != nil {
		return nil, err
	}
	out := &Diff{Changed: []drift.Object{}, Stale: []string{}}
	rep, err := r.judge(ctx, desired)
	if err != nil {
		return nil, err
	}
	out.Changed = rep.Objects
	old, err := r.store.Load(ctx)
	if err != nil {
		return nil, err
	}
	next, err := inventory.New(apply.Objects(desired))
	if err != nil {
		return nil, err
	}
	stale := old.Stale(next)
	for _, e := range stale {
		out.Stale = append(out.Stale, e.String())
	}
	if out.Order, err = r.order(ctx, apply.Objects(desired), stale); err != nil {
		return nil, err
	}
	return out, nil
}

// order is apply.Sequence from the live labels of the partial objects
// involved (desired or stale) and the stale Gateways to desired.
func (r *Reconciler) order(ctx context.Context, desired []*unstructured.Unstructured, stale []inventory.Entry) ([]string, error) {
	var before, involved []*unstructured.Unstructured
	for _, o := range desired {
		if o.GetAnnotations()[ambient.AnnotationOwnership] == ambient.OwnershipPartial {
			involved = append(involved, o)
		}
	}
	for _, e := range stale {
		o, err := e.Object()
		if err != nil {
			return nil, err
		}
		switch {
		case e.Partial:
			involved = append(involved, o)
		case o.GroupVersionKind().GroupKind() == ambient.GatewayGK:
			before = append(before, o)
		}
	}
	for _, o := range involved {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		err := r.client.Get(ctx, client.ObjectKeyFromObject(o), live)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s %s read failed: %w", o.GetKind(), client.ObjectKeyFromObject(o), err)
		}
		before = append(before, live)
	}
	return apply.Sequence(before, desired), nil
}

// Drift reports, once, every object of dir whose live state differs from it.
func (r *Reconciler) Drift(ctx context.Context, dir string) (*drift.Report, error) {
	desired, err := r.Desired(ctx, dir)
	if err != nil {
		return nil, err
	}
	return r.judge(ctx, desired)
}

// judge dry-runs every desired object and collects the drifted ones.
func (r *Reconciler) judge(ctx context.Context, desired []apply.Desired) (*drift.Report, error) {
	rep := &drift.Report{DetectedAt: time.Now(), Objects: []drift.Object{}}
	for _, d := range desired {
		o, err := drift.Judge(ctx, r.client, d)
		if err != nil {
			return nil, err
		}
		if o != nil {
			rep.Objects = append(rep.Objects, *o)
		}
	}
	sort.Slice(rep.Objects, func(i, j int) bool { return rep.Objects[i].Object < rep.Objects[j].Object })
	return rep, nil
}

// Correct re-applies one drifted object, taking back the fields another
// manager changed.
func (r *Reconciler) Correct(ctx context.Context, desired *unstructured.Unstructured) error {
	opts := r.opts.Apply
	opts.Force = true
	opts.Expect = nil // one object, not the desired set
	_, err := apply.New(r.client, r.health, opts).Apply(ctx, []*unstructured.Unstructured{desired})
	return err
}

// Status is what meshcd owns in the cluster and how it is.
type Status struct {
	Owned  int             `json:"owned"`
	Health []health.Report `json:"health"`
	// PruneHeld is the prune the mass-prune guard holds until an operator
	// allows it (meshcd allow-prune); nil when none is held.
	PruneHeld *inventory.Held `json:"pruneHeld,omitempty"`
	// PruneAllowed is the digest of the held prune an operator allowed,
	// which the next reconcile carries out.
	PruneAllowed string `json:"pruneAllowed,omitempty"`
}

// Status reads the inventory and the health of every object in it.
func (r *Reconciler) Status(ctx context.Context) (*Status, error) {
	inv, err := r.store.Load(ctx)
	if err != nil {
		return nil, err
	}
	objs := make([]*unstructured.Unstructured, 0, inv.Len())
	for _, e := range inv.Entries {
		o, err := e.Object()
		if err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
	reports, err := r.health.ReadBack(ctx, objs)
	if err != nil {
		return nil, err
	}
	if r.opts.IstiodXDS != "" {
		live, err := r.liveModelObjects(ctx, objs)
		if err != nil {
			return nil, err
		}
		reports = append(reports, r.proveAccess(ctx, live, proof.Settle{Timeout: proofFetchTimeout})...)
	}
	return &Status{Owned: inv.Len(), Health: reports, PruneHeld: inv.Held, PruneAllowed: inv.Allowed}, nil
}
