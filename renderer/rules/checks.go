package rules

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/renderer/traffic"
)

// checks holds the rules of each kind. Workloads are checked through their
// pod template (checker.workload), routes across kinds in crossRoutes.
var checks = map[schema.GroupKind]func(*checker, *unstructured.Unstructured){
	ambient.NamespaceGK:             (*checker).namespace,
	ambient.ServiceGK:               (*checker).service,
	ambient.GatewayGK:               (*checker).gateway,
	ambient.AuthorizationPolicyGK:   (*checker).authorizationPolicy,
	ambient.RequestAuthenticationGK: (*checker).requestAuthentication,
	ambient.PeerAuthenticationGK:    (*checker).peerAuthentication,
	ambient.HTTPRouteGK:             (*checker).httpRoute,
	ambient.VirtualServiceGK:        (*checker).virtualService,
	ambient.EnvoyFilterGK:           (*checker).envoyFilter,
	ambient.SidecarGK:               (*checker).sidecar,
	ambient.WasmPluginGK:            func(c *checker, o *unstructured.Unstructured) { c.serviceTargets(o, targetRefs(o)) },
	ambient.TrafficExtensionGK:      func(c *checker, o *unstructured.Unstructured) { c.serviceTargets(o, targetRefs(o)) },
}

// ruleIDs are the rules checks can report, for the catalogue's own test.
var ruleIDs = []string{"AMB001", "AMB002", "AMB010", "AMB011", "AMB012", "AMB013", "AMB014", "AMB020", "AMB021", "AMB022", "AMB023", "AMB024", "AMB025", "AMB026", "AMB030", "AMB031", "AMB032", "AMB033", "AMB034", "AMB035", "AMB036", "AMB040", "AMB041", "AMB050", "AMB051", "AMB052", "AMB053", "AMB054", "AMB060"}

// changeRuleIDs are the rules CheckChange reports, comparing two inputs.
var changeRuleIDs = []string{"AMB055"}

// unresolved reports AMB050: a reference the input cannot resolve, what
// breaks if the cluster lacks it too, and the command that checks it.
func (c *checker) unresolved(o *unstructured.Unstructured, ref, effect, check string) {
	c.report("AMB050", o, ref, effect, check)
}

func (c *checker) sidecar(o *unstructured.Unstructured) {
	if ns := namespaceOf(o); c.idx.mode(ns) == ModeAmbient {
		c.report("AMB041", o, ns)
	}
}

func (c *checker) envoyFilter(o *unstructured.Unstructured) {
	if ns := namespaceOf(o); c.idx.mode(ns) == ModeAmbient && len(targetRefs(o)) == 0 {
		c.report("AMB040", o, ns)
	}
}

func (c *checker) namespace(o *unstructured.Unstructured) {
	labels := o.GetLabels()
	mode := NamespaceMode(o.GetName(), labels)
	if labels[ambient.LabelDataplaneMode] == "ambient" && mode == ModeSidecar {
		var injection []string
		for _, l := range []string{ambient.LabelInjection, ambient.LabelRev} {
			if v, ok := labels[l]; ok {
				injection = append(injection, l+"="+v)
			}
		}
		c.report("AMB001", o, strings.Join(injection, ", "))
	}
	if name := labels[ambient.LabelUseWaypoint]; name != "" && name != "none" {
		if mode != ModeAmbient {
			c.report("AMB013", o, o.GetName(), mode)
		}
		c.useWaypoint(o, "Namespace "+o.GetName(), waypointRef(labels, o.GetName(), name), true)
	}
}

func (c *checker) service(o *unstructured.Unstructured) {
	labels := o.GetLabels()
	name := labels[ambient.LabelUseWaypoint]
	if name == "" || name == "none" {
		return
	}
	ns := namespaceOf(o)
	if mode := c.idx.mode(ns); mode != ModeUnknown && mode != ModeAmbient {
		c.report("AMB013", o, ns, mode)
	}
	c.useWaypoint(o, describe(o), waypointRef(labels, ns, name), true)
}

// useWaypoint checks that the named waypoint exists and accepts the
// traffic of the consumer: service traffic for Namespaces and Services,
// workload traffic for pods.
func (c *checker) useWaypoint(o *unstructured.Unstructured, who string, wp key, services bool) {
	gw, ok := c.idx.gateways[wp]
	if !ok {
		if c.idx.complete(wp.namespace) {
			c.report("AMB010", o, wp)
		} else {
			c.unresolved(o, "istio.io/use-waypoint names Gateway "+wp.String(), "if it is missing, traffic skips the waypoint and its policies", "kubectl get gateway -n "+wp.namespace+" "+wp.name)
		}
		return
	}
	f := waypointFor(gw)
	switch {
	case services && (f == "workload" || f == "none"):
		c.report("AMB011", o, who, wp, f, "service")
	case !services && (f == "service" || f == "none"):
		c.report("AMB011", o, who, wp, f, "workload")
	}
}

// ambientLabels are the labels ambient reads on pods, not on controllers.
var ambientLabels = []string{ambient.LabelDataplaneMode, ambient.LabelUseWaypoint}

// workload checks a pod template, or a Pod.
func (c *checker) workload(o *unstructured.Unstructured) {
	t := template(o)
	isPod := o.GetKind() == "Pod" && o.GroupVersionKind().Group == ""
	if !isPod {
		for _, l := range ambientLabels {
			if _, ok := o.GetLabels()[l]; ok {
				c.report("AMB014", o, l, o.GetKind())
			}
		}
	}
	labels := stringMap(mapping(t, "metadata", "labels"))
	annotations := stringMap(mapping(t, "metadata", "annotations"))
	ns := namespaceOf(o)
	n, known := c.idx.namespaces[ns]
	if !known {
		return // the pods' mode depends on the namespace's labels
	}
	hostNetwork, _ := mapping(t, "spec")["hostNetwork"].(bool)
	mode := PodMode(ns, n.GetLabels(), labels, annotations, hostNetwork)
	if c.idx.mode(ns) == ModeAmbient {
		for _, m := range []map[string]string{labels, annotations} {
			if m[ambient.LabelSidecarInject] != "true" {
				continue
			}
			effect := "the injection webhook selects pods by label only, so this annotation has no effect (manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml)"
			if mode == ModeSidecar {
				effect = "the injector adds a sidecar, so istio-cni leaves these pods out of ambient (cni/pkg/util/enablement_selector.go)"
			}
			c.report("AMB002", o, ambient.LabelSidecarInject+"=true", ns, effect)
			break
		}
	}
	name := labels[ambient.LabelUseWaypoint]
	if name == "" || name == "none" {
		return
	}
	if mode != ModeAmbient {
		c.report("AMB013", o, ns, mode)
	}
	c.useWaypoint(o, "the pods of "+describe(o), waypointRef(labels, ns, name), false)
}

// stringMap keeps the string values of a map.
func stringMap(m map[string]any) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

func (c *checker) gateway(o *unstructured.Unstructured) {
	if str(o.Object, "spec", "gatewayClassName") != ambient.WaypointClass {
		return
	}
	ls := list(o.Object, "spec", "listeners")
	var seen []string
	ok := 0
	for _, l := range ls {
		m, _ := l.(map[string]any)
		port, _ := m["port"].(int64)
		if f, isF := m["port"].(float64); isF {
			port = int64(f)
		}
		proto, _ := m["protocol"].(string)
		seen = append(seen, fmt.Sprintf("%d/%s", port, proto))
		if port == ambient.WaypointPort && proto == ambient.WaypointProtocol {
			ok++
		}
	}
	if len(ls) != 1 || ok != 1 {
		found := "none"
		if len(seen) > 0 {
			found = strings.Join(seen, ", ")
		}
		c.report("AMB012", o, found)
	}
}

// targetRefs returns a policy's targetRefs and targetRef together.
func targetRefs(o *unstructured.Unstructured) []map[string]any {
	var out []map[string]any
	for _, r := range list(o.Object, "spec", "targetRefs") {
		if m, ok := r.(map[string]any); ok {
			out = append(out, m)
		}
	}
	if m := mapping(o.Object, "spec", "targetRef"); m != nil {
		out = append(out, m)
	}
	return out
}

// policyPlacement checks AMB021 and the policy's Service targets, and
// reports whether the policy is enforced by ztunnel: it has no targetRefs
// and its namespace is known to be ambient.
func (c *checker) policyPlacement(o *unstructured.Unstructured) (ztunnel bool) {
	refs := targetRefs(o)
	if mapping(o.Object, "spec", "selector") != nil && len(refs) > 0 {
		c.report("AMB021", o)
	}
	if len(refs) == 0 {
		return c.idx.mode(namespaceOf(o)) == ModeAmbient
	}
	c.serviceTargets(o, refs)
	return false
}

// serviceTargets reports the Services a policy's targetRefs name that no
// waypoint serves (AMB022), in its own namespace as istiod resolves them, or
// that the input cannot resolve (AMB050). A namespace known not to be
// ambient is left alone.
func (c *checker) serviceTargets(o *unstructured.Unstructured, refs []map[string]any) {
	ns := namespaceOf(o)
	if mode := c.idx.mode(ns); mode != ModeUnknown && mode != ModeAmbient {
		return
	}
	for _, r := range refs {
		if !isServiceRef(r) {
			continue
		}
		name, _ := r["name"].(string)
		svc := key{ns, name}
		_, b := c.idx.waypointOf(svc)
		_, exists := c.idx.services[svc]
		switch {
		case b == unresolved:
			c.unresolved(o, "targetRefs names Service "+svc.String(),
				"if neither it nor its namespace is labelled istio.io/use-waypoint, nothing applies this "+o.GetKind(),
				"kubectl get service -n "+ns+" "+name+" --show-labels; kubectl get namespace "+ns+" --show-labels")
		case b == unbound && !exists:
			c.report("AMB022", o, svc, "which does not exist", o.GetKind())
		case b == unbound:
			c.report("AMB022", o, svc, "which uses no waypoint", o.GetKind())
		}
	}
}

// l4When are the condition keys ztunnel understands.
var l4When = map[string]bool{"source.ip": true, "source.namespace": true, "source.principal": true, "destination.ip": true, "destination.port": true}

func (c *checker) authorizationPolicy(o *unstructured.Unstructured) {
	if !c.policyPlacement(o) {
		return
	}
	action := str(o.Object, "spec", "action")
	if action == "CUSTOM" || action == "AUDIT" {
		c.report("AMB023", o, action)
	}
	var l7 []string
	add := func(s string) {
		for _, have := range l7 {
			if have == s {
				return
			}
		}
		l7 = append(l7, s)
	}
	for _, r := range list(o.Object, "spec", "rules") {
		rule, _ := r.(map[string]any)
		for _, f := range list(rule, "from") {
			src := mapping(asMap(f), "source")
			for _, k := range []string{"requestPrincipals", "notRequestPrincipals", "remoteIpBlocks", "notRemoteIpBlocks"} {
				if len(list(src, k)) > 0 {
					add(k)
				}
			}
		}
		for _, t := range list(rule, "to") {
			op := mapping(asMap(t), "operation")
			for _, k := range []string{"hosts", "notHosts", "methods", "notMethods", "paths", "notPaths"} {
				if len(list(op, k)) > 0 {
					add(k)
				}
			}
		}
		for _, w := range list(rule, "when") {
			if k := str(asMap(w), "key"); k != "" && !l4When[k] {
				add("when " + k)
			}
		}
	}
	if len(l7) == 0 {
		return
	}
	effect := "as an ALLOW, istiod omits every rule with HTTP attributes, so what those rules name is not allowed"
	if action == "DENY" {
		effect = "as a DENY, istiod enforces it without the HTTP attributes, so it denies more than written (a rule left with no other condition denies every request)"
	}
	c.report("AMB020", o, strings.Join(l7, ", "), effect)
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func (c *checker) requestAuthentication(o *unstructured.Unstructured) {
	if c.policyPlacement(o) {
		c.report("AMB024", o, namespaceOf(o))
	}
}

func (c *checker) peerAuthentication(o *unstructured.Unstructured) {
	ns := namespaceOf(o)
	disabled := str(o.Object, "spec", "mtls", "mode") == "DISABLE"
	if ns == ambient.RootNamespace && len(mapping(o.Object, "spec", "selector", "matchLabels")) == 0 {
		// A mesh-wide policy, as convertedSelectorPeerAuthentications in
		// pilot/pkg/serviceregistry/ambient/authorization.go selects it.
		if amb := c.idx.ambientNamespaces(); disabled && len(amb) > 0 {
			c.report("AMB026", o, ns, strings.Join(amb, ", "))
		}
		return
	}
	if c.idx.mode(ns) != ModeAmbient {
		return
	}
	if disabled {
		c.report("AMB025", o, "", ns)
	}
	var ports []string
	for port, v := range mapping(o.Object, "spec", "portLevelMtls") {
		if str(asMap(v), "mode") == "DISABLE" {
			ports = append(ports, port)
		}
	}
	if len(ports) > 0 {
		sort.Strings(ports)
		c.report("AMB025", o, " on ports "+strings.Join(ports, ", "), ns)
	}
}

func (c *checker) httpRoute(o *unstructured.Unstructured) {
	c.weights(o)
	ns := namespaceOf(o)
	for _, svc := range routeServices(o) {
		if svc.namespace == ns {
			c.routeNeedsWaypoint(o, "HTTPRoute with parent", svc)
			continue
		}
		// A waypoint also applies the routes of its own namespace.
		if wp, b := c.idx.waypointOf(svc); c.idx.mode(ns) == ModeAmbient && !(b == bound && wp.namespace == ns) {
			c.report("AMB034", o, svc, svc.namespace)
		}
	}
	reported := map[key]bool{} // a backend named by several rules is reported once
	for i, r := range list(o.Object, "spec", "rules") {
		refs := list(asMap(r), "backendRefs")
		zero := len(refs) > 0
		for _, b := range refs {
			m := asMap(b)
			if m == nil {
				zero = false
				continue
			}
			if w, ok := number(m["weight"]); !ok || w != 0 {
				zero = false
			}
			kind, _ := m["kind"].(string)
			if kind != "" && kind != "Service" {
				continue
			}
			name, _ := m["name"].(string)
			backend := key{ns, name}
			if other, _ := m["namespace"].(string); other != "" {
				backend.namespace = other
			}
			if _, ok := c.idx.services[backend]; ok || name == "" || reported[backend] {
				continue
			}
			reported[backend] = true
			if c.idx.complete(backend.namespace) {
				c.report("AMB031", o, backend)
			} else {
				c.unresolved(o, "backendRef names Service "+backend.String(), "if it is missing, requests routed to it fail", "kubectl get service -n "+backend.namespace+" "+name)
			}
		}
		if zero {
			c.report("AMB036", o, i)
		}
	}
}

// weights reports each rule of a route whose written weights do not sum
// to 100 (AMB060), with the shares they really give.
func (c *checker) weights(o *unstructured.Unstructured) {
	for _, r := range traffic.Split(o) {
		live := 0
		for _, b := range r.Backends {
			if b.Share > 0 {
				live++
			}
		}
		if r.Weighted && live > 1 && r.Sum() != 100 {
			c.report("AMB060", o, r.Index, r.Match, r.Sum(), r.Shares())
		}
	}
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case float64:
		return n, true
	case int:
		return float64(n), true
	}
	return 0, false
}

// routeNeedsWaypoint reports a route for a Service of an ambient namespace
// that uses no waypoint.
func (c *checker) routeNeedsWaypoint(o *unstructured.Unstructured, what string, svc key) {
	if c.idx.mode(svc.namespace) != ModeAmbient {
		return // sidecars apply routes themselves; mesh-neutral pods are not routed by Istio
	}
	switch _, b := c.idx.waypointOf(svc); b {
	case unbound:
		c.report("AMB030", o, what, svc, "which uses no waypoint")
	case unresolved:
		c.unresolved(o, what+" Service "+svc.String(), "if neither it nor its namespace is labelled istio.io/use-waypoint, the route is not respected in ambient",
			"kubectl get service -n "+svc.namespace+" "+svc.name+" --show-labels")
	}
}

func (c *checker) virtualService(o *unstructured.Unstructured) {
	if len(stringsOf(list(o.Object, "spec", "gateways"))) > 0 {
		return // bound to ingress gateways, not to the mesh
	}
	c.weights(o)
	ns := namespaceOf(o)
	for _, h := range stringsOf(list(o.Object, "spec", "hosts")) {
		if svc, ok := serviceOfHost(h, ns); ok {
			c.routeNeedsWaypoint(o, "VirtualService for", svc)
		}
	}
	reported := map[string]bool{} // a subset named by several rules is reported once
	for i, r := range list(o.Object, "spec", "http") {
		rule := asMap(r)
		if rule == nil {
			continue
		}
		if rule["fault"] != nil {
			var with []string
			if rule["retries"] != nil {
				with = append(with, "retries")
			}
			if rule["timeout"] != nil {
				with = append(with, "a timeout")
			}
			if len(with) > 0 {
				c.report("AMB033", o, i, strings.Join(with, " and "))
			}
		}
		dests := list(rule, "route")
		zero := len(dests) > 0
		for _, d := range dests {
			dm := asMap(d)
			if w, ok := number(dm["weight"]); !ok || w != 0 {
				zero = false
			}
			c.subset(o, mapping(dm, "destination"), reported)
		}
		if zero {
			c.report("AMB036", o, i)
		}
	}
}

// subset checks that a route destination's subset is defined, once per
// subset and host. A
// DestinationRule may live in the route's namespace, the host's or the root
// namespace, so the subset is missing only when all three are complete.
func (c *checker) subset(o *unstructured.Unstructured, dest map[string]any, reported map[string]bool) {
	name := str(dest, "subset")
	if name == "" {
		return
	}
	ns := namespaceOf(o)
	host := c.idx.fqdn(str(dest, "host"), ns)
	if c.idx.subsets[host][name] || reported[name+" "+host] {
		return
	}
	reported[name+" "+host] = true
	svc, isSvc := serviceOfHost(host, ns)
	if isSvc && c.idx.complete(ns) && c.idx.complete(svc.namespace) && c.idx.complete(ambient.RootNamespace) {
		c.report("AMB035", o, name, host)
		return
	}
	c.unresolved(o, "route names subset "+name+" of host "+host, "if no DestinationRule defines it, requests routed to it fail", "kubectl get destinationrule -A")
}

// crossRoutes reports Services routed by both APIs (AMB032).
func (c *checker) crossRoutes() {
	keys := make([]key, 0, len(c.idx.httpRoutes))
	for svc := range c.idx.httpRoutes {
		if len(c.idx.virtualServices[svc]) > 0 {
			keys = append(keys, svc)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].namespace+"/"+keys[i].name < keys[j].namespace+"/"+keys[j].name })
	for _, svc := range keys {
		for _, vs := range c.idx.virtualServices[svc] {
			c.report("AMB032", vs, svc, strings.Join(c.idx.httpRoutes[svc], ", "), svc.namespace+"/"+vs.GetName())
		}
	}
}
