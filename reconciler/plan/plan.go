package plan

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/meshcd/meshcd/dataplane"
	"github.com/meshcd/meshcd/meshspec"
	"github.com/meshcd/meshcd/reconciler/apply"
	"github.com/meshcd/meshcd/renderer"
	"github.com/meshcd/meshcd/renderer/rules"
	"github.com/meshcd/meshcd/renderer/traffic"
)

// Action is what the head does to one object.
type Action string

// Actions.
const (
	Added   Action = "added"
	Changed Action = "changed"
	Removed Action = "removed"
)

// Change is one object the head adds, changes or removes.
type Change struct {
	Object string `json:"object"`
	Action Action `json:"action"`
	// Diff is a unified diff of the object's YAML, base to head.
	Diff string `json:"diff"`
}

// Plan is what merging the head would do.
type Plan struct {
	Base string `json:"base"`
	Head string `json:"head"`
	// Access lists who gains and who loses access, before the objects:
	// "+ shop/web → shop/orders: DELETE /api/* (waypoint)".
	Access  []string `json:"access,omitempty"`
	Changes []Change `json:"changes"`
	// Introduced are findings the head has and the base has not; Fixed the reverse.
	Introduced []rules.Finding `json:"introduced"`
	Fixed      []rules.Finding `json:"fixed"`
	// Rollouts say, a line each, what the head does to each
	// DataplaneRollout: its stages in order with their namespaces and
	// gates, the ztunnel nodes, what the merge starts and where it stops.
	Rollouts []string `json:"rollouts,omitempty"`
	// Order says which waypoint labels wait for their waypoint to be ready,
	// and which waypoints are deleted only after the labels move off.
	Order []string `json:"order,omitempty"`
	// Traffic says how each changed route rule moves requests, base to head.
	Traffic []Shift `json:"traffic,omitempty"`
	// Live is the head's diff against the cluster, when one was asked for.
	Live []string `json:"live,omitempty"`
	// Notes are the head's render notes: the files it did not read, and
	// its warnings.
	renderer.Notes
	// LiveMissing says why the live diff that was asked for is missing.
	LiveMissing string `json:"liveMissing,omitempty"`
}

// Shift is one route rule whose traffic shares the head changes.
type Shift struct {
	// Route is the route's "Kind namespace/name".
	Route string `json:"route"`
	// Match says which requests the rule takes.
	Match string `json:"match"`
	// Before and After are the shares, such as "orders-v1 90%, orders-v2
	// 10%"; "none" where the rule does not exist.
	Before string `json:"before"`
	After  string `json:"after"`
}

// HasChanges reports whether merging the head changes any object.
func (p *Plan) HasChanges() bool { return len(p.Changes) > 0 || len(p.Rollouts) > 0 }

// Options configure Compute.
type Options struct {
	// Render configures the renderer for both sides.
	Render renderer.Options
	// ZtunnelNodes are the nodes the live ztunnel DaemonSet runs on
	// (dataplane.ZtunnelNodes), named in a rollout's ztunnel stage; nil
	// when the plan has no cluster to ask.
	ZtunnelNodes []string
}

// DefaultOptions plans without a cluster.
func DefaultOptions() Options { return Options{Render: renderer.DefaultOptions()} }

// IntroducesErrors reports whether the head has an error finding the base
// has not.
func (p *Plan) IntroducesErrors() bool { return rules.HasErrors(p.Introduced) }

// Compute renders both directories and compares them. base may be empty,
// for a repository whose base has no spec yet.
func Compute(baseRev, baseDir, headRev, headDir string, opts Options) (*Plan, error) {
	p := &Plan{Base: baseRev, Head: headRev, Changes: []Change{}, Introduced: []rules.Finding{}, Fixed: []rules.Finding{}}
	var before []*unstructured.Unstructured
	var beforeRollouts []*meshspec.DataplaneRollout
	var beforeFindings []rules.Finding
	if baseDir != "" {
		b, err := renderer.Render(baseDir, opts.Render)
		if err != nil {
			return nil, fmt.Errorf("base %s does not render: %w", baseRev, err)
		}
		before, beforeFindings = b.Objects, rules.Check(b.Objects, rules.Options{Origin: b.Origin})
		beforeRollouts = b.Spec.Rollouts
	}
	h, err := renderer.Render(headDir, opts.Render)
	if err != nil {
		return nil, fmt.Errorf("head %s does not render: %w", headRev, err)
	}
	p.Notes = h.Notes
	afterFindings := rules.Check(h.Objects, rules.Options{Origin: h.Origin})
	p.Changes, err = compare(before, h.Objects)
	if err != nil {
		return nil, err
	}
	if p.Access, err = accessChanges(before, h.Objects); err != nil {
		return nil, err
	}
	p.Traffic = shifts(before, h.Objects)
	p.Order = apply.Sequence(before, h.Objects)
	p.Rollouts = dataplane.Moves(beforeRollouts, h.Spec.Rollouts, h.Objects, opts.ZtunnelNodes)
	p.Introduced = append(subtract(afterFindings, beforeFindings), rules.CheckChange(before, h.Objects, rules.Options{Origin: h.Origin})...)
	p.Fixed = subtract(beforeFindings, afterFindings)
	return p, nil
}

// shifts lists the route rules whose shares differ between before and
// after. A rule is known by its match (and, for rules with the same match,
// their order), so that a rule inserted above it does not make it look moved.
func shifts(before, after []*unstructured.Unstructured) []Shift {
	splits := func(objs []*unstructured.Unstructured) (map[string]map[string]traffic.Rule, []string) {
		out := map[string]map[string]traffic.Rule{}
		var order []string
		for _, o := range objs {
			rules := traffic.Split(o)
			if rules == nil {
				continue
			}
			name := meshspec.RefOf(o).String()
			seen := map[string]int{}
			byMatch := map[string]traffic.Rule{}
			for _, r := range rules {
				k := fmt.Sprintf("%s\x00%d", r.Match, seen[r.Match])
				seen[r.Match]++
				byMatch[k] = r
				order = append(order, name+"\x01"+k)
			}
			out[name] = byMatch
		}
		return out, order
	}
	b, bOrder := splits(before)
	a, aOrder := splits(after)
	var out []Shift
	seen := map[string]bool{}
	for _, id := range append(aOrder, bOrder...) {
		if seen[id] {
			continue
		}
		seen[id] = true
		route, k, _ := strings.Cut(id, "\x01")
		from, inBase := b[route][k]
		to, inHead := a[route][k]
		s := Shift{Route: route, Before: "none", After: "none"}
		if inBase {
			s.Match, s.Before = from.Match, from.Shares()
		}
		if inHead {
			s.Match, s.After = to.Match, to.Shares()
		}
		if s.Before != s.After {
			out = append(out, s)
		}
	}
	return out
}

// compare diffs two sorted object lists by identity.
func compare(before, after []*unstructured.Unstructured) ([]Change, error) {
	index := func(objs []*unstructured.Unstructured) map[meshspec.Ref]*unstructured.Unstructured {
		m := make(map[meshspec.Ref]*unstructured.Unstructured, len(objs))
		for _, o := range objs {
			m[meshspec.RefOf(o)] = o
		}
		return m
	}
	b, a := index(before), index(after)
	refs := make([]meshspec.Ref, 0, len(a)+len(b))
	for r := range a {
		refs = append(refs, r)
	}
	for r := range b {
		if _, ok := a[r]; !ok {
			refs = append(refs, r)
		}
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].String() < refs[j].String() })
	changes := []Change{}
	for _, r := range refs {
		from, err := toYAML(b[r])
		if err != nil {
			return nil, err
		}
		to, err := toYAML(a[r])
		if err != nil {
			return nil, err
		}
		if from == to {
			continue
		}
		c := Change{Object: r.String(), Action: Changed}
		switch {
		case b[r] == nil:
			c.Action = Added
		case a[r] == nil:
			c.Action = Removed
		}
		c.Diff, err = difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A: difflib.SplitLines(from), B: difflib.SplitLines(to), FromFile: "base", ToFile: "head", Context: 3,
		})
		if err != nil {
			return nil, fmt.Errorf("%s diff failed: %w", r, err)
		}
		changes = append(changes, c)
	}
	return changes, nil
}

func toYAML(o *unstructured.Unstructured) (string, error) {
	if o == nil {
		return "", nil
	}
	y, err := yaml.Marshal(o.Object)
	if err != nil {
		return "", fmt.Errorf("%s %s encode failed: %w", o.GetKind(), o.GetName(), err)
	}
	return string(y), nil
}

// subtract returns the findings of a that b does not have, matched by rule,
// object and message (lines move when files are edited).
func subtract(a, b []rules.Finding) []rules.Finding {
	key := func(f rules.Finding) string { return f.Rule + "\x00" + f.Object + "\x00" + f.Message }
	have := make(map[string]bool, len(b))
	for _, f := range b {
		have[key(f)] = true
	}
	out := []rules.Finding{}
	for _, f := range a {
		if !have[key(f)] {
			out = append(out, f)
		}
	}
	return out
}

// Summary is one line such as "2 added, 1 changed, 0 removed".
func (p *Plan) Summary() string {
	n := map[Action]int{}
	for _, c := range p.Changes {
		n[c.Action]++
	}
	findings := "findings"
	if len(p.Introduced) == 1 {
		findings = "finding"
	}
	access := "access changes"
	if len(p.Access) == 1 {
		access = "access change"
	}
	return fmt.Sprintf("%d %s; %d added, %d changed, %d removed; %d %s introduced, %d fixed",
		len(p.Access), access, n[Added], n[Changed], n[Removed], len(p.Introduced), findings, len(p.Fixed))
}

// Text renders the plan for a terminal.
func (p *Plan) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "plan %s -> %s: %s\n", p.Base, p.Head, p.Summary())
	for _, l := range p.Access {
		fmt.Fprintf(&b, "access: %s\n", l)
	}
	for _, f := range p.Introduced {
		fmt.Fprintf(&b, "+ finding %s %s %s: %s\n", f.Severity, f.Rule, f.Object, f.Message)
	}
	for _, f := range p.Fixed {
		fmt.Fprintf(&b, "- finding %s %s %s (fixed)\n", f.Severity, f.Rule, f.Object)
	}
	for _, c := range p.Changes {
		fmt.Fprintf(&b, "%s %s\n%s", symbol(c.Action), c.Object, c.Diff)
	}
	for _, s := range p.Traffic {
		fmt.Fprintf(&b, "traffic: %s (%s): %s -> %s\n", s.Route, s.Match, s.Before, s.After)
	}
	for _, l := range p.Order {
		fmt.Fprintf(&b, "order: %s\n", l)
	}
	for _, l := range p.Rollouts {
		fmt.Fprintf(&b, "rollout: %s\n", l)
	}
	for _, l := range p.Live {
		fmt.Fprintf(&b, "live: %s\n", l)
	}
	if p.LiveMissing != "" {
		fmt.Fprintf(&b, "live: missing: %s\n", p.LiveMissing)
	}
	return b.String()
}

func symbol(a Action) string {
	switch a {
	case Added:
		return "+"
	case Removed:
		return "-"
	}
	return "~"
}
