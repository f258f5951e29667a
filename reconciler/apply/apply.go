package apply

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/internal/contentkey"
	"github.com/meshcd/meshcd/meshspec"
	"github.com/meshcd/meshcd/reconciler/foreign"
)

// WaypointChecker tells whether a waypoint serves traffic.
type WaypointChecker interface {
	// WaypointReady reports whether the waypoint Gateway namespace/name is
	// Programmed and has ready endpoints; reason says what is missing.
	WaypointReady(ctx context.Context, namespace, name string) (ready bool, reason string, err error)
}

// Options tune an apply.
type Options struct {
	// Force takes ownership of fields another field manager owns. Without
	// it such a conflict is an error naming that manager.
	Force bool
	// Concurrency is how many objects are compared and applied at once.
	Concurrency int
	// WaypointTimeout bounds the wait for a waypoint to become ready before
	// the labels that enroll traffic in it are written.
	WaypointTimeout time.Duration
	// PollInterval is how often readiness is polled.
	PollInterval time.Duration
	// Lists serves the list per kind of the live objects meshcd manages;
	// nil lists them from the API server. An informer cache (package
	// lister) makes an apply that changes nothing cost no list request;
	// the apply never changes a listed object.
	Lists client.Reader
	// Expect, when set, is told the whole desired set, with digests,
	// before an apply lists it, so that Lists' cache may keep the live
	// objects that hold it slim (lister.Lister.Expect). An apply of part
	// of the set (a drift correction) leaves it unset.
	Expect func([]Desired)
	// Instance names this meshcd instance: an object another instance owns
	// is written or pruned only once that instance's inventory no longer
	// lists it.
	Instance string
	// Claims returns, for every object the inventories of the other
	// instances list, their names; nil when there are none to ask.
	Claims func(ctx context.Context) (map[string][]string, error)
	// Progress, when set, is called as objects are done and while the
	// enrollment waits for waypoints, from the apply's goroutines.
	Progress func(Event)
}

// Event is how far an apply is.
type Event struct {
	// Done and Total count objects; an object whose waypoint label is held
	// back counts twice, once without the label and once with it.
	Done, Total int
	// Waiting names the waypoints, namespace/name, the enrollment waits for.
	Waiting []string
}

// tally counts one apply's objects for Progress.
type tally struct {
	report func(Event)
	mu     sync.Mutex
	ev     Event
}

func (t *tally) add(done int, waiting []string) {
	if t.report == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ev.Done += done
	if waiting != nil {
		t.ev.Waiting = waiting
	}
	t.report(Event{Done: t.ev.Done, Total: t.ev.Total, Waiting: slices.Clone(t.ev.Waiting)})
}

// DefaultOptions returns the options meshcd uses unless told otherwise.
func DefaultOptions() Options {
	return Options{Concurrency: 8, WaypointTimeout: 2 * time.Minute, PollInterval: 500 * time.Millisecond}
}

// Manager applies and prunes objects with one client.
type Manager struct {
	client    client.Client
	waypoints WaypointChecker
	opts      Options

	mu sync.Mutex
	// stamped are the last apply's objects with their digests, by content
	// key (stamp).
	stamped map[contentkey.Key]*stamped

	// beforeRemove, set by tests, runs between prune's read of a stale
	// object and the write that removes it.
	beforeRemove func(live *unstructured.Unstructured)
}

// New returns a Manager. waypoints decides when enrollment labels may be written.
func New(c client.Client, waypoints WaypointChecker, opts Options) *Manager {
	if opts.Concurrency < 1 {
		opts.Concurrency = 1
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultOptions().PollInterval
	}
	if opts.Lists == nil {
		opts.Lists = c
	}
	return &Manager{client: c, waypoints: waypoints, opts: opts}
}

// ConflictError is an apply refused because another field manager owns
// fields meshcd wants to set.
type ConflictError struct {
	Object   string
	Managers []string
	Fields   []string
	Err      error
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s apply conflicts with field manager %s on %s; another tool changed these fields: reconcile the spec with it, or apply with --force to take ownership",
		e.Object, quoteJoin(e.Managers), strings.Join(e.Fields, ", "))
}

func (e *ConflictError) Unwrap() error { return e.Err }

// Apply applies objs in stages: CRDs and Namespaces, then Gateways, then the
// rest, then the waypoint labels held back until their waypoints are ready.
// It stops at the first stage with an error and returns what it did so far.
//
// Apply never changes objs.
func (m *Manager) Apply(ctx context.Context, objs []*unstructured.Unstructured) (*ChangeSet, error) {
	cs := &ChangeSet{}
	desired, err := m.stamp(objs)
	if err != nil {
		return cs, err
	}
	if m.opts.Expect != nil {
		expected := make([]Desired, len(desired))
		for i, s := range desired {
			expected[i] = s.Desired
		}
		m.opts.Expect(expected)
	}
	// One list per kind serves the whole apply: unchanged objects then cost
	// no request of their own.
	live, err := m.index(ctx, desired)
	if err != nil {
		return cs, err
	}
	held, err := m.holdEnrollment(ctx, desired, live)
	if err != nil {
		return cs, err
	}
	progress := &tally{report: m.opts.Progress, ev: Event{Total: len(desired) + len(held)}}
	progress.add(0, nil)

	var defs, gateways, rest []*stamped
	for _, o := range desired {
		if h, ok := held[o]; ok {
			o = h.now
		}
		switch gk := o.key.GroupKind; {
		case gk == ambient.NamespaceGK || gk == crdGK:
			defs = append(defs, o)
		case gk == ambient.GatewayGK:
			gateways = append(gateways, o)
		default:
			rest = append(rest, o)
		}
	}
	cl := m.newClaims()
	for _, stage := range [][]*stamped{defs, gateways, rest} {
		changes, err := m.applyStage(ctx, cl, stage, live, progress)
		cs.add(changes...)
		if err != nil {
			return cs, err
		}
		if err := m.waitCRDs(ctx, stage); err != nil {
			return cs, err
		}
	}
	changes, err := m.enroll(ctx, held, live, progress)
	cs.add(changes...)
	return cs, err
}

// stamped is a desired object with its digest and what an apply reads
// off it.
type stamped struct {
	Desired
	gvk schema.GroupVersionKind
	key object.ObjMetadata
	// name is "Kind namespace/name".
	name    string
	partial bool
	// unchangedAt is the resourceVersion at which an apply last found the
	// live object to be this one: a live object still at it is still
	// unchanged, with no compare or dry-run. Manager.mu guards it.
	unchangedAt string
}

// newStamped reads what an apply needs off d.
func newStamped(d Desired) *stamped {
	gvk := d.Object.GroupVersionKind()
	return &stamped{Desired: d, gvk: gvk, key: keyOf(gvk.GroupKind(), d.Object), name: meshspec.RefOf(d.Object).String(), partial: isPartial(d.Object)}
}

// Desired returns each object with its digest, as Apply holds them: the
// objects are shared, not copied, and a digest is taken once for as long
// as an object's content stays the same.
func (m *Manager) Desired(objs []*unstructured.Unstructured) ([]Desired, error) {
	st, err := m.stamp(objs)
	if err != nil {
		return nil, err
	}
	out := make([]Desired, len(st))
	for i, s := range st {
		out[i] = s.Desired
	}
	return out, nil
}

// stamp returns each object with its digest, reusing the last apply's
// digests by content key: an object passed again with the same content,
// at the same pointer or not, is not digested again and keeps what the
// last apply found; one changed since, in place or not, is digested
// afresh. No stamped copy is kept: Desired.Stamped makes one for a write.
func (m *Manager) stamp(objs []*unstructured.Unstructured) ([]*stamped, error) {
	m.mu.Lock()
	prev := m.stamped
	m.mu.Unlock()
	next := make(map[contentkey.Key]*stamped, len(objs))
	out := make([]*stamped, 0, len(objs))
	keys := contentkey.Each(objs)
	for i, o := range objs {
		s, ok := prev[keys[i]]
		switch {
		case ok && s.Object == o:
		case ok && DigestOf(o) == "" && DigestOf(s.Object) == "":
			// The same content at another pointer: hold the object
			// passed now, so that the last one can be let go.
			m.mu.Lock()
			at := s.unchangedAt
			m.mu.Unlock()
			s = newStamped(Desired{Object: o, Digest: s.Digest, content: keys[i]})
			s.unchangedAt = at
		default:
			d, err := newDesired(o, keys[i])
			if err != nil {
				return nil, err
			}
			s = newStamped(d)
		}
		next[keys[i]] = s
		out = append(out, s)
	}
	m.mu.Lock()
	m.stamped = next
	m.mu.Unlock()
	return out, nil
}

// stampedCopy returns obj stamped, sharing with obj every field but its
// metadata, the only part Stamp writes.
func stampedCopy(obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	root := maps.Clone(obj.Object)
	if meta, ok := root["metadata"].(map[string]any); ok {
		root["metadata"] = maps.Clone(meta)
	}
	d := &unstructured.Unstructured{Object: root}
	if err := Stamp(d); err != nil {
		return nil, err
	}
	return d, nil
}

// applyStage applies objs concurrently and returns one change for each.
// live is what the cluster held when the apply began.
func (m *Manager) applyStage(ctx context.Context, cl *claims, objs []*stamped, live map[object.ObjMetadata]*unstructured.Unstructured, progress *tally) ([]Change, error) {
	if len(objs) == 0 {
		return nil, nil
	}
	changes := make([]Change, len(objs))
	var (
		mu   sync.Mutex
		errs []error
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(m.opts.Concurrency)
	for i, o := range objs {
		g.Go(func() error {
			c, err := m.applyOne(gctx, cl, o, live[o.key])
			changes[i] = c
			progress.add(1, nil)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	if len(errs) > 0 {
		return changes, errors.Join(errs...)
	}
	return changes, nil
}

// applyOne applies one object unless its live copy already is desired.
func (m *Manager) applyOne(ctx context.Context, cl *claims, s *stamped, live *unstructured.Unstructured) (Change, error) {
	desired := s.Object
	c := Change{Object: s.name}
	if m.stillUnchanged(s, live) {
		c.Action = Unchanged
		return c, nil
	}
	// Fields another manager added to an object meshcd owns are drift that
	// no comparison of values shows: server-side apply keeps them.
	added, err := foreign.Added(desired, live)
	if err != nil {
		return c, fmt.Errorf("%s %w", s.name, err)
	}
	if len(added) == 0 && s.current(live) {
		m.sawUnchanged(s, live)
		c.Action = Unchanged
		return c, nil
	}
	takeover, err := m.admitOwner(ctx, cl, s.name, s.key.String(), live)
	if err != nil {
		return c, err
	}
	if live == nil && s.partial {
		// meshcd never creates a partial object: read it first.
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(desired.GroupVersionKind())
		err := m.client.Get(ctx, client.ObjectKeyFromObject(desired), got)
		switch {
		case apierrors.IsNotFound(err):
			c.Action, c.Reason = Skipped, fmt.Sprintf("%s does not exist; meshcd only labels it and never creates it", s.name)
			return c, nil
		case err != nil:
			return c, fmt.Errorf("%s read failed: %w", c.Object, err)
		}
		live = got
	}
	if live != nil && DigestOf(live) == s.Digest {
		// Same intent, different live fields: let the server's dry-run say
		// whether that is drift or only normalisation.
		dry, err := s.Stamped()
		if err != nil {
			return c, err
		}
		if err := m.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(dry), client.FieldOwner(ambient.FieldManager), client.ForceOwnership, client.DryRunAll); err != nil {
			return c, fmt.Errorf("%s dry-run failed: %w", c.Object, err)
		}
		if !Drifted(live, dry) {
			if len(added) == 0 {
				m.sawUnchanged(s, live)
				c.Action = Unchanged
				return c, nil
			}
			// Only added fields: removing them is the whole correction.
			return m.removeAdded(ctx, c, live, added)
		}
	}
	if len(added) > 0 {
		if c, err = m.removeAdded(ctx, c, live, added); err != nil {
			return c, err
		}
	}
	opts := []client.ApplyOption{client.FieldOwner(ambient.FieldManager)}
	if m.opts.Force {
		opts = append(opts, client.ForceOwnership)
	}
	applied, err := s.Stamped()
	if err != nil {
		return c, err
	}
	start := time.Now().Truncate(time.Second) // creationTimestamp has second precision
	if err := m.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(applied), opts...); err != nil {
		if apierrors.IsConflict(err) {
			return c, conflict(c.Object, err)
		}
		return c, fmt.Errorf("%s apply failed: %w", c.Object, err)
	}
	c.Action = Configured
	if live == nil && created(applied, start) {
		c.Action = Created
	}
	if s.partial {
		c.Reason = "meshcd's labels only"
	}
	if takeover != "" {
		c.Reason = takeover
	}
	return c, nil
}

// removeAdded removes the fields another manager added to live, as meshcd,
// and says so in c. It fails when live changed since it was read: the next
// reconcile judges the object again.
func (m *Manager) removeAdded(ctx context.Context, c Change, live *unstructured.Unstructured, added []foreign.Field) (Change, error) {
	patch, err := foreign.Removal(live, added)
	if err != nil {
		return c, fmt.Errorf("%s: %w", c.Object, err)
	}
	target := &unstructured.Unstructured{}
	target.SetGroupVersionKind(live.GroupVersionKind())
	target.SetNamespace(live.GetNamespace())
	target.SetName(live.GetName())
	if err := m.client.Patch(ctx, target, client.RawPatch(types.JSONPatchType, patch), client.FieldOwner(ambient.FieldManager)); err != nil {
		if apierrors.IsConflict(err) {
			return c, fmt.Errorf("%s changed while meshcd removed what another manager added (%s); the next reconcile judges it again: %w", c.Object, joinFields(added), err)
		}
		return c, fmt.Errorf("%s removal of what another manager added (%s) failed: %w", c.Object, joinFields(added), err)
	}
	c.Action, c.Reason = Configured, "removed what another manager added: "+joinFields(added)
	return c, nil
}

func joinFields(fs []foreign.Field) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = f.String()
	}
	return strings.Join(s, ", ")
}

// stillUnchanged reports whether an apply found live, at the same
// resourceVersion, to be s's object.
func (m *Manager) stillUnchanged(s *stamped, live *unstructured.Unstructured) bool {
	if live == nil {
		return false
	}
	rv := live.GetResourceVersion()
	m.mu.Lock()
	defer m.mu.Unlock()
	return rv != "" && s.unchangedAt == rv
}

// sawUnchanged remembers that live, at its resourceVersion, is s's object.
func (m *Manager) sawUnchanged(s *stamped, live *unstructured.Unstructured) {
	if live == nil {
		return
	}
	rv := live.GetResourceVersion()
	m.mu.Lock()
	defer m.mu.Unlock()
	s.unchangedAt = rv
}

// created reports whether the server created the object in this apply: an
// object missing from meshcd's index may also exist without meshcd's label,
// in which case meshcd adopted it.
func created(applied *unstructured.Unstructured, start time.Time) bool {
	return !applied.GetCreationTimestamp().Time.Before(start)
}

// Drifted reports whether the server's dry-run result differs from the live
// object in labels, annotations or anything outside metadata and status.
func Drifted(live, dryRun *unstructured.Unstructured) bool {
	strip := func(u *unstructured.Unstructured) map[string]any {
		c := u.DeepCopy().Object
		delete(c, "status")
		meta, _ := c["metadata"].(map[string]any)
		c["metadata"] = map[string]any{"labels": meta["labels"], "annotations": meta["annotations"]}
		return c
	}
	a, b := strip(live), strip(dryRun)
	return !(subset(a, b) && subset(b, a))
}

var conflictManager = regexp.MustCompile(`conflict with "([^"]+)"`)

// conflict turns a 409 from server-side apply into a ConflictError naming
// the other managers and the contested fields.
func conflict(obj string, err error) error {
	ce := &ConflictError{Object: obj, Err: err}
	var status apierrors.APIStatus
	seen := map[string]bool{}
	if errors.As(err, &status) && status.Status().Details != nil {
		for _, cause := range status.Status().Details.Causes {
			if m := conflictManager.FindStringSubmatch(cause.Message); m != nil && !seen[m[1]] {
				seen[m[1]] = true
				ce.Managers = append(ce.Managers, m[1])
			}
			if cause.Field != "" {
				ce.Fields = append(ce.Fields, cause.Field)
			}
		}
	}
	if len(ce.Managers) == 0 {
		for _, m := range conflictManager.FindAllStringSubmatch(err.Error(), -1) {
			if !seen[m[1]] {
				seen[m[1]] = true
				ce.Managers = append(ce.Managers, m[1])
			}
		}
	}
	return ce
}

// index lists, per kind of objs, the live objects meshcd manages, so that
// unchanged objects cost no request of their own.
func (m *Manager) index(ctx context.Context, objs []*stamped) (map[object.ObjMetadata]*unstructured.Unstructured, error) {
	kinds := map[schema.GroupVersionKind]bool{}
	for _, o := range objs {
		kinds[o.gvk] = true
	}
	out := make(map[object.ObjMetadata]*unstructured.Unstructured, len(objs))
	var mu sync.Mutex
	// The kinds are listed side by side: the API server encodes one list
	// while this process decodes another.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for gvk := range kinds {
		g.Go(func() error {
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
			if err := m.opts.Lists.List(gctx, list, client.MatchingLabels{ambient.LabelManagedBy: ambient.ManagedByValue}); err != nil {
				return fmt.Errorf("list %s failed: %w; if it is a custom resource, install its CRD first", gvk.Kind, err)
			}
			apiVersion := gvk.GroupVersion().String()
			mu.Lock()
			defer mu.Unlock()
			for i := range list.Items {
				item := &list.Items[i]
				if item.Object["apiVersion"] != apiVersion || item.Object["kind"] != gvk.Kind {
					// An item from an informer is shared and already has
					// its kind; one decoded from a list may lack it.
					item.SetGroupVersionKind(gvk)
				}
				out[keyOf(gvk.GroupKind(), item)] = item
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

var crdGK = schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}

// waitCRDs waits for the CRDs among objs to be Established.
func (m *Manager) waitCRDs(ctx context.Context, objs []*stamped) error {
	for _, s := range objs {
		if s.key.GroupKind != crdGK {
			continue
		}
		o := s.Object
		waitCtx, cancel := context.WithTimeout(ctx, m.opts.WaypointTimeout)
		err := wait.PollUntilContextCancel(waitCtx, m.opts.PollInterval, true, func(ctx context.Context) (bool, error) {
			live := &unstructured.Unstructured{}
			live.SetGroupVersionKind(s.gvk)
			if err := m.client.Get(ctx, client.ObjectKeyFromObject(o), live); err != nil {
				return false, nil
			}
			conds, _, _ := unstructured.NestedSlice(live.Object, "status", "conditions")
			for _, c := range conds {
				if cm, ok := c.(map[string]any); ok && cm["type"] == "Established" && cm["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		cancel()
		if err != nil {
			return fmt.Errorf("%s was not Established in time: %w", s.name, err)
		}
	}
	return nil
}

func key(o *unstructured.Unstructured) object.ObjMetadata {
	return keyOf(o.GroupVersionKind().GroupKind(), o)
}

// keyOf is o's key when its kind, gk, is known.
func keyOf(gk schema.GroupKind, o *unstructured.Unstructured) object.ObjMetadata {
	return object.ObjMetadata{Namespace: o.GetNamespace(), Name: o.GetName(), GroupKind: gk}
}

func isPartial(o *unstructured.Unstructured) bool {
	// Read in place: GetAnnotations copies them.
	v, _, _ := unstructured.NestedFieldNoCopy(o.Object, "metadata", "annotations", ambient.AnnotationOwnership)
	return v == ambient.OwnershipPartial
}

func quoteJoin(ss []string) string {
	if len(ss) == 0 {
		return "(unknown)"
	}
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
