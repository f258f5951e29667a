package rules

import (
	_ "embed"
	"fmt"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/meshcd/meshcd/meshspec"
)

// Severity is how bad a finding is.
type Severity string

// Severities.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityInfo    Severity = "info"
)

// Finding is one rule broken by one object.
type Finding struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	// Object is "Kind namespace/name", with the namespace kubectl would use
	// ("default" when the manifest names none), or "Kind name" for a Namespace.
	Object string `json:"object"`
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	// Message says what is wrong and what to do.
	Message string `json:"message"`
}

// Rule is one entry of the catalogue.
type Rule struct {
	ID       string   `json:"id"`
	Severity Severity `json:"level"`
	Summary  string   `json:"summary"`
	Template string   `json:"template"`
}

//go:embed catalogue.yaml
var catalogueYAML []byte

var catalogue = func() map[string]Rule {
	var list []Rule
	if err := yaml.UnmarshalStrict(catalogueYAML, &list); err != nil {
		panic(fmt.Sprintf("rules: catalogue.yaml is malformed: %v", err)) // a build defect, caught by every test
	}
	m := make(map[string]Rule, len(list))
	for _, r := range list {
		m[r.ID] = r
	}
	return m
}()

// Catalogue returns every rule, sorted by id.
func Catalogue() []Rule {
	out := make([]Rule, 0, len(catalogue))
	for _, r := range catalogue {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Options tune a check.
type Options struct {
	// Origin returns where an object was read from; nil means unknown.
	Origin func(*unstructured.Unstructured) meshspec.Position
	// Allow lists rule ids whose findings are dropped (--allow-finding).
	Allow []string
	// Context are live objects from the cluster: they resolve references
	// (a Service, a waypoint, a namespace's labels) but are not checked
	// themselves. A rendered object replaces a live one of the same identity.
	Context []*unstructured.Unstructured
}

// HasErrors reports whether any finding is of error level.
func HasErrors(findings []Finding) bool {
	for _, f := range findings {
		if f.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Check runs every rule over objs and returns the findings sorted by file,
// line, rule and object. It never returns nil.
func Check(objs []*unstructured.Unstructured, opts Options) []Finding {
	c := &checker{opts: opts, idx: newIndex(opts.Context, objs), findings: []Finding{}}
	for _, o := range objs {
		kind := o.GroupVersionKind().GroupKind()
		if check, ok := checks[kind]; ok {
			check(c, o)
		}
		if template(o) != nil {
			c.workload(o)
		}
	}
	c.crossRoutes()
	c.accessRules(objs)
	c.sortFindings()
	return c.findings
}

// sortFindings orders the findings by file, line, rule and object.
func (c *checker) sortFindings() {
	sort.SliceStable(c.findings, func(i, j int) bool {
		a, b := c.findings[i], c.findings[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.Object < b.Object
	})
}

// withContext returns the context objects not replaced by a rendered one,
// followed by the rendered objects.
func withContext(context, objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	if len(context) == 0 {
		return objs
	}
	rendered := make(map[string]bool, len(objs))
	id := func(o *unstructured.Unstructured) string {
		return o.GroupVersionKind().GroupKind().String() + "/" + namespaceOf(o) + "/" + o.GetName()
	}
	for _, o := range objs {
		rendered[id(o)] = true
	}
	out := make([]*unstructured.Unstructured, 0, len(context)+len(objs))
	for _, o := range context {
		if !rendered[id(o)] {
			out = append(out, o)
		}
	}
	return append(out, objs...)
}

// checker collects findings.
type checker struct {
	opts     Options
	idx      *index
	findings []Finding
}

// report adds a finding of rule id about obj, filling the rule's template.
func (c *checker) report(id string, obj *unstructured.Unstructured, args ...any) {
	if slices.Contains(c.opts.Allow, id) {
		return
	}
	r, ok := catalogue[id]
	if !ok {
		panic("rules: unknown rule " + id) // a defect in this package, caught by its tests
	}
	f := Finding{Rule: id, Severity: r.Severity, Object: describe(obj), Message: fmt.Sprintf(r.Template, args...)}
	if c.opts.Origin != nil {
		pos := c.opts.Origin(obj)
		f.File, f.Line = pos.File, pos.Line
	}
	c.findings = append(c.findings, f)
}

// str reads a string field, tolerating any shape of input.
func str(obj map[string]any, path ...string) string {
	v, _, _ := unstructured.NestedFieldNoCopy(obj, path...)
	s, _ := v.(string)
	return s
}

// list reads a list field, tolerating any shape of input.
func list(obj map[string]any, path ...string) []any {
	v, _, _ := unstructured.NestedFieldNoCopy(obj, path...)
	l, _ := v.([]any)
	return l
}

// mapping reads a map field, tolerating any shape of input.
func mapping(obj map[string]any, path ...string) map[string]any {
	v, _, _ := unstructured.NestedFieldNoCopy(obj, path...)
	m, _ := v.(map[string]any)
	return m
}

// stringsOf keeps the strings of a list.
func stringsOf(l []any) []string {
	var out []string
	for _, v := range l {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func joinQuoted(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
