package traffic

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Backend is one destination of a rule and its share of the rule's requests.
type Backend struct {
	// Name is the backend's Service (namespace/name when in another
	// namespace) or, for a VirtualService, its host and /subset.
	Name string `json:"name"`
	// Weight is the weight as istiod reads it: an HTTPRoute backendRef
	// without one weighs 1, a VirtualService destination without one 0.
	Weight int64 `json:"weight"`
	// Share is the percentage of the rule's requests the backend gets.
	Share float64 `json:"share"`
}

// Rule is one rule of a route.
type Rule struct {
	// Index is the rule's position in the route, from 0.
	Index int `json:"index"`
	// Match says which requests the rule takes, such as
	// "header x-canary=always"; "every request" when it matches all.
	Match string `json:"match"`
	// Backends are the rule's destinations, in the route's order.
	Backends []Backend `json:"backends"`
	// Weighted is true when a weight is written on any backend.
	Weighted bool `json:"weighted"`
}

// Sum is the sum of the rule's weights.
func (r Rule) Sum() int64 {
	var sum int64
	for _, b := range r.Backends {
		sum += b.Weight
	}
	return sum
}

// Shares writes the split as "orders-v1 81.8%, orders-v2 18.2%", leaving
// out backends that get nothing.
func (r Rule) Shares() string {
	var parts []string
	for _, b := range r.Backends {
		if b.Share > 0 {
			parts = append(parts, b.Name+" "+Percent(b.Share))
		}
	}
	if len(parts) == 0 {
		return "no backend"
	}
	return strings.Join(parts, ", ")
}

// Percent writes a share with at most one decimal: 81.8%, 50%.
func Percent(share float64) string {
	return strconv.FormatFloat(float64(int64(share*10+0.5))/10, 'f', -1, 64) + "%"
}

// Split returns the rules of an HTTPRoute or a mesh VirtualService with
// their shares, and nil for any other object.
//
// istiod passes the weights to Envoy's weighted clusters unchanged and
// Envoy sends each cluster weight/sum of the requests; a backend of weight
// 0 is left out, and a rule with one backend sends it everything
// (buildHTTPDestination in pilot/pkg/config/kube/gateway/conversion.go,
// applyHTTPRouteDestination in pilot/pkg/networking/core/route/route.go).
func Split(o *unstructured.Unstructured) []Rule {
	var shape routeShape
	switch o.GetKind() {
	case "HTTPRoute":
		shape = httpRoute
	case "VirtualService":
		shape = virtualService
	default:
		return nil
	}
	var out []Rule
	for i, r := range list(o.Object, "spec", shape.rules) {
		rule := Rule{Index: i, Match: shape.match(list(asMap(r), shape.matches))}
		for _, b := range list(asMap(r), shape.backends) {
			m := asMap(b)
			w, ok := number(m["weight"])
			if !ok {
				w = shape.weight
			}
			rule.Weighted = rule.Weighted || m["weight"] != nil
			rule.Backends = append(rule.Backends, Backend{Name: shape.name(o, m), Weight: w})
		}
		out = append(out, share(rule, shape.single))
	}
	return out
}

// routeShape says where a kind of route keeps its rules, matches and
// backends, and how istiod reads them.
type routeShape struct {
	rules, matches, backends string
	match                    func([]any) string
	name                     func(route *unstructured.Unstructured, backend map[string]any) string
	// weight is a backend's weight when it states none.
	weight int64
	// single is true when a rule's only backend takes every request
	// whatever its weight.
	single bool
}

var (
	httpRoute = routeShape{rules: "rules", matches: "matches", backends: "backendRefs", match: httpRouteMatch, weight: 1,
		name: func(route *unstructured.Unstructured, m map[string]any) string {
			name, _ := m["name"].(string)
			if ns, _ := m["namespace"].(string); ns != "" && ns != route.GetNamespace() {
				name = ns + "/" + name
			}
			return name
		}}
	virtualService = routeShape{rules: "http", matches: "match", backends: "route", match: vsMatch, single: true,
		name: func(_ *unstructured.Unstructured, m map[string]any) string {
			dest := asMap(m["destination"])
			name, _ := dest["host"].(string)
			if s, _ := dest["subset"].(string); s != "" {
				name += "/" + s
			}
			return name
		}}
)

// share fills in each backend's share of the rule's requests. A
// VirtualService rule with one destination sends it everything whatever
// its weight (single); an HTTPRoute drops a backend of weight 0 first.
func share(r Rule, single bool) Rule {
	var live []int
	for i, b := range r.Backends {
		if b.Weight > 0 || (single && len(r.Backends) == 1) {
			live = append(live, i)
		}
	}
	if len(live) == 1 {
		r.Backends[live[0]].Share = 100
		return r
	}
	sum := r.Sum()
	if sum <= 0 {
		return r
	}
	for _, i := range live {
		r.Backends[i].Share = 100 * float64(r.Backends[i].Weight) / float64(sum)
	}
	return r
}

// httpRouteMatch describes HTTPRoute matches; several are alternatives.
func httpRouteMatch(matches []any) string {
	var alts []string
	for _, m := range matches {
		mm := asMap(m)
		var parts []string
		if p := asMap(mm["path"]); p != nil {
			parts = append(parts, fmt.Sprintf("path %s %v", orDefault(p["type"], "PathPrefix"), p["value"]))
		}
		if method, ok := mm["method"].(string); ok {
			parts = append(parts, "method "+method)
		}
		for _, field := range []string{"headers", "queryParams"} {
			what := map[string]string{"headers": "header", "queryParams": "query"}[field]
			for _, h := range list(mm, field) {
				hm := asMap(h)
				op := "="
				if t, _ := hm["type"].(string); t == "RegularExpression" {
					op = "~"
				}
				parts = append(parts, fmt.Sprintf("%s %v%s%v", what, hm["name"], op, hm["value"]))
			}
		}
		if len(parts) > 0 {
			alts = append(alts, strings.Join(parts, ", "))
		}
	}
	if len(alts) == 0 {
		return "every request"
	}
	return strings.Join(alts, " or ")
}

// vsMatch describes VirtualService matches; several are alternatives.
func vsMatch(matches []any) string {
	var alts []string
	for _, m := range matches {
		mm := asMap(m)
		var parts []string
		for _, field := range []string{"uri", "method", "authority", "scheme"} {
			if s := stringMatch(asMap(mm[field])); s != "" {
				parts = append(parts, field+" "+s)
			}
		}
		for _, field := range []string{"headers", "queryParams"} {
			what := map[string]string{"headers": "header", "queryParams": "query"}[field]
			hs := asMap(mm[field])
			names := make([]string, 0, len(hs))
			for n := range hs {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				parts = append(parts, what+" "+n+" "+stringMatch(asMap(hs[n])))
			}
		}
		if len(parts) > 0 {
			alts = append(alts, strings.Join(parts, ", "))
		}
	}
	if len(alts) == 0 {
		return "every request"
	}
	return strings.Join(alts, " or ")
}

// stringMatch describes an Istio StringMatch such as {prefix: /api}.
func stringMatch(m map[string]any) string {
	for _, k := range []string{"exact", "prefix", "regex"} {
		if v, ok := m[k]; ok {
			return fmt.Sprintf("%s %v", k, v)
		}
	}
	return ""
}

func orDefault(v any, def string) string {
	if s, ok := v.(string); ok && s != "" {
		return s
	}
	return def
}

func list(obj map[string]any, path ...string) []any {
	v, _, _ := unstructured.NestedFieldNoCopy(obj, path...)
	l, _ := v.([]any)
	return l
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func number(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case float64:
		return int64(n), true
	case int:
		return int64(n), true
	}
	return 0, false
}
