package reconciler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/dataplane"
	"github.com/meshcd/meshcd/internal/contentkey"
	"github.com/meshcd/meshcd/meshspec"
	"github.com/meshcd/meshcd/reconciler/admit"
	"github.com/meshcd/meshcd/reconciler/apply"
	"github.com/meshcd/meshcd/reconciler/health"
	"github.com/meshcd/meshcd/reconciler/inventory"
	"github.com/meshcd/meshcd/reconciler/proof"
	"github.com/meshcd/meshcd/renderer"
	"github.com/meshcd/meshcd/renderer/rules"
)

// Options configure a Reconciler.
type Options struct {
	// Namespace holds meshcd's own state: the inventory ConfigMap.
	Namespace string
	// Name tells apart several meshcd instances sharing a cluster.
	Name string
	// Render configures the renderer.
	Render renderer.Options
	// AllowFindings lists rule ids whose error findings do not block the apply.
	AllowFindings []string
	// AllowEmpty lets a render with no objects prune everything meshcd owns.
	AllowEmpty bool
	// MaxPrune is the largest share (0..1) of what the last confirmed
	// reconcile owned that one reconcile may prune; a larger prune is held,
	// on this reconcile and every later one, until an operator allows
	// exactly its objects.
	MaxPrune float64
	// AllowPrune is the digest of a held prune this reconcile may carry out
	// (meshcd apply --allow-prune); any other set stays held.
	AllowPrune string
	// Apply tunes the apply.
	Apply apply.Options
	// HealthTimeout bounds the wait for istiod's status after applying.
	HealthTimeout time.Duration
	// IstiodVersion is istiod's version, for the rollouts' skew check;
	// empty skips the check.
	IstiodVersion string
	// HealthHold is how long an unhealthy verdict from istiod must stay
	// unchanged before it is final, within HealthTimeout.
	HealthHold time.Duration
	// Admit says which kinds and namespaces the source may write; by
	// default no RBAC, Secrets, webhooks, CRDs or cluster-scoped kinds
	// other than Namespace.
	Admit admit.Policy
	// Lists serves the bulk lists of live objects (the apply's index and
	// the health snapshot); nil lists from the API server. The controller
	// passes an informer cache (package lister).
	Lists client.Reader
	// Progress, when set, is told each stage a reconcile enters and, while
	// it applies, the objects done and the waypoints it waits for.
	Progress func(Progress)
	// IstiodXDS is host:port of istiod's plaintext xDS port: when set, the
	// read-back proves the access model against the configuration istiod
	// serves to ztunnel (package proof). Empty turns the proof off.
	IstiodXDS string
}

// Progress is where a reconcile is, for a person watching it.
type Progress struct {
	// Stage is one of the Stage constants.
	Stage Stage
	// Done and Total count the apply's objects; Waiting names the
	// waypoints, namespace/name, whose labels wait for them to be ready.
	Done, Total int
	Waiting     []string
}

// Stage names a step of a reconcile.
type Stage string

// Stages, in the order a reconcile takes them.
const (
	StageRender Stage = "render"
	StageApply  Stage = "apply"
	StagePrune  Stage = "prune"
	StageHealth Stage = "health"
)

// DefaultOptions returns the options meshcd uses unless told otherwise.
func DefaultOptions() Options {
	return Options{
		Namespace:     "meshcd-system",
		Name:          "default",
		Render:        renderer.DefaultOptions(),
		MaxPrune:      0.5,
		Apply:         apply.DefaultOptions(),
		HealthTimeout: time.Minute,
		HealthHold:    5 * time.Second,
	}
}

// Reason says which stage ended a reconcile, for conditions and metrics.
type Reason string

// Reasons, one per stage.
const (
	ReasonRenderFailed     Reason = "RenderFailed"
	ReasonValidationFailed Reason = "ValidationFailed"
	ReasonInventoryFailed  Reason = "InventoryFailed"
	ReasonApplyFailed      Reason = "ApplyFailed"
	ReasonPruneFailed      Reason = "PruneFailed"
	ReasonPruneHeld        Reason = "PruneHeld"
	ReasonRolloutFailed    Reason = "RolloutFailed"
	ReasonProgressing      Reason = "Progressing"
	ReasonUnhealthy        Reason = "Unhealthy"
	ReasonSucceeded        Reason = "ReconciliationSucceeded"
)

// Result is what one reconcile did and saw.
type Result struct {
	Reason   Reason           `json:"reason"`
	Findings []rules.Finding  `json:"findings,omitempty"`
	Applied  *apply.ChangeSet `json:"applied,omitempty"`
	Pruned   *apply.ChangeSet `json:"pruned,omitempty"`
	Health   []health.Report  `json:"health,omitempty"`
	// Rollouts are the DataplaneRollouts' states after this reconcile's step.
	Rollouts map[string]*dataplane.State `json:"rollouts,omitempty"`
	// PruneHeld says why prune did not run although objects were stale,
	// and how to allow it.
	PruneHeld string `json:"pruneHeld,omitempty"`
	// Held is the prune the mass-prune guard holds, HeldObjects its objects.
	Held        *inventory.Held `json:"held,omitempty"`
	HeldObjects []string        `json:"heldObjects,omitempty"`
	// Notes are the render's: the files it did not read, and its warnings.
	renderer.Notes
}

// Reconciler drives one spec directory into a cluster.
type Reconciler struct {
	client client.Client
	opts   Options
	apply  *apply.Manager
	health *health.Checker
	store  *inventory.Store
	// rollouts steps the spec's DataplaneRollouts after each reconcile.
	rollouts *dataplane.Runner
	// rendered renders a directory again only when its files changed.
	rendered renderer.Cache
	// shared serves the apply's lists to the read-back after a no-op;
	// nil when Options.Lists serves them from informers.
	shared *sharedLists

	mu sync.Mutex
	// findings are the rule catalogue's findings on the objects, origins
	// and allowed rules whose key is checked.
	findings   []rules.Finding
	checked    contentkey.Key
	hasChecked bool
	// holds are the objects kept out of the applies, by holdKey.
	holds map[string]hold
	// intended is the inventory of the objects last recorded, whose
	// identities' key is intendedOf.
	intended   *inventory.Inventory
	intendedOf contentkey.Key
}

// New returns a Reconciler working through c.
func New(c client.Client, opts Options) *Reconciler {
	var shared *sharedLists
	if opts.Lists == nil {
		shared = &sharedLists{Reader: c}
		opts.Lists = shared
	}
	h := &health.Checker{Client: c, Lists: opts.Lists}
	if opts.Apply.Lists == nil {
		opts.Apply.Lists = opts.Lists
	}
	if report := opts.Progress; report != nil {
		opts.Apply.Progress = func(e apply.Event) {
			report(Progress{Stage: StageApply, Done: e.Done, Total: e.Total, Waiting: e.Waiting})
		}
	}
	opts.Render.Instance = opts.Name
	opts.Apply.Instance = opts.Name
	opts.Admit.StateNamespace = opts.Namespace
	opts.Apply.Claims = func(ctx context.Context) (map[string][]string, error) {
		return inventory.Claims(ctx, c, opts.Namespace, InventoryPrefix, opts.Name)
	}
	r := &Reconciler{
		client: c,
		opts:   opts,
		apply:  apply.New(c, h, opts.Apply),
		health: h,
		store:  inventory.NewStore(c, opts.Namespace, InventoryPrefix+opts.Name),
		shared: shared,
	}
	r.rollouts = &dataplane.Runner{Client: c, Store: r.RolloutStore(), Istiod: opts.IstiodVersion}
	return r
}

// InventoryPrefix starts the name of every instance's inventory ConfigMap.
const InventoryPrefix = "meshcd-inventory-"

// RolloutStore is where this instance keeps its DataplaneRollouts' states.
func (r *Reconciler) RolloutStore() *dataplane.Store {
	return &dataplane.Store{Client: r.client, Namespace: r.opts.Namespace, Name: "meshcd-rollout-" + r.opts.Name}
}

// Reconcile renders dir, validates it, stores the intended inventory,
// applies, prunes what is stale and reads back health. A failure before
// prune prunes nothing; a failed delete stays in the inventory.
func (r *Reconciler) Reconcile(ctx context.Context, dir string) (*Result, error) {
	res := &Result{}
	r.progress(StageRender)
	bundle, err := r.rendered.Render(dir, r.opts.Render)
	if err != nil {
		res.Reason = ReasonRenderFailed
		return res, fmt.Errorf("render failed, nothing applied or pruned: %w", err)
	}
	res.Notes = bundle.Notes
	if err := r.validate(bundle, res); err != nil {
		return res, err
	}
	if err := r.admit(bundle, res); err != nil {
		return res, err
	}
	rendered := bundle.Objects
	if r.shared != nil {
		r.shared.start()
		defer r.shared.forget()
	}
	if err := r.converge(ctx, bundle, rendered, res); err != nil {
		return res, err
	}
	if r.shared != nil {
		r.shared.applied(res.Applied, res.Pruned)
	}
	err = r.readHealth(ctx, bundle, res)
	if r.shared != nil {
		r.shared.forget()
	}
	if err != nil {
		return res, err
	}
	moved, err := r.stepRollouts(ctx, bundle.Spec.Rollouts, rendered, res)
	if err != nil || !moved {
		return res, err
	}
	// The rollouts moved: apply what their new states say now, not a
	// reconcile later. Health is read by the next reconcile.
	reason := res.Reason
	if err := r.converge(ctx, bundle, rendered, res); err != nil {
		return res, err
	}
	res.Reason = reason
	return res, nil
}

// converge applies the rendered objects with the rollouts' overlay and
// prunes what is stale: the intended inventory is stored first, and a
// failed apply prunes nothing. Its change sets add to res's.
func (r *Reconciler) converge(ctx context.Context, bundle *renderer.Bundle, rendered []*unstructured.Unstructured, res *Result) error {
	var err error
	if bundle.Objects, err = r.overlay(ctx, rendered); err != nil {
		res.Reason = ReasonInventoryFailed
		return fmt.Errorf("nothing applied or pruned: %w", err)
	}
	old, next, err := r.recordIntent(ctx, bundle, res)
	if err != nil {
		return err
	}
	objs, held := r.unheld(bundle.Objects)
	applied, err := r.apply.Apply(ctx, objs)
	res.Applied = res.Applied.Merge(held).Merge(applied)
	if err != nil {
		res.Reason = ReasonApplyFailed
		return fmt.Errorf("apply failed, nothing pruned: %w", err)
	}
	r.progress(StagePrune)
	return r.prune(ctx, old, next, res)
}

// progress reports that the reconcile enters stage.
func (r *Reconciler) progress(stage Stage) {
	if r.opts.Progress != nil {
		r.opts.Progress(Progress{Stage: stage})
	}
}

// overlay adds what the rollouts have reached to the rendered objects:
// pinned images and running canaries, so that a reconcile keeps, never
// undoes, a rollout's progress.
func (r *Reconciler) overlay(ctx context.Context, objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	states, _, err := r.rollouts.Store.Load(ctx)
	if err != nil {
		return nil, err
	}
	return dataplane.Overlay(objs, states), nil
}

// stepRollouts moves each DataplaneRollout by one transition, judged with
// this reconcile's read-back, and reports whether the overlay changed.
func (r *Reconciler) stepRollouts(ctx context.Context, rollouts []*meshspec.DataplaneRollout, rendered []*unstructured.Unstructured, res *Result) (bool, error) {
	if len(rollouts) == 0 {
		return false, nil
	}
	var unhealthy []string
	for _, h := range res.Health {
		if !h.Healthy {
			unhealthy = append(unhealthy, h.Object)
		}
	}
	states, moved, err := r.rollouts.Step(ctx, rollouts, rendered, unhealthy)
	res.Rollouts = states
	if err != nil {
		res.Reason = ReasonRolloutFailed
		return false, fmt.Errorf("rollout step failed: %w", err)
	}
	return moved, nil
}

// validate runs the rule catalogue; an error finding not allowed stops the
// reconcile before anything is written. The same objects from the same
// places keep their findings.
func (r *Reconciler) validate(bundle *renderer.Bundle, res *Result) error {
	key := contentkey.Combine(contentkey.Objects(bundle.Objects), bundle.OriginKey(), contentkey.Of(r.opts.AllowFindings))
	r.mu.Lock()
	if !r.hasChecked || r.checked != key {
		r.findings = rules.Check(bundle.Objects, rules.Options{Origin: bundle.Origin, Allow: r.opts.AllowFindings})
		r.checked, r.hasChecked = key, true
	}
	res.Findings = append([]rules.Finding(nil), r.findings...)
	r.mu.Unlock()
	if rules.HasErrors(res.Findings) {
		res.Reason = ReasonValidationFailed
		n := 0
		for _, f := range res.Findings {
			if f.Severity == rules.SeverityError {
				n++
			}
		}
		return fmt.Errorf("validation found %d errors, nothing applied or pruned; fix them or allow a rule with --allow-finding", n)
	}
	return nil
}

// admit refuses the objects the source may not write, before anything is
// written.
func (r *Reconciler) admit(bundle *renderer.Bundle, res *Result) error {
	scopes := map[schema.GroupVersionKind]bool{}
	namespaced := func(gvk schema.GroupVersionKind) (bool, error) {
		if ns, ok := scopes[gvk]; ok {
			return ns, nil
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		ns, err := r.client.IsObjectNamespaced(u)
		if err == nil {
			scopes[gvk] = ns
		}
		return ns, err
	}
	origin := func(o *unstructured.Unstructured) string { return bundle.Origin(o).String() }
	if err := r.opts.Admit.Check(bundle.Objects, namespaced, origin); err != nil {
		res.Reason = ReasonValidationFailed
		return err
	}
	return nil
}

// recordIntent stores old ∪ next before anything is applied, so an apply
// that fails half way forgets neither what meshcd owned nor what it created.
// It returns the inventory stored, which the prune measures against.
func (r *Reconciler) recordIntent(ctx context.Context, bundle *renderer.Bundle, res *Result) (stored, next *inventory.Inventory, err error) {
	fail := func(err error) (*inventory.Inventory, *inventory.Inventory, error) {
		res.Reason = ReasonInventoryFailed
		return nil, nil, fmt.Errorf("inventory failed, nothing applied or pruned: %w", err)
	}
	if err := r.EnsureNamespace(ctx); err != nil {
		return fail(err)
	}
	// Read it afresh: another process of this instance, or an operator's
	// allow-prune, may have written it.
	if _, err := r.store.Load(ctx); err != nil {
		return fail(err)
	}
	if next, err = r.inventoryOf(bundle.Objects); err != nil {
		return fail(err)
	}
	stored, err = r.store.Update(ctx, func(cur *inventory.Inventory) (*inventory.Inventory, error) {
		u := cur.Union(next)
		if u.Confirmed == 0 {
			// An inventory from before the guard counted: what it held
			// is the base.
			u.Confirmed = cur.Len()
		}
		return u, nil
	})
	if err != nil {
		return fail(err)
	}
	return stored, next, nil
}

// inventoryOf returns the inventory of objs, the last one again when objs
// have the identities they had last time.
func (r *Reconciler) inventoryOf(objs []*unstructured.Unstructured) (*inventory.Inventory, error) {
	key := inventory.KeyOf(objs)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.intended != nil && r.intendedOf == key {
		return r.intended, nil
	}
	inv, err := inventory.New(objs)
	if err != nil {
		return nil, err
	}
	r.intended, r.intendedOf = inv, key
	return inv, nil
}

// EnsureNamespace creates meshcd's own namespace when it is missing; an
// existing one costs a read, never a write.
func (r *Reconciler) EnsureNamespace(ctx context.Context) error {
	ns := &corev1.Namespace{}
	err := r.client.Get(ctx, client.ObjectKey{Name: r.opts.Namespace}, ns)
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("namespace %s for meshcd's state read failed: %w", r.opts.Namespace, err)
	}
	if err := r.client.Apply(ctx, corev1ac.Namespace(r.opts.Namespace), client.FieldOwner(ambient.FieldManager)); err != nil {
		return fmt.Errorf("namespace %s for meshcd's state create failed: %w", r.opts.Namespace, err)
	}
	return nil
}

// prune removes stored − next unless the mass-prune guard holds it, then
// records what is left. Only the entries really removed leave the
// inventory, so entries another process of this instance added meanwhile
// stay.
func (r *Reconciler) prune(ctx context.Context, stored, next *inventory.Inventory, res *Result) error {
	stale := stored.Stale(next)
	if why := r.guard(stored, next, stale); why != "" {
		if d := inventory.Digest(stale); d != r.opts.AllowPrune && d != stored.Allowed {
			return r.holdPrune(ctx, stale, d, why, res)
		}
	}
	var (
		kept []inventory.Entry
		err  error
	)
	if len(stale) > 0 {
		var cs *apply.ChangeSet
		cs, kept, err = r.apply.Prune(ctx, stale)
		res.Pruned = res.Pruned.Merge(cs)
	}
	removed := inventory.Minus(stale, kept)
	if _, serr := r.store.Update(ctx, func(cur *inventory.Inventory) (*inventory.Inventory, error) {
		// Another process of this instance may have applied a pruned
		// object again meanwhile: its entry stays. Read on every try, so
		// that a write of that process between the read and this one
		// makes this one read again.
		back, err := r.apply.Owned(ctx, removed)
		if err != nil {
			return nil, err
		}
		out := cur.Without(inventory.Minus(removed, back)).Union(next)
		out.Confirmed, out.Held, out.Allowed = out.Len(), nil, ""
		return out, nil
	}); serr != nil {
		err = errors.Join(err, serr)
	}
	if err != nil {
		res.Reason = ReasonPruneFailed
		return fmt.Errorf("prune failed, %d objects kept in the inventory to retry: %w", len(kept), err)
	}
	return nil
}

// guard says why the prune of stale must wait for an operator: a render
// with no objects, or more than MaxPrune of what the last confirmed
// reconcile owned. "" lets it run.
func (r *Reconciler) guard(stored, next *inventory.Inventory, stale []inventory.Entry) string {
	switch {
	case len(stale) == 0:
		return ""
	case next.Len() == 0 && !r.opts.AllowEmpty:
		return fmt.Sprintf("the render produced no objects, and pruning all %d owned objects needs --allow-empty", len(stale))
	case stored.Confirmed > 0 && float64(len(stale))/float64(stored.Confirmed) > r.opts.MaxPrune:
		return fmt.Sprintf("pruning %d of the %d objects the last confirmed reconcile owned exceeds --max-prune %.0f%%", len(stale), stored.Confirmed, r.opts.MaxPrune*100)
	}
	return ""
}

// holdPrune records the held prune in the inventory, where every later
// reconcile finds it and an operator allows it, and reports it.
func (r *Reconciler) holdPrune(ctx context.Context, stale []inventory.Entry, digest, why string, res *Result) error {
	held := &inventory.Held{Digest: digest, Count: len(stale), Reason: why}
	res.Held = held
	res.PruneHeld = fmt.Sprintf("%s; nothing pruned. To prune exactly these %d objects: meshcd allow-prune %s (or meshcd apply --allow-prune %s for one run)", why, len(stale), digest, digest)
	res.HeldObjects = make([]string, len(stale))
	for i, e := range stale {
		res.HeldObjects[i] = e.String()
	}
	if _, err := r.store.Update(ctx, func(cur *inventory.Inventory) (*inventory.Inventory, error) {
		cur.Held = held
		return cur, nil
	}); err != nil {
		res.Reason = ReasonInventoryFailed
		return fmt.Errorf("inventory failed after apply: %w", err)
	}
	return nil
}

// AllowPrune lets the next reconcile carry out the held prune whose digest
// is digest, and no other.
func (r *Reconciler) AllowPrune(ctx context.Context, digest string) (*inventory.Held, error) {
	if _, err := r.store.Load(ctx); err != nil {
		return nil, err
	}
	var held *inventory.Held
	_, err := r.store.Update(ctx, func(cur *inventory.Inventory) (*inventory.Inventory, error) {
		switch {
		case cur.Held == nil:
			return nil, fmt.Errorf("meshcd instance %q holds no prune; nothing to allow", r.opts.Name)
		case cur.Held.Digest != digest:
			return nil, fmt.Errorf("the prune meshcd instance %q holds is %s (%d objects: %s), not %s; a different set needs its own approval", r.opts.Name, cur.Held.Digest, cur.Held.Count, cur.Held.Reason, digest)
		}
		held = cur.Held
		cur.Allowed = digest
		return cur, nil
	})
	return held, err
}

// readHealth waits, within HealthTimeout, for istiod's verdict on what was
// applied and sets the final reason.
func (r *Reconciler) readHealth(ctx context.Context, bundle *renderer.Bundle, res *Result) error {
	r.progress(StageHealth)
	reports, err := r.health.Settle(ctx, bundle.Objects, r.opts.HealthTimeout, r.opts.Apply.PollInterval, r.opts.HealthHold)
	res.Health = reports
	if err != nil {
		res.Reason = ReasonUnhealthy
		return fmt.Errorf("health read-back failed: %w", err)
	}
	reports = append(reports, r.proveAccess(ctx, bundle.Objects, proof.Settle{Timeout: r.opts.HealthTimeout, Interval: r.opts.Apply.PollInterval, Hold: r.opts.HealthHold})...)
	res.Health = reports
	res.Reason = ReasonSucceeded
	if res.Applied.Count(apply.Waiting)+res.Pruned.Count(apply.Waiting) > 0 {
		res.Reason = ReasonProgressing
	}
	for _, h := range reports {
		if !h.Healthy {
			res.Reason = ReasonUnhealthy
		}
	}
	if res.Held != nil && res.Reason != ReasonUnhealthy {
		res.Reason = ReasonPruneHeld
	}
	return nil
}

// hold is an object kept out of the applies; see Hold.
type hold struct {
	object, digest, reason string
}

func holdKey(o *unstructured.Unstructured) string {
	return o.GroupVersionKind().GroupKind().String() + "/" + o.GetNamespace() + "/" + o.GetName()
}

// Hold keeps an object out of the applies for as long as the spec renders
// it as desired (as a drift event carries it) says: it stays in the
// inventory and is never pruned for it, and each reconcile reports it as
// skipped with reason. A spec that renders it differently, or no more, ends
// the hold. The controller holds an object another field manager fights
// over.
func (r *Reconciler) Hold(desired apply.Desired, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.holds == nil {
		r.holds = map[string]hold{}
	}
	r.holds[holdKey(desired.Object)] = hold{object: meshspec.RefOf(desired.Object).String(), digest: desired.Digest, reason: reason}
}

// Held reports whether obj's object is held.
func (r *Reconciler) Held(obj *unstructured.Unstructured) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.holds[holdKey(obj)]
	return ok
}

// unheld returns objs without the held ones and a skipped change for each
// of those; a hold whose object the spec renders differently, or no more,
// ends here.
func (r *Reconciler) unheld(objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, *apply.ChangeSet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.holds) == 0 {
		return objs, nil
	}
	out := make([]*unstructured.Unstructured, 0, len(objs))
	skipped := &apply.ChangeSet{}
	rendered := map[string]bool{}
	for _, o := range objs {
		k := holdKey(o)
		rendered[k] = true
		if h, ok := r.holds[k]; ok {
			d := o.DeepCopy()
			if apply.Stamp(d) == nil && d.GetAnnotations()[ambient.AnnotationDigest] == h.digest {
				skipped.Changes = append(skipped.Changes, apply.Change{Object: h.object, Action: apply.Skipped, Reason: h.reason})
				continue
			}
			delete(r.holds, k)
		}
		out = append(out, o)
	}
	for k := range r.holds {
		if !rendered[k] {
			delete(r.holds, k)
		}
	}
	return out, skipped
}
