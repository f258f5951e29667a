package migrate

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/access"
	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/renderer/rules"
)

// Comparison is the access model computed for the sidecar configuration,
// with sidecar semantics, against the model of every stage as rendered.
type Comparison struct {
	// Callers, Services and Requests are what was compared: every identity
	// of the source, every Service port of the source and the per-version
	// Services the spec adds, and the requests the policies tell apart.
	Callers  int
	Services int
	Requests []access.Request
	// Checked counts the verdicts compared, over every stage.
	Checked int
	// Differences are the verdicts a stage changes.
	Differences []Difference
	// Findings are the rule catalogue's error findings on the stages.
	Findings []StageFinding
}

// StageFinding is an error finding on a stage. Expected says why a
// stage between sidecars and ambient has it on purpose; empty when it
// should not be there.
type StageFinding struct {
	Stage    string
	Finding  rules.Finding
	Expected string
}

// expected says why a finding belongs to a transitional stage: the
// ambient label beside injection while the sidecars win (AMB001), and the
// sidecar-era policies kept for the pods that still have sidecars while
// they restart (AMB020, AMB024): the catalogue does not know that their
// security.istio.io/tlsMode selector leaves ambient pods out.
func (r *Result) expected(s Stage, f rules.Finding) string {
	switch {
	case f.Rule == "AMB001" && s.Step == stepNames[stepAmbient]:
		return "the ambient label beside injection is this stage's point: the sidecars win until the injection stage"
	case (f.Rule == "AMB020" || f.Rule == "AMB024") && s.Step == stepNames[stepInjection]:
		for _, d := range s.Docs {
			if d.until == stepPrune && refOf(d.Object) == f.Object {
				return "a sidecar-era policy kept for the pods that still have sidecars while they restart (its selector requires security.istio.io/tlsMode=istio, which ambient pods lack); the waypoint enforces its copy, and the prune stage removes it"
			}
		}
	}
	return ""
}

// Difference is one (caller, service, request) a stage decides otherwise.
type Difference struct {
	Stage   string
	From    access.Identity
	To      access.Destination
	Request access.Request
	// Before is the sidecar configuration's verdict, After the stage's.
	Before, After access.Verdict
	// Widens says the stage lets through what the sidecars did not.
	Widens bool
}

// compare builds the sidecar model and checks every stage against it.
func (r *Result) compare() (Comparison, error) {
	var c Comparison
	final, err := r.render(r.Spec)
	if err != nil {
		return c, fmt.Errorf("the spec does not render, a defect of meshcd migrate: %w", err)
	}
	// The per-version Services the spec adds reach pods the sidecars
	// already guarded: in the sidecar model they are plain Services.
	objs := append([]*unstructured.Unstructured{}, r.src.objects...)
	for _, o := range final.Objects {
		if o.GetKind() == "Service" && o.GetLabels()[ambient.LabelSpecKind] != "" && r.src.services[o.GetNamespace()+"/"+o.GetName()] == nil {
			objs = append(objs, o)
		}
	}
	before, err := r.model(objs)
	if err != nil {
		return c, err
	}
	callers := before.Identities()
	reqs := requests(r.src.objects)
	c.Callers, c.Requests = len(callers), reqs
	for _, s := range r.Stages {
		b, err := r.render(s.Docs)
		if err != nil {
			return c, fmt.Errorf("stage %s does not render, a defect of meshcd migrate: %w", s.Name, err)
		}
		objs := r.withContext(b.Objects)
		for _, f := range rules.Check(b.Objects, rules.Options{Origin: b.Origin, Context: r.context()}) {
			if f.Severity == rules.SeverityError {
				c.Findings = append(c.Findings, StageFinding{Stage: s.Name, Finding: f, Expected: r.expected(s, f)})
			}
		}
		after, err := r.model(objs)
		if err != nil {
			return c, err
		}
		dests := r.destinations(before, after)
		c.Services = len(dests)
		for _, pair := range dests {
			for _, req := range reqs {
				for _, id := range callers {
					bv, av := before.Check(id, pair.before, req), after.Check(id, pair.after, req)
					c.Checked++
					widens := av.Decision == access.Allow && bv.Decision != access.Allow || bv.Decision == access.Deny && av.Decision != access.Deny
					// A per-version Service is new: no one called it in the
					// sidecar mesh, so only what it lets through counts.
					if bv.Decision != av.Decision && (widens || !pair.added) {
						c.Differences = append(c.Differences, Difference{Stage: s.Name, From: id, To: pair.after, Request: req, Before: bv, After: av, Widens: widens})
					}
				}
			}
		}
	}
	return c, nil
}

// model builds the access model with sidecar semantics: a pod with a
// sidecar is decided at it, an ambient pod at ztunnel and its waypoint.
func (r *Result) model(objs []*unstructured.Unstructured) (*access.Model, error) {
	return access.Build(append(r.assumedNamespaces(objs), objs...), access.Options{RootNamespace: r.opts.RootNamespace, TrustDomain: r.opts.TrustDomain, Sidecars: true})
}

// assumedNamespaces are the Namespaces the source holds no object for,
// labelled for injection as a sidecar-mode source has them; objs come
// after them and override them.
func (r *Result) assumedNamespaces(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, ns := range r.Assumed {
		out = append(out, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{"name": ns, "labels": map[string]any{ambient.LabelInjection: "enabled"}}}})
	}
	return out
}

// context are the objects a stage leaves to their owners: the
// application's, with the assumed Namespaces.
func (r *Result) context() []*unstructured.Unstructured {
	return append(r.assumedNamespaces(nil), r.src.apps...)
}

// withContext is what the cluster holds once a stage is applied: the
// application's objects, with the labels meshcd writes on Namespaces and
// Services it does not own, and the stage's own objects.
func (r *Result) withContext(rendered []*unstructured.Unstructured) []*unstructured.Unstructured {
	byRef := map[string]*unstructured.Unstructured{}
	var out []*unstructured.Unstructured
	for _, o := range r.context() {
		c := o.DeepCopy()
		byRef[c.GetKind()+"/"+c.GetNamespace()+"/"+c.GetName()] = c
		out = append(out, c)
	}
	for _, o := range rendered {
		kind := o.GetKind()
		if existing := byRef[kind+"/"+o.GetNamespace()+"/"+o.GetName()]; existing != nil && (kind == "Namespace" || kind == "Service") {
			labels := existing.GetLabels()
			if labels == nil {
				labels = map[string]string{}
			}
			for k, v := range o.GetLabels() {
				labels[k] = v
			}
			existing.SetLabels(labels)
			continue
		}
		out = append(out, o)
	}
	return out
}

// destPair is a destination of a stage and of the sidecar configuration.
type destPair struct {
	before, after access.Destination
	// added is a Service the spec adds (a per-version Service): no one
	// called it in the sidecar mesh.
	added bool
}

// destinations pairs the Service ports of a stage with the sidecar
// model's.
func (r *Result) destinations(before, after *access.Model) []destPair {
	known := map[string]access.Destination{}
	for _, d := range before.Destinations() {
		known[d.String()] = d
	}
	var out []destPair
	for _, d := range after.Destinations() {
		if b, ok := known[d.String()]; ok {
			out = append(out, destPair{before: b, after: d, added: r.src.services[d.Namespace+"/"+d.Service] == nil})
		}
	}
	return out
}

// requests are the requests the source's policies tell apart: every
// method and path they name (a pattern stands for a path it matches), and
// GET and POST on / for the rest.
func requests(objs []*unstructured.Unstructured) []access.Request {
	methods, paths := map[string]bool{"GET": true, "POST": true}, map[string]bool{"/": true}
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind() != ambient.AuthorizationPolicyGK {
			continue
		}
		rs, _, _ := unstructured.NestedSlice(o.Object, "spec", "rules")
		for _, raw := range rs {
			to, _ := nested(raw, "to").([]any)
			for _, t := range to {
				op, _ := nested(t, "operation").(map[string]any)
				for _, m := range append(stringList(op["methods"]), stringList(op["notMethods"])...) {
					methods[m] = true
				}
				for _, p := range append(stringList(op["paths"]), stringList(op["notPaths"])...) {
					paths[samplePath(p)] = true
				}
			}
		}
	}
	var out []access.Request
	for _, m := range slices.Sorted(maps.Keys(methods)) {
		for _, p := range slices.Sorted(maps.Keys(paths)) {
			out = append(out, access.Request{Method: m, Path: p})
		}
	}
	return out
}

// samplePath is a path a pattern matches: "/api/*" → "/api/x".
func samplePath(p string) string {
	switch {
	case p == "*":
		return "/x"
	case strings.HasSuffix(p, "*"):
		return strings.TrimSuffix(p, "*") + "x"
	case strings.HasPrefix(p, "*"):
		return "/x" + strings.TrimPrefix(p, "*")
	}
	return p
}

// Widening counts the differences that let more through.
func (c Comparison) Widening() int {
	n := 0
	for _, d := range c.Differences {
		if d.Widens {
			n++
		}
	}
	return n
}

// Unexpected lists the error findings no stage has on purpose.
func (c Comparison) Unexpected() []StageFinding {
	var out []StageFinding
	for _, f := range c.Findings {
		if f.Expected == "" {
			out = append(out, f)
		}
	}
	return out
}
