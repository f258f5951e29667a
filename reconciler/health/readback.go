package health

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/meshspec"
	"github.com/meshcd/meshcd/reconciler/apply"
)

// Report is the health of one object as the cluster reports it.
type Report struct {
	// Object is "Kind namespace/name".
	Object string `json:"object"`
	// Healthy is false while pending and when istiod refused or ignored it.
	Healthy bool `json:"healthy"`
	// Pending is set while istiod has not reported on the object yet.
	Pending bool `json:"pending,omitempty"`
	// Message is istiod's own word for an unhealthy object.
	Message string `json:"message,omitempty"`
}

// ReadBack reports the health of every object of objs that istiod or a
// controller reports on. Objects with nothing to report are left out. It
// reads with one list per kind, never one request per object, and judges
// again only the objects whose live copy changed since the last read-back.
func (c *Checker) ReadBack(ctx context.Context, objs []*unstructured.Unstructured) ([]Report, error) {
	c.mu.Lock()
	prev := c.judged
	c.mu.Unlock()
	next := make(map[judged]judgement, len(objs))
	keys := make([]judged, len(objs))
	kinds := map[schema.GroupVersionKind]bool{}
	for i, o := range objs {
		gvk := o.GroupVersionKind()
		if !reported[gvk.GroupKind()] {
			continue
		}
		k := judged{gvk, ref{gvk.GroupKind(), o.GetNamespace(), o.GetName()}}
		keys[i] = k
		j, ok := prev[k]
		if !ok {
			j = judgement{object: meshspec.RefOf(o).String()}
		}
		next[k] = j
		kinds[gvk] = true
	}
	snap, err := c.snapshot(ctx, kinds)
	if err != nil {
		return nil, err
	}
	var out []Report
	for i, k := range keys {
		j, ok := next[k]
		live := snap.objects[k.ref]
		if !ok || live == nil {
			continue
		}
		if rv := live.GetResourceVersion(); rv == "" || rv != j.rv {
			j.report, j.reported = snap.report(k.ref.gk, j.object, objs[i], live)
			j.rv = ""
			if judgedAlone(k.ref.gk, j.report, j.reported) {
				j.rv = rv
			}
			next[k] = j
		}
		if j.reported {
			out = append(out, j.report)
		}
	}
	c.mu.Lock()
	c.judged = next
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Object < out[j].Object })
	return out, nil
}

// judged keys a judgement by what the desired object says of itself: its
// kind, version, namespace and name. A report that is kept reads nothing
// else of it: those that read its spec are judged again each time
// (judgedAlone).
type judged struct {
	gvk schema.GroupVersionKind
	ref ref
}

// judgement is what a read-back knows of one desired object: its name as
// reported and, while rv is set, its report as judged from the live copy
// at that resourceVersion.
type judgement struct {
	object   string
	rv       string
	report   Report
	reported bool
}

// Settle polls ReadBack until every report is healthy, or until nothing is
// pending and the unhealthy reports have stayed the same for hold, or until
// timeout passes; it returns the last reports. The hold exists because
// istiod writes status in batches: a condition computed before a dependency
// was ready (a Service not yet bound to its waypoint, a watch still
// reconnecting) is rewritten moments later, and reporting it would be a
// false alarm.
func (c *Checker) Settle(ctx context.Context, objs []*unstructured.Unstructured, timeout, interval, hold time.Duration) ([]Report, error) {
	var (
		last      []Report
		verdict   string
		verdictAt time.Time
	)
	waitCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := wait.PollUntilContextCancel(waitCtx, interval, true, func(ctx context.Context) (bool, error) {
		reports, err := c.ReadBack(ctx, objs)
		if err != nil {
			return false, err
		}
		last = reports
		var unhealthy strings.Builder
		for _, r := range reports {
			if r.Pending {
				verdict = ""
				return false, nil
			}
			if !r.Healthy {
				unhealthy.WriteString(r.Object + "\x00" + r.Message + "\x00")
			}
		}
		if unhealthy.Len() == 0 {
			return true, nil
		}
		if unhealthy.String() != verdict {
			verdict, verdictAt = unhealthy.String(), time.Now()
		}
		return time.Since(verdictAt) >= hold, nil
	})
	if err != nil && ctx.Err() != nil {
		return last, ctx.Err()
	}
	if err != nil && last == nil {
		return nil, err
	}
	return last, nil
}

// report judges one object from its live copy, what meshcd wants of it,
// and the snapshot.
func (s *snapshot) report(gk schema.GroupKind, object string, desired, live *unstructured.Unstructured) (Report, bool) {
	r := Report{Object: object}
	switch gk {
	case ambient.GatewayGK:
		if class, _, _ := unstructured.NestedString(intent(desired, live), "gatewayClassName"); class != ambient.WaypointClass {
			return r, false
		}
		k := ref{deploymentGVK.GroupKind(), live.GetNamespace(), live.GetName()}
		ready, reason := waypointState(live.GetNamespace(), live.GetName(), live, s.deployments[k], s.readyServices[k])
		r.Healthy, r.Pending, r.Message = ready, !ready, reason
	case ambient.ServiceGK:
		// A Service uses a waypoint through its own label or, without
		// one, its namespace's; istiod writes WaypointBound on every such
		// Service, True once bound and False with the reason it is not
		// (pilot/pkg/serviceregistry/ambient/waypoints.go
		// fetchWaypointForTarget, pilot/pkg/model/service.go
		// GetConditions). One in a namespace meshcd has enrolled is
		// pending until then.
		w := live.GetLabels()[ambient.LabelUseWaypoint]
		status := apply.Status(live)
		bound := findCondition(conditions(status, "conditions"), ambient.ConditionWaypointBound) != nil
		if w == "none" || (w == "" && !bound && !s.enrolled[live.GetNamespace()]) {
			return r, false
		}
		r = conditionReport(status, r, ambient.ConditionWaypointBound)
	case ambient.AuthorizationPolicyGK:
		status := apply.Status(live)
		r = conditionReport(status, r, ambient.ConditionZtunnelAccepted, ambient.ConditionWaypointAccepted)
		if !r.Healthy && !r.Pending {
			r = s.awaitBinding(desired, live, status, r)
		}
	case ambient.HTTPRouteGK:
		r = routeReport(apply.Status(live), r)
	default:
		return r, false
	}
	return r, true
}

// intent is the spec a report reads an object's purpose from: the desired
// object's, or the live one's when desired only names the object (meshcd
// status judges the inventory's entries). A live copy from an informer may
// have no spec at all (apply.Desired.Slim).
func intent(desired, live *unstructured.Unstructured) map[string]any {
	if spec, ok := desired.Object["spec"].(map[string]any); ok {
		return spec
	}
	spec, _ := live.Object["spec"].(map[string]any)
	return spec
}

// judgedAlone reports whether report judged r from the live object alone,
// so that the verdict holds while that object is unchanged. It must match
// what report reads: a waypoint Gateway's verdict also reads its Deployment
// and endpoints, a refused AuthorizationPolicy's its target Service, and a
// Service without istiod's WaypointBound its namespace's labels.
func judgedAlone(gk schema.GroupKind, r Report, reported bool) bool {
	switch gk {
	case ambient.GatewayGK:
		return false
	case ambient.AuthorizationPolicyGK:
		return r.Healthy
	case ambient.ServiceGK:
		return reported && !r.Pending
	}
	return true
}

// usesWaypoint reports whether a Namespace sends its Services to a waypoint
// by its istio.io/use-waypoint label.
func usesWaypoint(ns *unstructured.Unstructured) bool {
	for _, e := range apply.Enrollments(ns) {
		if e.Label == ambient.LabelUseWaypoint {
			return true
		}
	}
	return false
}

// awaitBinding turns an AuthorizationPolicy that istiod refused only because
// its target Service is not bound to a waypoint into a pending report while
// that Service is meshcd's and its binding is still on the way: the policy's
// status was computed before the binding and will be rewritten after it.
func (s *snapshot) awaitBinding(desired, live *unstructured.Unstructured, status map[string]any, r Report) Report {
	cond := findCondition(conditions(status, "conditions"), ambient.ConditionWaypointAccepted)
	if cond == nil || cond.Reason != ambient.ReasonAncestorNotBound {
		return r
	}
	refs, _, _ := unstructured.NestedSlice(intent(desired, live), "targetRefs")
	for _, t := range refs {
		tm, _ := t.(map[string]any)
		if kind, _ := tm["kind"].(string); kind != "Service" {
			continue
		}
		name, _ := tm["name"].(string)
		svc := s.objects[ref{ambient.ServiceGK, live.GetNamespace(), name}]
		if svc == nil {
			continue
		}
		if bound := findCondition(conditions(apply.Status(svc), "conditions"), ambient.ConditionWaypointBound); bound == nil || !bound.Healthy() {
			r.Healthy, r.Pending = false, true
			r.Message = fmt.Sprintf("waiting for Service %s/%s to bind to its waypoint; istiod says%s", live.GetNamespace(), name, cond.detail())
			return r
		}
	}
	return r
}

// routeReport judges an HTTPRoute by the conditions of each of its
// parents in its status.
func routeReport(status map[string]any, r Report) Report {
	parents, _, _ := unstructured.NestedSlice(status, "parents")
	if len(parents) == 0 {
		r.Pending, r.Message = true, "istiod has not reported on the route's parents yet"
		return r
	}
	var bad []string
	for _, p := range parents {
		pm, ok := p.(map[string]any)
		if !ok {
			continue
		}
		for _, cond := range conditions(pm, "conditions") {
			switch cond.Type {
			case ambient.ConditionAccepted, ambient.ConditionResolvedRefs, ambient.ConditionResolvedWaypoints:
				if !cond.Healthy() {
					bad = append(bad, cond.Type+cond.detail())
				}
			}
		}
	}
	r.Healthy, r.Message = len(bad) == 0, strings.Join(bad, "; ")
	return r
}

// conditionReport judges the named conditions of an object's status; at least one
// of them must be present, else the report is pending.
func conditionReport(status map[string]any, r Report, types ...string) Report {
	conds := conditions(status, "conditions")
	var found, bad []string
	for _, t := range types {
		cond := findCondition(conds, t)
		if cond == nil {
			continue
		}
		found = append(found, t)
		if !cond.Healthy() {
			bad = append(bad, t+cond.detail())
		}
	}
	if len(found) == 0 {
		r.Pending, r.Message = true, fmt.Sprintf("istiod has not reported %s yet", strings.Join(types, " or "))
		return r
	}
	r.Healthy, r.Message = len(bad) == 0, strings.Join(bad, "; ")
	return r
}
