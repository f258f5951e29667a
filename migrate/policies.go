package migrate

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/access"
	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/meshspec"
)

// authorizationPolicy moves an ALLOW policy on one Service's pods into its
// MeshService's access rules, an empty namespace-wide ALLOW into
// defaultDeny, and defers every other policy to placePolicy.
func (t *translator) authorizationPolicy(o *unstructured.Unstructured) {
	ns := o.GetNamespace()
	_, l7, err := httpAttributes(o)
	if err != nil {
		t.keep(o, "an AuthorizationPolicy meshcd cannot read")
		t.item(o, "kept as written: %v", err)
		return
	}
	if l7 && ns != t.opts.RootNamespace {
		t.needsWaypoint(ns, refOf(o))
	}
	spec, _ := o.Object["spec"].(map[string]any)
	n := t.namespaces[ns]
	switch {
	case n == nil || o.GetAnnotations()["istio.io/dry-run"] != "":
		t.deferred = append(t.deferred, o)
	case isDefaultDeny(spec):
		n.Spec.DefaultDeny = true
		t.old(o, stepPrune, "the sidecar-era allow-nothing policy; the MeshNamespace's default-deny replaces it")
	default:
		svc, rules, ok := t.accessRules(o, spec)
		if !ok {
			t.deferred = append(t.deferred, o)
			return
		}
		ms := t.meshService(svc, 0)
		ms.Spec.Access = append(ms.Spec.Access, rules...)
		t.retire(o, "the sidecar-era policy; the MeshService's access rules replace it")
	}
}

// isDefaultDeny reports an ALLOW policy without selector, targetRefs or
// rules: allow nothing in the namespace.
func isDefaultDeny(spec map[string]any) bool {
	for k, v := range spec {
		if k == "action" && v == "ALLOW" {
			continue
		}
		return false
	}
	return true
}

// accessRules reads an ALLOW policy whose selector picks exactly the pods
// of one Service and whose rules the spec can say.
func (t *translator) accessRules(o *unstructured.Unstructured, spec map[string]any) (*unstructured.Unstructured, []meshspec.AccessRule, bool) {
	if a := str(spec["action"]); a != "" && a != "ALLOW" {
		return nil, nil, false
	}
	selector, _, _ := unstructured.NestedStringMap(spec, "selector", "matchLabels")
	for k := range spec {
		if k != "action" && k != "selector" && k != "rules" {
			return nil, nil, false
		}
	}
	if len(selector) == 0 {
		return nil, nil, false
	}
	names, covered := t.src.servicesCovering(o.GetNamespace(), selector)
	if len(names) != 1 || !covered {
		return nil, nil, false
	}
	svc := t.src.services[o.GetNamespace()+"/"+names[0]]
	rules, _ := spec["rules"].([]any)
	if len(rules) == 0 {
		return nil, nil, false
	}
	var out []meshspec.AccessRule
	for _, raw := range rules {
		r, _ := raw.(map[string]any)
		sources, ok := t.sources(r)
		if !ok {
			return nil, nil, false
		}
		ops, ok := operations(r)
		if !ok {
			return nil, nil, false
		}
		for _, s := range sources {
			for _, op := range ops {
				op.From = s
				out = append(out, op)
			}
		}
	}
	return svc, out, true
}

// sources reads the from of a rule as spec sources.
func (t *translator) sources(r map[string]any) ([]meshspec.Source, bool) {
	for k := range r {
		if k != "from" && k != "to" {
			return nil, false // when conditions
		}
	}
	from, _ := r["from"].([]any)
	if len(from) == 0 {
		return nil, false // any caller: the spec names callers
	}
	var out []meshspec.Source
	for _, f := range from {
		src, _ := nested(f, "source").(map[string]any)
		var s meshspec.Source
		for _, k := range slices.Sorted(maps.Keys(src)) {
			values := stringList(src[k])
			switch k {
			case "principals":
				for _, p := range values {
					parts := strings.Split(p, "/")
					if len(parts) != 5 || parts[0] != t.opts.TrustDomain || parts[1] != "ns" || parts[3] != "sa" || strings.Contains(p, "*") {
						return nil, false
					}
					s.ServiceAccounts = append(s.ServiceAccounts, parts[2]+"/"+parts[4])
				}
			case "namespaces":
				for _, n := range values {
					if strings.Contains(n, "*") {
						return nil, false
					}
				}
				s.Namespaces = values
			case "ipBlocks":
				s.IPBlocks = values
			default:
				return nil, false
			}
		}
		if len(s.ServiceAccounts)+len(s.Namespaces)+len(s.IPBlocks) == 0 {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// operations reads the to of a rule as access rules without callers.
func operations(r map[string]any) ([]meshspec.AccessRule, bool) {
	to, _ := r["to"].([]any)
	if len(to) == 0 {
		return []meshspec.AccessRule{{}}, true
	}
	var out []meshspec.AccessRule
	for _, raw := range to {
		op, _ := nested(raw, "operation").(map[string]any)
		var a meshspec.AccessRule
		for _, k := range slices.Sorted(maps.Keys(op)) {
			values := stringList(op[k])
			switch k {
			case "ports":
				for _, p := range values {
					n, err := strconv.ParseInt(p, 10, 32)
					if err != nil {
						return nil, false
					}
					a.Ports = append(a.Ports, int32(n))
				}
			case "methods":
				a.Methods = values
			case "paths":
				for _, p := range values {
					if !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "*") || strings.Contains(p, "{") {
						return nil, false
					}
				}
				a.Paths = values
			default:
				return nil, false
			}
		}
		out = append(out, a)
	}
	return out, true
}

func stringList(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, e := range list {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

// placePolicy keeps a policy the spec cannot express, placed where ambient
// enforces it. Behind a waypoint ztunnel sees the waypoint's identity, so
// a copy with targetRefs goes on the waypoint and the waypoint is admitted
// at ztunnel; at ztunnel stays what ztunnel enforces as written.
func (t *translator) placePolicy(o *unstructured.Unstructured) {
	ns := o.GetNamespace()
	spec, _ := o.Object["spec"].(map[string]any)
	action := str(spec["action"])
	if action == "" {
		action = "ALLOW"
	}
	rules, l7, _ := httpAttributes(o)
	n := t.namespaces[ns]
	_, targeted := spec["targetRefs"]
	_, targetedOne := spec["targetRef"]
	switch {
	case targeted || targetedOne:
		t.keep(o, "already placed with targetRefs")
		t.item(o, "kept as written; sidecars ignore a policy with targetRefs, but in ambient a waypoint enforces it on the Services it targets, so access there may change")
		return
	case o.GetAnnotations()["istio.io/dry-run"] != "":
		t.keep(o, "a dry-run policy; nothing enforces it")
		return
	case ns == t.opts.RootNamespace:
		t.keep(o, "a mesh-wide policy, enforced by ztunnel in every namespace")
		if l7 {
			t.waypointCopy(o, spec, []any{map[string]any{"group": ambient.GatewayGK.Group, "kind": "GatewayClass", "name": ambient.WaypointClass}})
			t.item(o, "mesh-wide with HTTP attributes: ztunnel enforces it %s, so a copy on every waypoint (targetRefs GatewayClass %s) enforces it whole; "+
				"namespaces without a waypoint get only the ztunnel part", ztunnelEffect(action), ambient.WaypointClass)
		}
		return
	case n == nil:
		t.keep(o, "in a namespace the move does not enroll")
		return
	case n.Spec.Waypoint == nil:
		t.keep(o, "only L4 attributes: ztunnel enforces it as the sidecar did")
		return
	}
	selector, _, _ := unstructured.NestedStringMap(spec, "selector", "matchLabels")
	var targets []any
	if len(selector) == 0 {
		targets = []any{map[string]any{"group": ambient.GatewayGK.Group, "kind": "Gateway", "name": n.Spec.Waypoint.Name}}
	} else {
		names, covered := t.src.servicesCovering(ns, selector)
		if !covered {
			t.keep(o, "selects pods that are not whole Services, so it stays on ztunnel")
			t.item(o, "needs a workload waypoint: its selector picks pods that are not the whole of any Service, and a service waypoint enforces per Service; "+
				"ztunnel enforces it %s. Add a waypoint for: workload (or all) and label these pods istio.io/use-waypoint, then target it", ztunnelEffect(action))
			return
		}
		for _, name := range names {
			targets = append(targets, map[string]any{"group": "", "kind": "Service", "name": name})
		}
	}
	t.waypointCopy(o, spec, targets)
	if action == "ALLOW" {
		admit := newObject(ambient.IstioSecurityAPIVersion, "AuthorizationPolicy", ns, o.GetName()+"-allow-waypoint", map[string]any{
			"action": "ALLOW",
			"rules":  []any{map[string]any{"from": []any{map[string]any{"source": map[string]any{"principals": []any{ambient.Principal(t.opts.TrustDomain, ns, n.Spec.Waypoint.Name)}}}}}},
		})
		if len(selector) > 0 {
			admit.Object["spec"].(map[string]any)["selector"] = spec["selector"]
		}
		t.add(&Document{Namespace: ns, Object: admit, from: stepPolicies, until: stepEnd,
			Why: "admits the waypoint at ztunnel beside " + o.GetName() + ": behind the waypoint ztunnel sees the waypoint's identity"})
	}
	switch {
	case !l7 && (action == "ALLOW" || action == "DENY"):
		t.keep(o, "enforced by ztunnel for calls that do not pass the waypoint; its copy "+o.GetName()+"-waypoint enforces it at the waypoint")
	case action == "ALLOW":
		cut := Clean(o)
		var l4 []any
		for i, r := range spec["rules"].([]any) {
			if len(rules[i]) == 0 {
				l4 = append(l4, r)
			}
		}
		if l4 == nil {
			l4 = []any{}
		}
		cut.Object["spec"].(map[string]any)["rules"] = l4
		t.retire(o, "the sidecar-era policy, with HTTP rules ztunnel cannot enforce; the prune stage cuts it to its L4 rules")
		t.add(&Document{Namespace: ns, Object: cut, from: stepPrune, until: stepEnd,
			Why: "the L4 rules of the sidecar-era policy, for calls that do not pass the waypoint; its copy " + o.GetName() + "-waypoint enforces every rule at the waypoint"})
		t.item(o, "its rules with HTTP attributes are enforced at the waypoint only (%s-waypoint); at ztunnel it keeps its L4 rules, so a call straight to a pod gets only those", o.GetName())
	default:
		t.retire(o, "the sidecar-era "+action+" policy; its copy "+o.GetName()+"-waypoint replaces it")
		t.item(o, "%s enforced at the waypoint only (%s-waypoint): at ztunnel it would be %s; a call straight to a pod skips it. "+
			"Set waypointOnly on MeshNamespace %s where that matters", action, o.GetName(), ztunnelEffect(action), ns)
	}
}

// ztunnelEffect says what ztunnel makes of a policy with HTTP attributes
// (pilot/pkg/serviceregistry/ambient/authorization.go, handleRule).
func ztunnelEffect(action string) string {
	switch action {
	case "ALLOW":
		return "without its rules that have HTTP attributes, so it allows less"
	case "DENY":
		return "without its HTTP attributes, so it denies more"
	}
	return "not at all (" + action + " is refused there)"
}

// waypointCopy adds the copy of o that the waypoint enforces.
func (t *translator) waypointCopy(o *unstructured.Unstructured, spec map[string]any, targets []any) {
	c := map[string]any{}
	for k, v := range Clean(o).Object["spec"].(map[string]any) {
		if k != "selector" {
			c[k] = v
		}
	}
	c["targetRefs"] = targets
	cp := newObject(o.GetAPIVersion(), o.GetKind(), o.GetNamespace(), o.GetName()+"-waypoint", c)
	t.add(&Document{Namespace: o.GetNamespace(), Object: cp, from: stepPolicies, until: stepEnd,
		Why: "the waypoint's copy of " + o.GetName() + ", placed with targetRefs; the spec's access rules cannot say it"})
}

func newObject(apiVersion, kind, ns, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": ns}, "spec": spec}}
}

// peerAuthentication moves a namespace-wide mode into the MeshNamespace.
func (t *translator) peerAuthentication(o *unstructured.Unstructured) {
	ns := o.GetNamespace()
	spec, _ := o.Object["spec"].(map[string]any)
	mode := str(nested(spec, "mtls", "mode"))
	n := t.namespaces[ns]
	switch {
	case mode == "DISABLE":
		t.old(o, stepAmbient, "the sidecar-era mTLS DISABLE")
		t.item(o, "not carried over: ambient refuses mTLS DISABLE, and ztunnel accepts mTLS and plaintext alike (PERMISSIVE); "+
			"callers in the mesh now call with their identity")
	case n == nil || spec["selector"] != nil || spec["portLevelMtls"] != nil || (mode != "STRICT" && mode != "PERMISSIVE"):
		t.keep(o, "a PeerAuthentication the MeshNamespace's mtls cannot say; ztunnel enforces it as written")
	default:
		n.Spec.MTLS = meshspec.MTLSMode(mode)
		t.old(o, stepAmbient, "the sidecar-era PeerAuthentication; the MeshNamespace's mtls replaces it")
	}
}

// requestAuthentication moves a selector RequestAuthentication to
// targetRefs on the waypoint: ztunnel validates no JWT.
func (t *translator) requestAuthentication(o *unstructured.Unstructured) {
	ns := o.GetNamespace()
	spec, _ := o.Object["spec"].(map[string]any)
	if spec["targetRefs"] != nil || spec["targetRef"] != nil || t.namespaces[ns] == nil {
		t.keep(o, "a RequestAuthentication already placed with targetRefs, or outside the namespaces the move enrolls")
		return
	}
	selector, _, _ := unstructured.NestedStringMap(spec, "selector", "matchLabels")
	targets := []any{map[string]any{"group": ambient.GatewayGK.Group, "kind": "Gateway", "name": meshspec.DefaultWaypointName}}
	if len(selector) > 0 {
		names, covered := t.src.servicesCovering(ns, selector)
		if !covered {
			t.keep(o, "selects pods that are not whole Services")
			t.item(o, "needs a workload waypoint: ztunnel validates no JWT and its selector picks pods that are not the whole of any Service; "+
				"add a waypoint for: workload and move it to targetRefs on it")
			return
		}
		targets = nil
		for _, name := range names {
			targets = append(targets, map[string]any{"group": "", "kind": "Service", "name": name})
		}
	}
	t.needsWaypoint(ns, refOf(o))
	t.waypointCopy(o, spec, targets)
	t.retire(o, "the sidecar-era RequestAuthentication; its copy "+o.GetName()+"-waypoint replaces it")
	t.item(o, "moved to targetRefs (%s-waypoint): ztunnel validates no JWT, so the waypoint does; a call straight to a pod skips the check", o.GetName())
}

// retire keeps a sidecar-era policy until the prune stage. One that ztunnel
// would misread once the pods restart into ambient (HTTP attributes, CUSTOM
// or AUDIT, a RequestAuthentication) is narrowed in the injection stage to
// the pods that still have sidecars, by the label the injector puts on
// them, so that neither kind of pod is left without its policy while the
// workloads restart.
func (t *translator) retire(o *unstructured.Unstructured, why string) {
	_, l7, _ := httpAttributes(o)
	action := str(nested(o.Object, "spec", "action"))
	if o.GetKind() == "AuthorizationPolicy" && !l7 && (action == "" || action == "ALLOW" || action == "DENY") {
		t.old(o, stepPrune, why)
		return
	}
	t.old(o, stepInjection, why)
	c := Clean(o)
	selector, _, _ := unstructured.NestedStringMap(c.Object, "spec", "selector", "matchLabels")
	labels := map[string]any{access.LabelTLSMode: "istio"}
	for k, v := range selector {
		labels[k] = v
	}
	spec, _ := c.Object["spec"].(map[string]any)
	if spec == nil {
		spec = map[string]any{}
		c.Object["spec"] = spec
	}
	spec["selector"] = map[string]any{"matchLabels": labels}
	t.add(&Document{Namespace: o.GetNamespace(), Object: c, from: stepInjection, until: stepPrune,
		Why: why + "; while the workloads restart it applies only to pods that still have a sidecar (" + access.LabelTLSMode + "=istio), since ztunnel would misread it"})
}
