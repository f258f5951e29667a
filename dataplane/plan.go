package dataplane

import (
	"fmt"
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/meshspec"
)

// Moves says, a line per DataplaneRollout, what merging head over base does
// to the data plane: which stage starts, and which namespaces and nodes it
// touches. objs is the head's render; a namespace counts as existing when
// the head renders it.
func Moves(base, head []*meshspec.DataplaneRollout, objs []*unstructured.Unstructured) []string {
	v := View{Namespaces: map[string]map[string]string{}, Waypoints: WaypointsOf(objs)}
	for _, o := range objs {
		if o.GetKind() == "Namespace" && o.GetAPIVersion() == "v1" {
			v.Namespaces[o.GetName()] = o.GetLabels()
		}
	}
	for ns := range v.Waypoints {
		if _, ok := v.Namespaces[ns]; !ok {
			v.Namespaces[ns] = nil
		}
	}
	before := map[string]*meshspec.DataplaneRollout{}
	for _, r := range base {
		before[r.Name] = r
	}
	var out []string
	for _, r := range head {
		b := before[r.Name]
		delete(before, r.Name)
		if b != nil && reflect.DeepEqual(b.Spec, r.Spec) {
			continue
		}
		line := "DataplaneRollout " + r.Name + ": "
		_, stages, err := Preflight(r, "", v)
		if err != nil {
			out = append(out, line+"would not start: "+strings.ReplaceAll(err.Error(), "\n", "; "))
			continue
		}
		switch {
		case b == nil:
			line += fmt.Sprintf("new, to bundle %s; ", r.Spec.Bundle)
		case b.Spec.Bundle != r.Spec.Bundle:
			line += fmt.Sprintf("bundle %s → %s, starting over from the first stage; ", b.Spec.Bundle, r.Spec.Bundle)
		case r.Spec.Promote != "" && b.Spec.Promote != r.Spec.Promote:
			for _, s := range stages {
				if s.Name == r.Spec.Promote {
					out = append(out, line+"promotes stage "+s.describe()+", which starts on merge")
				}
			}
			continue
		default:
			line += "stages changed; "
		}
		out = append(out, line+describeStages(r, stages))
	}
	for name := range before {
		out = append(out, "DataplaneRollout "+name+": removed; the images it pinned stay until another rollout moves them")
	}
	return out
}

// describeStages is the stage order with each stage's namespaces, which
// stage starts first, and the ztunnel stage's nodes.
func describeStages(r *meshspec.DataplaneRollout, stages []Stage) string {
	var parts []string
	for _, s := range stages {
		d := s.describe()
		if s.Approval == meshspec.ApprovalManual {
			d += " [manual]"
		}
		if s.Strategy == meshspec.StrategyCanary {
			var w []string
			for _, x := range s.Steps {
				w = append(w, fmt.Sprint(x))
			}
			d += " [canary " + strings.Join(w, "→") + "%, then promote]"
		}
		parts = append(parts, d)
	}
	if z := r.Spec.Ztunnel; z != nil {
		parts = append(parts, fmt.Sprintf("ztunnel on every node, %s (maxUnavailable %d)", z.Strategy, z.MaxUnavailable))
	}
	s := "stages " + strings.Join(parts, " → ")
	switch {
	case len(stages) == 0 && r.Spec.Ztunnel != nil:
		return s + "; merging starts with ztunnel"
	case len(stages) == 0:
		return s + "; nothing to move"
	case stages[0].Approval == meshspec.ApprovalManual && r.Spec.Promote != stages[0].Name:
		return s + "; stage " + stages[0].Name + " waits for `promote: " + stages[0].Name + "`"
	}
	return s + "; merging starts stage " + stages[0].describe()
}
