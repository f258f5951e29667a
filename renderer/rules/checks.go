package rules

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/meshspec"
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
	ambient.EnvoyFilterGK:           func(c *checker, o *unstructured.Unstructured) { c.inAmbient(o, "AMB040") },
	ambient.SidecarGK:               func(c *checker, o *unstructured.Unstructured) { c.inAmbient(o, "AMB041") },
}

// ruleIDs are the rules checks can report, for the catalogue's own test.
var ruleIDs = []string{"AMB001", "AMB002", "AMB010", "AMB011", "AMB012", "AMB013", "AMB014", "AMB020", "AMB021", "AMB022", "AMB023", "AMB024", "AMB025", "AMB030", "AMB031", "AMB032", "AMB033", "AMB034", "AMB035", "AMB036", "AMB040", "AMB041"}

func (c *checker) inAmbient(o *unstructured.Unstructured, id string) {
	if amb, _ := c.idx.ambient(o.GetNamespace()); amb {
		c.report(id, o, o.GetNamespace())
	}
}

func (c *checker) namespace(o *unstructured.Unstructured) {
	labels := o.GetLabels()
	amb := labels[ambient.LabelDataplaneMode] == "ambient"
	if amb {
		var injection []string
		if labels[ambient.LabelInjection] == "enabled" {
			injection = append(injection, ambient.LabelInjection+"=enabled")
		}
		if rev := labels[ambient.LabelRev]; rev != "" {
			injection = append(injection, ambient.LabelRev+"="+rev)
		}
		if len(injection) > 0 {
			c.report("AMB001", o, strings.Join(injection, ", "))
		}
	}
	if name := labels[ambient.LabelUseWaypoint]; name != "" && name != "none" {
		if !amb {
			c.report("AMB013", o, o.GetName())
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
	if amb, known := c.idx.ambient(o.GetNamespace()); known && !amb {
		c.report("AMB013", o, o.GetNamespace())
	}
	c.useWaypoint(o, meshspec.RefOf(o).String(), waypointRef(labels, o.GetNamespace(), name), true)
}

// useWaypoint checks that the named waypoint exists and accepts the
// traffic of the consumer: service traffic for Namespaces and Services,
// workload traffic for pods.
func (c *checker) useWaypoint(o *unstructured.Unstructured, who string, wp key, services bool) {
	gw, ok := c.idx.gateways[wp]
	if !ok {
		c.report("AMB010", o, wp.namespace+"/"+wp.name)
		return
	}
	f := waypointFor(gw)
	switch {
	case services && (f == "workload" || f == "none"):
		c.report("AMB011", o, who, wp.namespace+"/"+wp.name, f, "service")
	case !services && (f == "service" || f == "none"):
		c.report("AMB011", o, who, wp.namespace+"/"+wp.name, f, "workload")
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
	labels := mapping(t, "metadata", "labels")
	annotations := mapping(t, "metadata", "annotations")
	amb, _ := c.idx.ambient(o.GetNamespace())
	if amb && (labels[ambient.LabelSidecarInject] == "true" || annotations[ambient.LabelSidecarInject] == "true") {
		c.report("AMB002", o, ambient.LabelSidecarInject+"=true", o.GetNamespace())
	}
	name, _ := labels[ambient.LabelUseWaypoint].(string)
	if name == "" || name == "none" {
		return
	}
	if _, known := c.idx.ambient(o.GetNamespace()); known && !amb && labels[ambient.LabelDataplaneMode] != "ambient" {
		c.report("AMB013", o, o.GetNamespace())
	}
	strLabels := map[string]string{}
	if ns, ok := labels[ambient.LabelUseWaypointNamespace].(string); ok {
		strLabels[ambient.LabelUseWaypointNamespace] = ns
	}
	c.useWaypoint(o, "the pods of "+meshspec.RefOf(o).String(), waypointRef(strLabels, o.GetNamespace(), name), false)
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

// policyPlacement checks AMB021 and reports whether the policy is enforced
// by ztunnel (no targetRefs, in a namespace known to be ambient).
func (c *checker) policyPlacement(o *unstructured.Unstructured) (ztunnel bool) {
	refs := targetRefs(o)
	if mapping(o.Object, "spec", "selector") != nil && len(refs) > 0 {
		c.report("AMB021", o)
	}
	amb, _ := c.idx.ambient(o.GetNamespace())
	if len(refs) == 0 {
		return amb
	}
	for _, r := range refs {
		if !isServiceRef(r) {
			continue
		}
		name, _ := r["name"].(string)
		svc := key{o.GetNamespace(), name}
		_, bound, known := c.idx.waypointOf(svc)
		switch {
		case !known:
			if _, exists := c.idx.services[svc]; !exists && c.idx.namespaces[svc.namespace] != nil {
				c.report("AMB022", o, svc.namespace+"/"+name, "which is not in the rendered input (it may exist in the cluster: check with --live)")
			}
		case !bound:
			c.report("AMB022", o, svc.namespace+"/"+name, "which uses no waypoint")
		}
	}
	return false
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
	effect := "as an ALLOW the L7 rules are dropped, so it allows less than written"
	if action == "DENY" {
		effect = "as a DENY its L7 rules never match, so it denies less than written"
	}
	c.report("AMB020", o, strings.Join(l7, ", "), effect)
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func (c *checker) requestAuthentication(o *unstructured.Unstructured) {
	if c.policyPlacement(o) {
		c.report("AMB024", o, o.GetNamespace())
	}
}

func (c *checker) peerAuthentication(o *unstructured.Unstructured) {
	amb, _ := c.idx.ambient(o.GetNamespace())
	if !amb {
		return
	}
	if str(o.Object, "spec", "mtls", "mode") == "DISABLE" {
		c.report("AMB025", o, "", o.GetNamespace())
	}
	ports := mapping(o.Object, "spec", "portLevelMtls")
	var disabled []string
	for port, v := range ports {
		if str(asMap(v), "mode") == "DISABLE" {
			disabled = append(disabled, port)
		}
	}
	if len(disabled) > 0 {
		sort.Strings(disabled)
		c.report("AMB025", o, " on ports "+strings.Join(disabled, ", "), o.GetNamespace())
	}
}

func (c *checker) httpRoute(o *unstructured.Unstructured) {
	for _, svc := range routeServices(o) {
		if svc.namespace != o.GetNamespace() {
			c.report("AMB034", o, svc.namespace+"/"+svc.name, svc.namespace)
			continue
		}
		c.routeNeedsWaypoint(o, "HTTPRoute with parent", svc)
	}
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
			ns, _ := m["namespace"].(string)
			if ns == "" {
				ns = o.GetNamespace()
			}
			if _, ok := c.idx.services[key{ns, name}]; !ok && name != "" {
				c.report("AMB031", o, ns+"/"+name)
			}
		}
		if zero {
			c.report("AMB036", o, i)
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

// routeNeedsWaypoint reports a route for a Service known to use no waypoint.
func (c *checker) routeNeedsWaypoint(o *unstructured.Unstructured, what string, svc key) {
	_, bound, known := c.idx.waypointOf(svc)
	if known && !bound {
		c.report("AMB030", o, what, svc.namespace+"/"+svc.name, "which uses no waypoint")
	}
}

func (c *checker) virtualService(o *unstructured.Unstructured) {
	if len(stringsOf(list(o.Object, "spec", "gateways"))) > 0 {
		return // bound to ingress gateways, not to the mesh
	}
	for _, h := range stringsOf(list(o.Object, "spec", "hosts")) {
		if svc, ok := serviceOfHost(h, o.GetNamespace()); ok {
			c.routeNeedsWaypoint(o, "VirtualService for", svc)
		}
	}
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
			dest := mapping(dm, "destination")
			subset := str(dest, "subset")
			if subset == "" {
				continue
			}
			host := c.idx.fqdn(str(dest, "host"), o.GetNamespace())
			if !c.idx.subsets[host][subset] {
				c.report("AMB035", o, subset, host)
			}
		}
		if zero {
			c.report("AMB036", o, i)
		}
	}
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
			c.report("AMB032", vs, svc.namespace+"/"+svc.name, strings.Join(c.idx.httpRoutes[svc], ", "), vs.GetName())
		}
	}
}
