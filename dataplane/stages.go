package dataplane

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/meshspec"
)

// View is what preflight and stage resolution see: the live namespaces with
// their labels, and the waypoint Gateways meshcd renders, by namespace.
type View struct {
	Namespaces map[string]map[string]string
	Waypoints  map[string][]string
}

// WaypointsOf indexes the waypoint Gateways among rendered objects.
func WaypointsOf(objs []*unstructured.Unstructured) map[string][]string {
	out := map[string][]string{}
	for _, o := range objs {
		if isWaypoint(o) {
			out[o.GetNamespace()] = append(out[o.GetNamespace()], o.GetName())
		}
	}
	return out
}

func isWaypoint(o *unstructured.Unstructured) bool {
	if o.GroupVersionKind().GroupKind() != ambient.GatewayGK {
		return false
	}
	class, _, _ := unstructured.NestedString(o.Object, "spec", "gatewayClassName")
	return class == ambient.WaypointClass
}

// Stage is a waypoint stage resolved to the namespaces it moves.
type Stage struct {
	meshspec.Stage
	// Resolved lists the stage's namespaces, sorted.
	Resolved []string
}

// Preflight checks a rollout before it starts and resolves its stages: the
// bundle exists, istiod can serve it, every stage names namespaces that
// exist and have a waypoint, no namespace is in two stages, no stage is
// empty, and promote names a manual stage. istiod may be empty when its
// version is unknown; the skew is then not checked. All failures are
// returned together.
func Preflight(r *meshspec.DataplaneRollout, istiod string, v View) (Bundle, []Stage, error) {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("DataplaneRollout %s: "+format, append([]any{r.Name}, args...)...))
	}
	b, err := Lookup(r.Spec.Bundle)
	if err != nil {
		fail("%v", err)
	} else if istiod != "" {
		if err := CheckSkew(istiod, b.Version); err != nil {
			fail("%v", err)
		}
	}
	var stages []Stage
	taken := map[string]string{}
	manual := map[string]bool{}
	var restStages []int
	if r.Spec.Waypoints != nil {
		for i, s := range r.Spec.Waypoints.Stages {
			st := Stage{Stage: s}
			if s.Name == "" {
				fail("stage %d has no name; name it so that status and promote can refer to it", i+1)
			}
			if s.Approval == meshspec.ApprovalManual {
				manual[s.Name] = true
			}
			var sel labels.Selector
			if s.Selector != nil {
				if sel, err = metav1.LabelSelectorAsSelector(s.Selector); err != nil {
					fail("stage %s: selector: %v", s.Name, err)
					continue
				}
			}
			rest := false
			pick := map[string]bool{}
			for _, ns := range s.Namespaces {
				if ns == "*" {
					rest = true
					continue
				}
				if _, ok := v.Namespaces[ns]; !ok {
					fail("stage %s: namespace %s does not exist; create it or take it out of the stage", s.Name, ns)
					continue
				}
				if len(v.Waypoints[ns]) == 0 {
					fail("stage %s: namespace %s has no waypoint; give its MeshNamespace a waypoint or take it out of the stage", s.Name, ns)
					continue
				}
				pick[ns] = true
			}
			for ns := range v.Waypoints {
				if _, live := v.Namespaces[ns]; !live {
					continue
				}
				if sel != nil && sel.Matches(labels.Set(v.Namespaces[ns])) {
					pick[ns] = true
				}
			}
			if rest {
				restStages = append(restStages, len(stages))
			}
			for ns := range pick {
				if prev := taken[ns]; prev != "" && prev != s.Name {
					fail("namespace %s is in stages %s and %s; a namespace moves in one stage", ns, prev, s.Name)
					continue
				}
				taken[ns] = s.Name
				st.Resolved = append(st.Resolved, ns)
			}
			stages = append(stages, st)
		}
	}
	// "*" takes what no stage named, once every stage has picked.
	for _, i := range restStages {
		for ns := range v.Waypoints {
			if _, live := v.Namespaces[ns]; live && taken[ns] == "" {
				taken[ns] = stages[i].Name
				stages[i].Resolved = append(stages[i].Resolved, ns)
			}
		}
	}
	for i := range stages {
		sort.Strings(stages[i].Resolved)
		if len(stages[i].Resolved) == 0 && stages[i].Name != "" {
			fail("stage %s moves no namespace with a waypoint; drop the stage or fix its namespaces", stages[i].Name)
		}
	}
	if p := r.Spec.Promote; p != "" && !manual[p] {
		fail("promote names %q, which is not a manual stage", p)
	}
	if len(errs) > 0 {
		return b, nil, errors.Join(errs...)
	}
	return b, stages, nil
}

// describe is a stage for messages: "canary (staging, shop)".
func (s Stage) describe() string {
	return s.Name + " (" + strings.Join(s.Resolved, ", ") + ")"
}
