package migrate

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/meshspec"
	"github.com/meshcd/meshcd/renderer"
)

// Result is a planned move.
type Result struct {
	// Source is the directory read.
	Source string
	// Namespaces are the namespaces enrolled, in stage order, and Assumed
	// those taken as sidecar-injected for want of their Namespace object.
	Namespaces, Assumed []string
	// Spec is the repository after the last stage.
	Spec []*Document
	// Stages are the repository after each stage, in order.
	Stages []Stage
	// Items are what does not carry over as it was.
	Items []Item
	// Access is the comparison of the sidecar configuration with every
	// stage.
	Access Comparison

	docs []*Document
	src  *source
	opts Options
	// waypoints says which namespaces get a waypoint.
	waypoints map[string]bool
}

// Stage is the repository after one commit of the move.
type Stage struct {
	// Name is NN-namespace-step.
	Name      string
	Namespace string
	Step      string
	Docs      []*Document
	// Then is what the operator does and checks after merging it.
	Then string
}

// Migrate reads dir, a sidecar-mode Istio configuration, and plans its
// move to ambient.
func Migrate(dir string, opts Options) (*Result, error) {
	src, err := load(dir, opts)
	if err != nil {
		return nil, err
	}
	t := &translator{opts: opts, src: src, namespaces: map[string]*meshspec.MeshNamespace{}, services: map[string]*meshspec.MeshService{},
		waypoint: map[string][]string{}, subsets: map[string]map[string]map[string]string{}, rules: map[string]*unstructured.Unstructured{},
		routed: map[string]bool{}, kept: map[string]bool{}, ingress: map[string]bool{}}
	t.translate()
	sort.SliceStable(t.items, func(i, j int) bool {
		a, b := t.items[i].Position, t.items[j].Position
		return a.File < b.File || a.File == b.File && a.Line < b.Line
	})
	r := &Result{Source: dir, Namespaces: slices.Sorted(maps.Keys(t.namespaces)), docs: t.docs, Items: t.items, src: src, opts: opts, waypoints: map[string]bool{}}
	for ns, n := range t.namespaces {
		r.waypoints[ns] = n.Spec.Waypoint != nil
	}
	for _, ns := range r.Namespaces {
		if src.namespaces[ns] == nil {
			r.Assumed = append(r.Assumed, ns)
		}
	}
	if err := r.stageRendered(); err != nil {
		return nil, err
	}
	for _, d := range r.docs {
		if d.until == stepEnd {
			r.Spec = append(r.Spec, d)
		}
	}
	r.stages()
	if r.Access, err = r.compare(); err != nil {
		return nil, err
	}
	return r, nil
}

// stageRendered adds, for the stages before the spec documents arrive, the
// waypoint Gateway and the policies the spec documents render, as plain
// copies: the waypoint is ready and enforcing before any label sends
// traffic to it, and the spec documents then take over the same objects.
func (r *Result) stageRendered() error {
	var final []*Document
	for _, d := range r.docs {
		if d.until == stepEnd {
			final = append(final, d)
		}
	}
	b, err := r.render(final)
	if err != nil {
		return fmt.Errorf("the generated spec does not render, a defect of meshcd migrate: %w", err)
	}
	for _, o := range b.Objects {
		if o.GetLabels()[ambient.LabelSpecKind] == "" {
			continue
		}
		from := stepPolicies
		switch o.GroupVersionKind().GroupKind() {
		case ambient.GatewayGK:
			from = stepWaypoint
		case ambient.AuthorizationPolicyGK, ambient.RequestAuthenticationGK:
		default:
			continue
		}
		r.docs = append(r.docs, &Document{Namespace: o.GetNamespace(), Object: plainCopy(o), from: from, until: stepAmbient,
			Why: "what " + o.GetLabels()[ambient.LabelSpecKind] + " " + o.GetLabels()[ambient.LabelSpecName] + " renders, placed before it; it takes the object over in the ambient stage"})
	}
	return nil
}

// render writes docs to a scratch directory and renders it.
func (r *Result) render(docs []*Document) (*renderer.Bundle, error) {
	dir, err := os.MkdirTemp("", "meshcd-migrate-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := writeDir(dir, docs); err != nil {
		return nil, err
	}
	return renderer.Render(dir, r.opts.render())
}

// then is what follows each step's merge.
var then = map[step]string{
	stepWaypoint:  "wait until Gateway {ns}/waypoint is Programmed and its Deployment has a ready replica (`kubectl -n {ns} wait --for=condition=Programmed gateway/waypoint`)",
	stepPolicies:  "the waypoint policies exist but are not in force yet: istiod reports WaypointAccepted=False until their Services are bound to the waypoint in the next stage (WaypointPolicyStatusCollection in pilot/pkg/serviceregistry/ambient/policies.go); the sidecars still enforce the old policies",
	stepAmbient:   "the pods keep their sidecars while injection is on; meshcd writes istio.io/use-waypoint only once the waypoint is ready; check that istiod now accepts the waypoint policies (`meshcd status`: WaypointAccepted=True). Until the prune stage, istiod marks an old selector policy with HTTP rules ZtunnelAccepted with reason UnsupportedValue, so `meshcd status` reports it unhealthy: expected, the sidecars enforce it",
	stepInjection: "this stage changes the istio-injection label another tool set: apply it with `meshcd apply --force` (meshcd run applies with force); then restart the workloads of {ns} (`kubectl -n {ns} rollout restart deployment`) and wait until no pod has an istio-proxy container",
	stepPrune:     "the sidecar-era policies are pruned; if the mass-prune guard holds them, allow exactly that digest (`meshcd allow-prune`)",
}

// stages lays the documents out as one repository state per commit,
// namespace by namespace; a step that changes nothing is left out.
func (r *Result) stages() {
	index := map[string]int{}
	for i, ns := range r.Namespaces {
		index[ns] = i
	}
	at := func(ns string, s step) int { return index[ns]*int(stepEnd) + int(s) }
	var prev []*Document
	for _, ns := range r.Namespaces {
		for s := stepWaypoint; s < stepEnd; s++ {
			now := at(ns, s)
			var docs []*Document
			for _, d := range r.docs {
				_, staged := index[d.Namespace]
				if !staged || at(d.Namespace, d.from) <= now && (d.until == stepEnd || now < at(d.Namespace, d.until)) {
					docs = append(docs, d)
				}
			}
			if slices.Equal(docs, prev) {
				continue
			}
			prev = docs
			name, next := stepNames[s], then[s]
			if s == stepWaypoint && !r.waypoints[ns] {
				name, next = "adopt", "check with `meshcd diff` that nothing changes"
			}
			r.Stages = append(r.Stages, Stage{Name: fmt.Sprintf("%02d-%s-%s", len(r.Stages)+1, ns, name), Namespace: ns, Step: name,
				Docs: docs, Then: strings.ReplaceAll(next, "{ns}", ns)})
		}
	}
}

// Write writes the move under dir: spec/, the repository after the last
// stage; stages/NN-namespace-step/, the repository after each commit; and
// MIGRATION.md, the report. It refuses a dir that holds any of them.
func (r *Result) Write(dir string) error {
	for _, name := range []string{"spec", "stages", "MIGRATION.md"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return fmt.Errorf("output directory %s already holds %s: name a new or empty directory", dir, name)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeDir(filepath.Join(dir, "spec"), r.Spec); err != nil {
		return err
	}
	for _, s := range r.Stages {
		if err := writeDir(filepath.Join(dir, "stages", s.Name), s.Docs); err != nil {
			return err
		}
	}
	f, err := os.Create(filepath.Join(dir, "MIGRATION.md"))
	if err != nil {
		return err
	}
	if err := r.WriteReport(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
