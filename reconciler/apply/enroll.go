package apply

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/fluxcd/cli-utils/pkg/object"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/meshspec"
)

// Waypoints fail open: a Namespace or Service labelled for a waypoint that
// does not serve traffic sends that traffic straight to the destination,
// past the waypoint's policies. So an enrollment label is written only once
// its waypoint is ready, a label that moves to another waypoint keeps its
// old value until the new one is ready, and a waypoint Gateway is deleted
// only once nothing names it any more.

// enrollmentLabels are the labels that send traffic to a waypoint, each
// with the label naming the waypoint's namespace when it is not the
// object's own.
var enrollmentLabels = []struct{ name, namespace string }{
	{ambient.LabelUseWaypoint, ambient.LabelUseWaypointNamespace},
	{ambient.LabelUseWaypointCanary, ambient.LabelUseWaypointCanaryNamespace},
}

// Enrollment is one waypoint an object sends traffic to.
type Enrollment struct {
	// Label is the label naming the waypoint, such as istio.io/use-waypoint.
	Label string
	// Namespace and Name name the waypoint Gateway.
	Namespace, Name string
}

func (e Enrollment) waypoint() string { return e.Namespace + "/" + e.Name }

// Enrollments lists the waypoints o's labels send traffic to.
func Enrollments(o *unstructured.Unstructured) []Enrollment {
	labels := o.GetLabels()
	var out []Enrollment
	for _, l := range enrollmentLabels {
		name := labels[l.name]
		if name == "" || name == "none" {
			continue
		}
		ns := labels[l.namespace]
		if ns == "" {
			ns = o.GetNamespace()
			if o.GroupVersionKind().GroupKind() == ambient.NamespaceGK {
				ns = o.GetName()
			}
		}
		out = append(out, Enrollment{Label: l.name, Namespace: ns, Name: name})
	}
	return out
}

// held is a partial object whose new waypoint labels wait for the waypoint.
type held struct {
	// now is what is applied at once: the object with the enrollment labels
	// the live object already has, so traffic stays where it is.
	now *stamped
	// later is the whole object, applied once the waypoints are ready.
	later *stamped
	// waypoints are every waypoint it names.
	waypoints []Enrollment
}

// holdEnrollment finds the partial objects whose waypoint labels must wait:
// those whose live labels name other waypoints (or none) and whose
// waypoints are not ready now.
func (m *Manager) holdEnrollment(ctx context.Context, desired []*stamped, index map[object.ObjMetadata]*unstructured.Unstructured) (map[*stamped]held, error) {
	out := map[*stamped]held{}
	for _, s := range desired {
		if !s.partial {
			continue
		}
		o := s.Object
		refs := Enrollments(o)
		if len(refs) == 0 {
			continue
		}
		live := index[s.key]
		if live == nil { // not labelled by meshcd yet: read it
			live = &unstructured.Unstructured{}
			live.SetGroupVersionKind(s.gvk)
			if err := m.client.Get(ctx, client.ObjectKeyFromObject(o), live); err != nil && !apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("%s read failed: %w", s.name, err)
			}
		}
		if sameEnrollment(o, live) {
			continue // already enrolled in these waypoints: keep the labels
		}
		ready := true
		for _, r := range refs {
			ok, _, err := m.waypoints.WaypointReady(ctx, r.Namespace, r.Name)
			if err != nil {
				return nil, err
			}
			ready = ready && ok
		}
		if ready {
			continue
		}
		now := o.DeepCopy()
		nl, ll := now.GetLabels(), live.GetLabels()
		for _, l := range enrollmentLabels {
			for _, k := range []string{l.name, l.namespace} {
				if v, ok := ll[k]; ok {
					nl[k] = v
				} else {
					delete(nl, k)
				}
			}
		}
		now.SetLabels(nl)
		d, err := NewDesired(now)
		if err != nil {
			return nil, err
		}
		out[s] = held{now: newStamped(d), later: s, waypoints: refs}
	}
	return out, nil
}

// sameEnrollment reports whether live already carries desired's
// enrollment labels.
func sameEnrollment(desired, live *unstructured.Unstructured) bool {
	d, l := desired.GetLabels(), live.GetLabels()
	for _, lb := range enrollmentLabels {
		for _, k := range []string{lb.name, lb.namespace} {
			if d[k] != l[k] {
				return false
			}
		}
	}
	return true
}

// enroll waits, within WaypointTimeout, for the waypoints of held objects
// and applies their labels; those whose waypoint never got ready wait.
func (m *Manager) enroll(ctx context.Context, heldObjs map[*stamped]held, live map[object.ObjMetadata]*unstructured.Unstructured, progress *tally) ([]Change, error) {
	if len(heldObjs) == 0 {
		return nil, nil
	}
	all := make([]held, 0, len(heldObjs))
	for _, h := range heldObjs {
		all = append(all, h)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].later.name < all[j].later.name })

	reasons := map[Enrollment]string{}
	ready := map[Enrollment]bool{}
	waitCtx, cancel := context.WithTimeout(ctx, m.opts.WaypointTimeout)
	defer cancel()
	_ = wait.PollUntilContextCancel(waitCtx, m.opts.PollInterval, true, func(ctx context.Context) (bool, error) {
		done := true
		waiting := []string{}
		for _, h := range all {
			for _, r := range h.waypoints {
				if ready[r] {
					continue
				}
				ok, reason, err := m.waypoints.WaypointReady(ctx, r.Namespace, r.Name)
				if err != nil {
					if ctx.Err() != nil {
						return false, nil // the wait is over: keep the last reason
					}
					reason = err.Error()
				}
				ready[r], reasons[r] = ok, reason
				done = done && ok
				if !ok && !slices.Contains(waiting, r.waypoint()) {
					waiting = append(waiting, r.waypoint())
				}
			}
		}
		progress.add(0, waiting)
		return done, nil
	})
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	var (
		changes []Change
		apply   []*stamped
	)
	for _, h := range all {
		var missing []string
		for _, r := range h.waypoints {
			if !ready[r] {
				missing = append(missing, fmt.Sprintf("waypoint %s is not ready (%s)", r.waypoint(), reasons[r]))
			}
		}
		if len(missing) > 0 {
			changes = append(changes, Change{Object: h.later.name, Action: Waiting,
				Reason: "waypoint label held back, so traffic is not sent to a waypoint that cannot enforce its policies: " + strings.Join(missing, "; ")})
			continue
		}
		apply = append(apply, h.later)
	}
	applied, err := m.applyStage(ctx, m.newClaims(), apply, live, progress)
	return append(changes, applied...), err
}

// namedBy lists the Namespaces and Services whose labels still send
// traffic to the waypoint Gateway namespace/name, as "Kind name" strings.
func (m *Manager) namedBy(ctx context.Context, namespace, name string) ([]string, error) {
	var out []string
	for _, kind := range []string{"NamespaceList", "ServiceList"} {
		for _, l := range enrollmentLabels {
			list := &unstructured.UnstructuredList{}
			list.SetAPIVersion("v1")
			list.SetKind(kind)
			if err := m.client.List(ctx, list, client.MatchingLabels{l.name: name}); err != nil {
				return nil, fmt.Errorf("objects naming waypoint %s/%s list failed: %w", namespace, name, err)
			}
			for i := range list.Items {
				for _, e := range Enrollments(&list.Items[i]) {
					if e.Label == l.name && e.Namespace == namespace && e.Name == name {
						out = append(out, meshspec.RefOf(&list.Items[i]).String())
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// Sequence says in what order meshcd carries out the change from before to
// after where waypoints are concerned: which labels wait for a waypoint to
// be ready, and which waypoints are deleted only after the labels naming
// them move off. before and after are objects with their labels (a base
// render, or live copies); only labels and identities are read.
func Sequence(before, after []*unstructured.Unstructured) []string {
	prev := make(map[object.ObjMetadata]*unstructured.Unstructured, len(before))
	for _, o := range before {
		prev[key(o)] = o
	}
	next := make(map[object.ObjMetadata]bool, len(after))
	var out []string
	for _, o := range after {
		next[key(o)] = true
		old := prev[key(o)]
		if old == nil {
			old = &unstructured.Unstructured{}
		}
		for _, e := range Enrollments(o) {
			if enrollmentOf(old, e.Label) == e {
				continue
			}
			line := fmt.Sprintf("%s: %s=%s is written only once waypoint %s is Programmed with an available replica and a ready endpoint", meshspec.RefOf(o), e.Label, e.Name, e.waypoint())
			if was, ok := old.GetLabels()[e.Label]; ok {
				line += fmt.Sprintf("; until then it stays %s", was)
			} else if o.GetLabels()[ambient.LabelDataplaneMode] != "" {
				line += "; " + ambient.LabelDataplaneMode + " goes first"
			}
			out = append(out, line)
		}
	}
	for _, o := range before {
		if next[key(o)] || o.GroupVersionKind().GroupKind() != ambient.GatewayGK {
			continue
		}
		var namers []string
		for _, n := range before {
			for _, e := range Enrollments(n) {
				if e.Namespace == o.GetNamespace() && e.Name == o.GetName() {
					namers = append(namers, meshspec.RefOf(n).String())
				}
			}
		}
		if len(namers) > 0 {
			out = append(out, fmt.Sprintf("%s is deleted only after %s no longer name it: the labels move off first, so no traffic is sent to a waypoint that is gone", meshspec.RefOf(o), strings.Join(namers, ", ")))
		}
	}
	return out
}

// enrollmentOf is o's enrollment through label, or the zero value.
func enrollmentOf(o *unstructured.Unstructured, label string) Enrollment {
	for _, e := range Enrollments(o) {
		if e.Label == label {
			return e
		}
	}
	return Enrollment{}
}
