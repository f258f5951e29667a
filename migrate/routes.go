package migrate

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/meshspec"
)

// indexSubsets records the subsets of a DestinationRule for a Service of
// the source.
func (t *translator) indexSubsets(o *unstructured.Unstructured) {
	host, _, _ := unstructured.NestedString(o.Object, "spec", "host")
	svc := t.src.serviceOf(host, o.GetNamespace())
	if svc == nil {
		return
	}
	key := svc.GetNamespace() + "/" + svc.GetName()
	t.rules[key] = o
	subsets, _, _ := unstructured.NestedSlice(o.Object, "spec", "subsets")
	m := map[string]map[string]string{}
	for _, s := range subsets {
		sm, _ := s.(map[string]any)
		labels, _, _ := unstructured.NestedStringMap(sm, "labels")
		m[str(sm["name"])] = labels
	}
	t.subsets[key] = m
}

// vsRoute is what one VirtualService becomes.
type vsRoute struct {
	why        []string // what keeps it a VirtualService
	routes     []meshspec.Route
	versions   map[string]map[string]string
	resilience *meshspec.Resilience
	faults     *meshspec.Faults
	port       int32
}

func (r *vsRoute) cannot(format string, args ...any) {
	r.why = append(r.why, fmt.Sprintf(format, args...))
}

// virtualService moves a mesh VirtualService on one Service into its
// MeshService, or keeps it, saying why.
func (t *translator) virtualService(o *unstructured.Unstructured) {
	spec, _ := o.Object["spec"].(map[string]any)
	gateways, _, _ := unstructured.NestedStringSlice(o.Object, "spec", "gateways")
	mesh := len(gateways) == 0
	for _, g := range gateways {
		mesh = mesh || g == "mesh"
	}
	if !mesh {
		t.keep(o, "routes at the ingress Gateway "+strings.Join(gateways, ", ")+"; an ingress gateway routes the same in ambient")
		rules, _, _ := unstructured.NestedSlice(o.Object, "spec", "http")
		for _, rule := range rules {
			dests, _ := nested(rule, "route").([]any)
			for _, d := range dests {
				if svc := t.src.serviceOf(str(nested(d, "destination", "host")), o.GetNamespace()); svc != nil {
					t.ingress[svc.GetNamespace()] = true
				}
			}
		}
		return
	}
	hosts, _, _ := unstructured.NestedStringSlice(o.Object, "spec", "hosts")
	var svc *unstructured.Unstructured
	if len(hosts) == 1 {
		svc = t.src.serviceOf(hosts[0], o.GetNamespace())
	}
	if svc == nil {
		t.keep(o, "routes hosts that are not one Service of the source ("+strings.Join(hosts, ", ")+"); the waypoint of the Service's namespace serves it")
		t.item(o, "kept as a VirtualService: its hosts %s are not one Service of the source, so no HTTPRoute can carry it; "+
			"in ambient only a waypoint serves it: enroll the host's Service or ServiceEntry in a waypoint (istio.io/use-waypoint)", strings.Join(hosts, ", "))
		return
	}
	key := svc.GetNamespace() + "/" + svc.GetName()
	r := t.routesOf(o, spec, svc)
	if len(gateways) > 0 && len(gateways) != 1 {
		r.cannot("it is bound to gateways %s as well as the mesh", strings.Join(gateways, ", "))
	}
	if svc.GetNamespace() != o.GetNamespace() {
		r.cannot("it is in namespace %s, not the Service's", o.GetNamespace())
	}
	t.needsWaypoint(svc.GetNamespace(), refOf(o))
	if len(r.why) > 0 {
		t.kept[key] = true
		t.keep(o, "a VirtualService the spec cannot express ("+strings.Join(r.why, "; ")+"); the waypoint serves it")
		t.item(o, "kept as a VirtualService, served by the waypoint: HTTPRoute has no equivalent for %s. Without a ready waypoint "+
			"ztunnel ignores it and the traffic is balanced over every pod of the Service", strings.Join(r.why, "; "))
		return
	}
	ms := t.meshService(svc, r.port)
	if len(ms.Spec.Routes) > 0 || ms.Spec.Faults != nil {
		t.keep(o, "a second VirtualService for "+key+"; the spec takes one")
		t.item(o, "kept as a VirtualService: another VirtualService for Service %s was moved into the spec, and ambient honours one routing API per host; merge the two", key)
		return
	}
	t.routed[key] = true
	ms.Spec.Routes, ms.Spec.Resilience, ms.Spec.Faults = r.routes, r.resilience, r.faults
	if ms.Spec.Versions == nil && len(r.versions) > 0 {
		ms.Spec.Versions = map[string]map[string]string{}
	}
	for v, labels := range r.versions {
		ms.Spec.Versions[v] = labels
	}
	t.old(o, stepAmbient, "the sidecar-era route; the MeshService's HTTPRoute replaces it in the ambient stage")
}

// vsRuleFields and vsMatchFields are what the spec can carry.
var (
	vsRuleFields  = map[string]bool{"name": true, "match": true, "route": true, "timeout": true, "retries": true, "fault": true}
	vsMatchFields = map[string]bool{"name": true, "headers": true, "uri": true, "method": true}
)

// routesOf reads the http rules of a VirtualService for svc.
func (t *translator) routesOf(o *unstructured.Unstructured, spec map[string]any, svc *unstructured.Unstructured) *vsRoute {
	r := &vsRoute{versions: map[string]map[string]string{}}
	for _, f := range slices.Sorted(maps.Keys(spec)) {
		if f != "hosts" && f != "http" && f != "gateways" {
			r.cannot("spec.%s", f)
		}
	}
	key := svc.GetNamespace() + "/" + svc.GetName()
	rules, _ := spec["http"].([]any)
	var resilience []*meshspec.Resilience
	for i, raw := range rules {
		rule, _ := raw.(map[string]any)
		for _, f := range slices.Sorted(maps.Keys(rule)) {
			if !vsRuleFields[f] {
				r.cannot("http[%d].%s", i, f)
			}
		}
		backends := t.backends(r, i, rule, svc, key)
		matches, _ := rule["match"].([]any)
		if len(matches) == 0 {
			matches = []any{nil}
		}
		for j, m := range matches {
			match := t.match(r, i, j, m)
			r.routes = append(r.routes, meshspec.Route{Match: match, Backends: backends})
		}
		resilience = append(resilience, t.resilience(r, i, rule))
		if fault, ok := rule["fault"].(map[string]any); ok {
			t.fault(r, i, fault, rule, len(rules), svc, key)
		}
	}
	for _, res := range resilience[min(1, len(resilience)):] {
		if !reflect.DeepEqual(res, resilience[0]) {
			r.cannot("timeouts or retries that differ from rule to rule")
			break
		}
	}
	if len(resilience) > 0 {
		r.resilience = resilience[0]
	}
	if r.faults != nil {
		r.routes, r.versions = nil, nil
	}
	// Rules after one that matches every request never match.
	for i, route := range r.routes {
		if route.Match == nil && i < len(r.routes)-1 {
			r.routes = r.routes[:i+1]
			break
		}
	}
	return r
}

// backends reads a rule's destinations: subsets of the Service itself.
func (t *translator) backends(r *vsRoute, i int, rule map[string]any, svc *unstructured.Unstructured, key string) map[string]int32 {
	dests, _ := rule["route"].([]any)
	if len(dests) == 0 {
		r.cannot("http[%d] without a route", i)
	}
	out := map[string]int32{}
	for j, raw := range dests {
		d, _ := raw.(map[string]any)
		dest, _ := d["destination"].(map[string]any)
		host := str(dest["host"])
		if target := t.src.serviceOf(host, svc.GetNamespace()); target == nil || target.GetNamespace()+"/"+target.GetName() != key {
			r.cannot("http[%d].route[%d] sends to another host, %s", i, j, host)
			continue
		}
		if n, ok := integer(nested(dest, "port", "number")); ok {
			if r.port != 0 && r.port != n {
				r.cannot("routes to two ports")
			}
			r.port = n
		}
		subset := str(dest["subset"])
		if subset == "" {
			r.cannot("http[%d].route[%d] names no subset", i, j)
			continue
		}
		labels, ok := t.subsets[key][subset]
		if !ok {
			r.cannot("subset %s is in no DestinationRule of the source", subset)
			continue
		}
		r.versions[subset] = labels
		w, ok := integer(d["weight"])
		if !ok {
			w = 0
			if len(dests) == 1 {
				w = 100
			}
		}
		out[subset] += w
	}
	return out
}

func (t *translator) match(r *vsRoute, i, j int, raw any) *meshspec.Match {
	m, _ := raw.(map[string]any)
	if m == nil {
		return nil
	}
	out := &meshspec.Match{}
	for _, f := range slices.Sorted(maps.Keys(m)) {
		if !vsMatchFields[f] {
			r.cannot("http[%d].match[%d].%s", i, j, f)
		}
	}
	headers, _ := m["headers"].(map[string]any)
	for _, h := range slices.Sorted(maps.Keys(headers)) {
		hm, _ := headers[h].(map[string]any)
		if v, ok := hm["exact"].(string); ok && len(hm) == 1 {
			if out.Headers == nil {
				out.Headers = map[string]string{}
			}
			out.Headers[h] = v
			continue
		}
		r.cannot("http[%d].match[%d].headers.%s is not an exact match", i, j, h)
	}
	if uri, ok := m["uri"].(map[string]any); ok {
		if p, ok := uri["prefix"].(string); ok && len(uri) == 1 && strings.HasPrefix(p, "/") && (p == "/" || !strings.HasSuffix(p, "/")) {
			out.PathPrefix = p
		} else {
			// A Gateway API PathPrefix matches whole path segments; Istio's
			// prefix matches characters: only a segment-shaped prefix
			// keeps its meaning.
			r.cannot("http[%d].match[%d].uri is not a path prefix of whole segments", i, j)
		}
	}
	if method, ok := m["method"].(map[string]any); ok {
		if v, ok := method["exact"].(string); ok && len(method) == 1 {
			out.Method = v
		} else {
			r.cannot("http[%d].match[%d].method is not an exact match", i, j)
		}
	}
	if out.PathPrefix == "/" {
		out.PathPrefix = ""
	}
	if len(out.Headers) == 0 && out.PathPrefix == "" && out.Method == "" {
		return nil
	}
	return out
}

// resilience reads a rule's timeout and retries.
func (t *translator) resilience(r *vsRoute, i int, rule map[string]any) *meshspec.Resilience {
	var res meshspec.Resilience
	if v, ok := rule["timeout"]; ok {
		d, ok := istioDuration(v)
		if !ok {
			r.cannot("http[%d].timeout %v", i, v)
		}
		res.Timeout = d
	}
	if raw, ok := rule["retries"].(map[string]any); ok {
		attempts, _ := integer(raw["attempts"])
		if attempts == 0 {
			r.cannot("http[%d].retries with no attempts (retries off)", i)
			return nil
		}
		res.Retries = &meshspec.Retries{Attempts: attempts}
		if v, ok := raw["perTryTimeout"]; ok {
			res.Retries.PerTryTimeout, _ = istioDuration(v)
		}
		if on := str(raw["retryOn"]); on != "" {
			res.Retries.On = strings.Split(on, ",")
		}
		for _, f := range slices.Sorted(maps.Keys(raw)) {
			if f != "attempts" && f != "perTryTimeout" && f != "retryOn" {
				r.cannot("http[%d].retries.%s", i, f)
			}
		}
	}
	if res.Timeout == nil && res.Retries == nil {
		return nil
	}
	return &res
}

// fault reads a fault: the spec injects faults into every request of a
// Service, so only a first rule that matches everything and sends to
// every pod of the Service carries over.
func (t *translator) fault(r *vsRoute, i int, fault, rule map[string]any, rules int, svc *unstructured.Unstructured, key string) {
	if i != 0 || rule["match"] != nil {
		r.cannot("http[%d].fault injects faults into some requests only", i)
		return
	}
	if rule["timeout"] != nil || rule["retries"] != nil {
		r.cannot("http[%d].fault shares its rule with a timeout or retries", i)
		return
	}
	all := map[string]bool{}
	for _, p := range t.src.servicePods(svc) {
		all[p.ref] = true
	}
	reached := map[string]bool{}
	for v := range r.versions {
		for _, p := range t.src.selected(svc.GetNamespace(), r.versions[v]) {
			if all[p.ref] {
				reached[p.ref] = true
			}
		}
	}
	if len(all) == 0 || len(reached) != len(all) {
		r.cannot("http[%d] sends the faulted requests to some of the Service's pods only", i)
		return
	}
	f := &meshspec.Faults{}
	if d, ok := fault["delay"].(map[string]any); ok {
		fixed, ok := istioDuration(d["fixedDelay"])
		if !ok {
			r.cannot("http[%d].fault.delay is not a fixed delay", i)
			return
		}
		f.Delay = &meshspec.DelayFault{Percent: percent(d), Fixed: *fixed}
	}
	if a, ok := fault["abort"].(map[string]any); ok {
		status, ok := integer(a["httpStatus"])
		if !ok {
			r.cannot("http[%d].fault.abort is not an HTTP status", i)
			return
		}
		f.Abort = &meshspec.AbortFault{Percent: percent(a), Status: status}
	}
	r.faults = f
}

// percent reads percentage.value, 100 when unset as Istio reads it.
func percent(m map[string]any) float64 {
	switch v := nested(m, "percentage", "value").(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	}
	return 100
}

func nested(v any, path ...string) any {
	for _, p := range path {
		mm, _ := v.(map[string]any)
		v = mm[p]
	}
	return v
}

// destinationRule carries a DestinationRule's connection pool and outlier
// detection into the circuit breaker of a moved Service, drops what
// ambient does itself, and keeps the rest.
func (t *translator) destinationRule(o *unstructured.Unstructured) {
	host, _, _ := unstructured.NestedString(o.Object, "spec", "host")
	svc := t.src.serviceOf(host, o.GetNamespace())
	if svc == nil {
		t.keep(o, "a DestinationRule for "+host+", which is not a Service of the source")
		if _, ok := o.Object["spec"].(map[string]any)["trafficPolicy"]; ok {
			t.item(o, "kept as written: its trafficPolicy for %s was applied by each client's sidecar; in ambient only a waypoint applies it, "+
				"so the host (its ServiceEntry) must use one (istio.io/use-waypoint)", host)
		}
		return
	}
	key := svc.GetNamespace() + "/" + svc.GetName()
	if t.kept[key] {
		t.keep(o, "its subsets serve the VirtualService kept for "+key)
		return
	}
	spec, _ := o.Object["spec"].(map[string]any)
	policy, _ := spec["trafficPolicy"].(map[string]any)
	var rest []string
	for _, f := range slices.Sorted(maps.Keys(spec)) {
		if f != "host" && f != "subsets" && f != "trafficPolicy" {
			rest = append(rest, "spec."+f)
		}
	}
	subsets, _ := spec["subsets"].([]any)
	for i, s := range subsets {
		if sm, _ := s.(map[string]any); sm["trafficPolicy"] != nil {
			rest = append(rest, fmt.Sprintf("subsets[%d].trafficPolicy", i))
		}
	}
	cb, tls, other := circuitBreaker(policy)
	rest = append(rest, other...)
	if len(rest) > 0 {
		t.keep(o, "a DestinationRule the spec cannot express ("+strings.Join(rest, ", ")+"); the waypoint applies it")
		t.needsWaypoint(svc.GetNamespace(), refOf(o))
		t.item(o, "kept as a DestinationRule for %s, which in ambient only a waypoint applies; without a ready waypoint it does nothing", strings.Join(rest, ", "))
		return
	}
	if tls {
		t.item(o, "trafficPolicy.tls ISTIO_MUTUAL is not carried over: ztunnel always speaks mTLS between ambient workloads, so nothing changes")
	}
	if cb != nil {
		ms := t.meshService(svc, 0)
		ms.Spec.CircuitBreaker = cb
		t.needsWaypoint(svc.GetNamespace(), refOf(o))
	}
	if !t.routed[key] && len(subsets) > 0 && cb == nil {
		t.item(o, "its subsets are not carried over: no route of the source sends to them, so nothing changes")
	}
	t.old(o, stepAmbient, "the sidecar-era DestinationRule; the ambient stage replaces it")
}

// circuitBreaker reads a trafficPolicy: the circuit breaker, whether it
// sets ISTIO_MUTUAL, and the fields the spec cannot carry.
func circuitBreaker(p map[string]any) (cb *meshspec.CircuitBreaker, tls bool, rest []string) {
	for _, f := range slices.Sorted(maps.Keys(p)) {
		switch f {
		case "tls":
			if mode := str(nested(p, "tls", "mode")); mode == "ISTIO_MUTUAL" && len(p["tls"].(map[string]any)) == 1 {
				tls = true
				continue
			}
			rest = append(rest, "trafficPolicy.tls")
		case "connectionPool", "outlierDetection":
		default:
			rest = append(rest, "trafficPolicy."+f)
		}
	}
	c := &meshspec.CircuitBreaker{}
	known := map[string]func(any) bool{
		"connectionPool.tcp.maxConnections":           func(v any) (ok bool) { c.MaxConnections, ok = integer(v); return },
		"connectionPool.http.http1MaxPendingRequests": func(v any) (ok bool) { c.MaxPendingRequests, ok = integer(v); return },
		"outlierDetection.consecutive5xxErrors":       func(v any) (ok bool) { c.Consecutive5xxErrors, ok = integer(v); return },
		"outlierDetection.interval":                   func(v any) (ok bool) { c.Interval, ok = istioDuration(v); return },
		"outlierDetection.baseEjectionTime":           func(v any) (ok bool) { c.BaseEjection, ok = istioDuration(v); return },
		"outlierDetection.maxEjectionPercent":         func(v any) (ok bool) { c.MaxEjectionPercent, ok = integer(v); return },
	}
	set := false
	for _, top := range []string{"connectionPool", "outlierDetection"} {
		for _, path := range leaves(p[top], top) {
			read, ok := known[path]
			if !ok || !read(nested(p, strings.Split(path, ".")...)) {
				rest = append(rest, "trafficPolicy."+path)
				continue
			}
			set = true
		}
	}
	sort.Strings(rest)
	if !set {
		return nil, tls, rest
	}
	return c, tls, rest
}

// leaves lists the paths of the scalar fields under v.
func leaves(v any, prefix string) []string {
	m, ok := v.(map[string]any)
	if !ok {
		if v == nil {
			return nil
		}
		return []string{prefix}
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, leaves(m[k], prefix+"."+k)...)
	}
	return out
}
