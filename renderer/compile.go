package renderer

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/meshspec"
)

// builder collects rendered objects and where each came from.
type builder struct {
	opts    Options
	set     *meshspec.Set
	bundle  *Bundle
	byRef   map[meshspec.Ref]*unstructured.Unstructured
	errs    []error
	current meshspec.Ref // the spec document being compiled
}

// compile renders the completed spec set.
func compile(set *meshspec.Set, opts Options) (*Bundle, error) {
	size := len(set.Manifests) + 4*len(set.Namespaces) + 10*len(set.Services) // about what one spec document renders
	b := &builder{opts: opts, set: set,
		bundle: &Bundle{Spec: set, Objects: make([]*unstructured.Unstructured, 0, size), origins: make(map[meshspec.Ref]meshspec.Position, size)},
		byRef:  make(map[meshspec.Ref]*unstructured.Unstructured, size)}
	for _, m := range set.Manifests {
		obj := m.DeepCopy()
		if obj.GroupVersionKind().GroupKind() == ambient.NamespaceGK {
			obj = partialNamespace(obj)
		}
		own(obj, "", "")
		pos, _ := set.Origin(meshspec.RefOf(m))
		b.add(obj, pos)
	}
	for _, n := range set.Namespaces {
		b.current = meshspec.Ref{Group: meshspec.Group, Kind: meshspec.KindMeshNamespace, Name: n.Name}
		b.namespace(n)
	}
	for _, s := range set.Services {
		b.current = meshspec.Ref{Group: meshspec.Group, Kind: meshspec.KindMeshService, Namespace: s.Namespace, Name: s.Name}
		b.service(s)
	}
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	sortObjects(b.bundle.Objects)
	return b.bundle, nil
}

// add records a finished object.
func (b *builder) add(obj *unstructured.Unstructured, pos meshspec.Position) {
	ref := meshspec.RefOf(obj)
	if _, dup := b.byRef[ref]; dup {
		b.errs = append(b.errs, fmt.Errorf("%s: %s is rendered twice, also from %s; remove one of them", pos, ref, b.bundle.origins[ref]))
		return
	}
	if b.opts.Instance != "" {
		labels := obj.GetLabels()
		labels[ambient.LabelInstance] = b.opts.Instance
		obj.SetLabels(labels)
	}
	b.byRef[ref] = obj
	b.bundle.origins[ref] = pos
	b.bundle.Objects = append(b.bundle.Objects, obj)
}

// emit adds an object rendered from the current spec document.
func (b *builder) emit(obj *unstructured.Unstructured) {
	own(obj, b.current.Kind, b.current.Name)
	pos, _ := b.set.Origin(b.current)
	b.add(obj, pos)
}

// label sets meshcd's labels on an object it does not own: on the
// manifest in the input when there is one (meshcd then owns all of it),
// else on a partial object carrying only those labels.
func (b *builder) label(apiVersion, kind, namespace, name string, labels map[string]string) {
	ref := meshspec.Ref{Kind: kind, Namespace: namespace, Name: name}
	if existing, ok := b.byRef[ref]; ok {
		l := existing.GetLabels()
		for k, v := range labels {
			l[k] = v
		}
		existing.SetLabels(l)
		return
	}
	obj := object(apiVersion, kind, namespace, name)
	obj.SetLabels(labels)
	obj.SetAnnotations(map[string]string{ambient.AnnotationOwnership: ambient.OwnershipPartial})
	b.emit(obj)
}

func (b *builder) namespace(n *meshspec.MeshNamespace) {
	sp := &n.Spec
	ns := n.Name
	if ns != b.opts.RootNamespace {
		labels := map[string]string{ambient.LabelDataplaneMode: string(sp.Dataplane)}
		if sp.Waypoint != nil && sp.UseWaypoint == meshspec.UseWaypointNamespace {
			labels[ambient.LabelUseWaypoint] = sp.Waypoint.Name
		}
		b.label("v1", "Namespace", "", ns, labels)
	}
	if w := sp.Waypoint; w != nil {
		b.emit(waypoint(ns, w))
	}
	if sp.MTLS != "" {
		b.emit(withSpec(object(ambient.IstioSecurityAPIVersion, "PeerAuthentication", ns, "default"), map[string]any{
			"mtls": map[string]any{"mode": string(sp.MTLS)},
		}))
	}
	if sp.WaypointOnly {
		// The guard: ztunnel admits only the waypoint's identity, so traffic
		// that skips the waypoint is refused instead of unchecked.
		b.emit(waypointOnly(ns, "waypoint-only", nil, b.principal(ns, sp.Waypoint.Name)))
	}
	if sp.DefaultDeny {
		// An ALLOW policy without rules allows nothing: ztunnel denies all
		// traffic not admitted by another policy.
		b.emit(withSpec(object(ambient.IstioSecurityAPIVersion, "AuthorizationPolicy", ns, "default-deny"), map[string]any{}))
		if w := sp.Waypoint; w != nil && !sp.WaypointOnly {
			// Traffic through the waypoint reaches pods from the waypoint's
			// identity; without this, default deny would cut it off.
			b.emit(withSpec(object(ambient.IstioSecurityAPIVersion, "AuthorizationPolicy", ns, "allow-waypoint"), map[string]any{
				"action": "ALLOW",
				"rules":  []any{fromPrincipals(b.principal(ns, w.Name))},
			}))
		}
	}
}

// waypointOnly is the ztunnel-enforced guard that admits only the waypoint
// principal to the pods selector matches (all pods of the namespace when
// nil). A rollout's canary waypoint is added to it while one runs.
func waypointOnly(ns, name string, selector map[string]string, principal string) *unstructured.Unstructured {
	spec := map[string]any{"action": "ALLOW", "rules": []any{fromPrincipals(principal)}}
	if selector != nil {
		spec["selector"] = map[string]any{"matchLabels": stringMap(selector)}
	}
	return withSpec(object(ambient.IstioSecurityAPIVersion, "AuthorizationPolicy", ns, name), spec)
}

// partialNamespace keeps only the labels and annotations of a Namespace
// manifest: meshcd never creates or deletes a Namespace, since deleting one
// deletes everything in it.
func partialNamespace(m *unstructured.Unstructured) *unstructured.Unstructured {
	obj := object("v1", "Namespace", "", m.GetName())
	obj.SetLabels(m.GetLabels())
	annotations := m.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[ambient.AnnotationOwnership] = ambient.OwnershipPartial
	obj.SetAnnotations(annotations)
	return obj
}

// waypoint renders what `istioctl waypoint generate` writes.
func waypoint(ns string, w *meshspec.Waypoint) *unstructured.Unstructured {
	gw := object(ambient.GatewayAPIVersion, "Gateway", ns, w.Name)
	labels := map[string]string{ambient.LabelWaypointFor: string(w.For)}
	if w.Revision != "" {
		labels[ambient.LabelRev] = w.Revision
	}
	gw.SetLabels(labels)
	return withSpec(gw, map[string]any{
		"gatewayClassName": ambient.WaypointClass,
		"listeners": []any{map[string]any{
			"name": ambient.WaypointListenerName, "port": int64(ambient.WaypointPort), "protocol": ambient.WaypointProtocol,
		}},
	})
}

func (b *builder) service(s *meshspec.MeshService) {
	sp := &s.Spec
	ns, name := s.Namespace, s.Name
	w := b.set.WaypointOf(s)
	if w != nil {
		if n := b.set.Namespace(ns); n != nil && n.Spec.UseWaypoint == meshspec.UseWaypointServices {
			b.label("v1", "Service", ns, name, map[string]string{ambient.LabelUseWaypoint: w.Name})
		}
	}
	versions := sortedKeys(sp.Versions)
	for _, v := range versions {
		selector := map[string]any{}
		for k, val := range sp.Selector {
			selector[k] = val
		}
		for k, val := range sp.Versions[v] {
			selector[k] = val
		}
		b.emit(withSpec(object("v1", "Service", ns, name+"-"+v), map[string]any{
			"selector": selector,
			"ports": []any{map[string]any{
				"name": "http", "port": int64(sp.Port), "targetPort": int64(sp.TargetPort), "protocol": "TCP",
			}},
		}))
	}
	b.routes(s)
	if sp.Faults != nil {
		b.emit(faults(s))
	}
	if sp.CircuitBreaker != nil {
		hosts := []string{name}
		for _, v := range versions {
			hosts = append(hosts, name+"-"+v)
		}
		for _, h := range hosts {
			b.emit(withSpec(object(ambient.IstioNetworkingAPIVersion, "DestinationRule", ns, h), map[string]any{
				"host":          fqdn(h, ns),
				"trafficPolicy": trafficPolicy(sp.CircuitBreaker),
			}))
		}
	}
	guarded := w != nil && (sp.WaypointOnly || b.set.Namespace(ns).Spec.WaypointOnly)
	if w != nil && sp.WaypointOnly && !b.set.Namespace(ns).Spec.WaypointOnly {
		b.emit(waypointOnly(ns, name+"-waypoint-only", sp.Selector, b.principal(ns, w.Name)))
	}
	targets := b.policyTargets(s, versions)
	b.access(s, w, guarded, targets)
	if j := sp.JWT; j != nil {
		rule := map[string]any{"issuer": j.Issuer, "jwksUri": j.JWKSURI}
		if len(j.Audiences) > 0 {
			rule["audiences"] = anyList(j.Audiences)
		}
		b.emit(withSpec(object(ambient.IstioSecurityAPIVersion, "RequestAuthentication", ns, name+"-jwt"), map[string]any{
			"targetRefs": targets,
			"jwtRules":   []any{rule},
		}))
		if j.Required {
			// A DENY for requests without a valid token. An ALLOW requiring
			// requestPrincipals would be ORed with the service's other ALLOW
			// policies and require nothing.
			b.emit(withSpec(object(ambient.IstioSecurityAPIVersion, "AuthorizationPolicy", ns, name+"-require-jwt"), map[string]any{
				"targetRefs": targets,
				"action":     "DENY",
				"rules":      []any{map[string]any{"from": []any{map[string]any{"source": map[string]any{"notRequestPrincipals": []any{"*"}}}}}},
			}))
		}
	}
}

// maxTargetRefs is the most targetRefs an Istio policy takes (maxItems in
// the AuthorizationPolicy and RequestAuthentication CRDs,
// manifests/charts/base/files/crd-all.gen.yaml).
const maxTargetRefs = 16

// policyTargets are the Services the waypoint policies of s target: s, and
// its per-version Services when they use the same waypoint, which they do
// through the Namespace's istio.io/use-waypoint label. A waypoint builds a
// filter chain per Service it serves, each with only the policies that
// target that Service (buildWaypointHTTPFilters in
// pilot/pkg/networking/core/listener_waypoint.go, authz.NewBuilderForService),
// so a call addressed to orders-v1 would otherwise skip the policies of
// orders while reaching the same pods.
func (b *builder) policyTargets(s *meshspec.MeshService, versions []string) []any {
	refs := serviceRef(s.Name)
	n := b.set.Namespace(s.Namespace)
	if b.set.WaypointOf(s) == nil || n.Spec.UseWaypoint != meshspec.UseWaypointNamespace {
		return refs
	}
	if len(versions)+1 > maxTargetRefs {
		pos, _ := b.set.Origin(b.current)
		b.errs = append(b.errs, fmt.Errorf("%s: MeshService %s/%s has %d versions, but its policies must also target each per-version Service and a policy takes at most %d targetRefs: use at most %d versions",
			pos, s.Namespace, s.Name, len(versions), maxTargetRefs, maxTargetRefs-1))
		return refs
	}
	for _, v := range versions {
		refs = append(refs, serviceRef(s.Name+"-"+v)...)
	}
	return refs
}

// access compiles access rules to where ambient enforces them. Behind a
// waypoint every rule is enforced there, where the caller's identity is
// seen; ztunnel keeps the L4 rules for traffic that bypasses the waypoint
// and admits the waypoint itself. Under the waypoint-only guard no traffic
// bypasses the waypoint, and ztunnel keeps no rule of its own: an ALLOW
// rule there would admit its sources past the guard.
//
// Behind a waypoint, a service account or namespace that an L7 rule names
// is held to the L7 rules: the L4 rules leave it out, at the waypoint and
// at ztunnel. The rules of an ALLOW policy are ORed (one Envoy RBAC policy
// per rule, pilot/pkg/security/authz/builder/builder.go), so an L4 rule for
// the same caller would let it use every method and path and leave the L7
// rule restricting nothing.
func (b *builder) access(s *meshspec.MeshService, w *meshspec.Waypoint, guarded bool, targets []any) {
	sp := &s.Spec
	if len(sp.Access) == 0 {
		return
	}
	ns, name := s.Namespace, s.Name
	var held heldCallers
	if w != nil {
		held = heldBy(sp.Access)
	}
	var l4, all []any
	for _, r := range sp.Access {
		if r.IsL7() {
			all = append(all, b.accessRule(r, held, true))
			continue
		}
		if rule := b.accessRule(r, held, false); rule != nil {
			l4 = append(l4, rule)
			all = append(all, rule)
		}
	}
	selector := map[string]any{"matchLabels": stringMap(sp.Selector)}
	if len(l4) > 0 && !guarded {
		b.emit(withSpec(object(ambient.IstioSecurityAPIVersion, "AuthorizationPolicy", ns, name+"-l4"), map[string]any{
			"selector": selector, "action": "ALLOW", "rules": l4,
		}))
	}
	if w == nil {
		return // Complete refused L7 rules without a waypoint
	}
	b.emit(withSpec(object(ambient.IstioSecurityAPIVersion, "AuthorizationPolicy", ns, name+"-l7"), map[string]any{
		"targetRefs": targets, "action": "ALLOW", "rules": all,
	}))
	if guarded {
		return // the guard admits the waypoint
	}
	b.emit(withSpec(object(ambient.IstioSecurityAPIVersion, "AuthorizationPolicy", ns, name+"-allow-waypoint"), map[string]any{
		"selector": selector, "action": "ALLOW", "rules": []any{fromPrincipals(b.principal(ns, w.Name))},
	}))
}

// heldCallers are the service accounts and namespaces the L7 rules name.
type heldCallers struct {
	serviceAccounts, namespaces map[string]bool
}

func heldBy(rules []meshspec.AccessRule) heldCallers {
	h := heldCallers{serviceAccounts: map[string]bool{}, namespaces: map[string]bool{}}
	for _, r := range rules {
		if !r.IsL7() {
			continue
		}
		for _, sa := range r.From.ServiceAccounts {
			h.serviceAccounts[sa] = true
		}
		for _, n := range r.From.Namespaces {
			h.namespaces[n] = true
		}
	}
	return h
}

// narrow leaves the held callers out of an L4 rule's source. It returns
// false when nobody is left: the source ANDs its fields, so a list of
// service accounts or namespaces emptied matches nobody.
func (h heldCallers) narrow(from meshspec.Source) (meshspec.Source, []string, []string, bool) {
	out := meshspec.Source{IPBlocks: from.IPBlocks}
	for _, sa := range from.ServiceAccounts {
		saNS, _, _ := strings.Cut(sa, "/")
		if !h.serviceAccounts[sa] && !h.namespaces[saNS] {
			out.ServiceAccounts = append(out.ServiceAccounts, sa)
		}
	}
	for _, n := range from.Namespaces {
		if !h.namespaces[n] {
			out.Namespaces = append(out.Namespaces, n)
		}
	}
	if len(from.ServiceAccounts) > 0 && len(out.ServiceAccounts) == 0 || len(from.Namespaces) > 0 && len(out.Namespaces) == 0 {
		return out, nil, nil, false
	}
	if len(out.ServiceAccounts) > 0 {
		return out, nil, nil, true // every one is named, none held
	}
	// The rule names callers by namespace or address: leave out the held
	// service accounts it would match, and the held namespaces.
	var notSAs, notNamespaces []string
	for _, sa := range sortedKeys(h.serviceAccounts) {
		saNS, _, _ := strings.Cut(sa, "/")
		if len(out.Namespaces) == 0 || slices.Contains(out.Namespaces, saNS) {
			notSAs = append(notSAs, sa)
		}
	}
	if len(out.Namespaces) == 0 {
		notNamespaces = sortedKeys(h.namespaces)
	}
	return out, notSAs, notNamespaces, true
}

// accessRule renders one access rule, an L4 one without the callers held
// to the L7 rules; nil when it is left with none.
func (b *builder) accessRule(r meshspec.AccessRule, held heldCallers, l7 bool) map[string]any {
	source := map[string]any{}
	if !l7 && held.serviceAccounts != nil {
		from, notSAs, notNamespaces, ok := held.narrow(r.From)
		if !ok {
			return nil
		}
		r.From = from
		if len(notSAs) > 0 {
			source["notPrincipals"] = b.principals(notSAs)
		}
		if len(notNamespaces) > 0 {
			source["notNamespaces"] = anyList(notNamespaces)
		}
	}
	if len(r.From.ServiceAccounts) > 0 {
		source["principals"] = b.principals(r.From.ServiceAccounts)
	}
	if len(r.From.Namespaces) > 0 {
		source["namespaces"] = anyList(r.From.Namespaces)
	}
	if len(r.From.IPBlocks) > 0 {
		source["ipBlocks"] = anyList(r.From.IPBlocks)
	}
	rule := map[string]any{"from": []any{map[string]any{"source": source}}}
	op := map[string]any{}
	if len(r.Ports) > 0 {
		var ports []any
		for _, p := range r.Ports {
			ports = append(ports, strconv.Itoa(int(p)))
		}
		op["ports"] = ports
	}
	if len(r.Methods) > 0 {
		op["methods"] = anyList(r.Methods)
	}
	if len(r.Paths) > 0 {
		op["paths"] = anyList(r.Paths)
	}
	if len(op) > 0 {
		rule["to"] = []any{map[string]any{"operation": op}}
	}
	return rule
}

// principals spells NS/SA service accounts as principals.
func (b *builder) principals(serviceAccounts []string) []any {
	var ps []any
	for _, sa := range serviceAccounts {
		ns, n, _ := strings.Cut(sa, "/")
		ps = append(ps, b.principal(ns, n))
	}
	return ps
}

func (b *builder) principal(ns, serviceAccount string) string {
	return ambient.Principal(b.opts.TrustDomain, ns, serviceAccount)
}

func fromPrincipals(p ...string) map[string]any {
	return map[string]any{"from": []any{map[string]any{"source": map[string]any{"principals": anyList(p)}}}}
}

// routes renders one HTTPRoute on the Service, or one VirtualService when
// the retry conditions need more than Gateway API can say: never both.
func (b *builder) routes(s *meshspec.MeshService) {
	sp := &s.Spec
	if len(sp.Routes) == 0 && sp.Resilience == nil {
		return
	}
	if httpRouteCanCarry(sp.Resilience) {
		b.emit(httpRoute(s))
		return
	}
	b.emit(virtualService(s))
}

// istiodRetryOn are the conditions istiod always sets for an HTTPRoute retry.
var istiodRetryOn = map[string]bool{"connect-failure": true, "refused-stream": true, "unavailable": true, "cancelled": true}

// retryCodes are the status codes a condition stands for on an HTTPRoute.
var retryCodes = map[string][]int64{"gateway-error": {502, 503, 504}}

func httpRouteCanCarry(r *meshspec.Resilience) bool {
	if r == nil || r.Retries == nil {
		return true
	}
	for _, on := range r.Retries.On {
		if _, err := strconv.Atoi(on); err != nil && !istiodRetryOn[on] && retryCodes[on] == nil {
			return false
		}
	}
	return true
}

func httpRoute(s *meshspec.MeshService) *unstructured.Unstructured {
	sp := &s.Spec
	port := int64(sp.Port)
	var rules []any
	routes := sp.Routes
	if len(routes) == 0 {
		routes = []meshspec.Route{{}} // resilience alone: one rule to the Service itself
	}
	for _, r := range routes {
		rule := map[string]any{}
		if m := httpMatch(r.Match); m != nil {
			rule["matches"] = []any{m}
		}
		var refs []any
		for _, v := range sortedKeys(r.Backends) {
			refs = append(refs, map[string]any{"group": "", "kind": "Service", "name": s.Name + "-" + v, "port": port, "weight": int64(r.Backends[v])})
		}
		if len(r.Backends) == 0 {
			refs = []any{map[string]any{"group": "", "kind": "Service", "name": s.Name, "port": port}}
		}
		rule["backendRefs"] = refs
		if res := sp.Resilience; res != nil {
			timeouts := map[string]any{}
			if res.Timeout != nil {
				timeouts["request"] = gatewayDuration(res.Timeout.Duration)
			}
			if rt := res.Retries; rt != nil {
				if rt.PerTryTimeout != nil {
					timeouts["backendRequest"] = gatewayDuration(rt.PerTryTimeout.Duration)
				}
				retry := map[string]any{"attempts": int64(rt.Attempts)}
				if codes := retryCodeList(rt.On); len(codes) > 0 {
					retry["codes"] = codes
				}
				rule["retry"] = retry
			}
			if len(timeouts) > 0 {
				rule["timeouts"] = timeouts
			}
		}
		rules = append(rules, rule)
	}
	return withSpec(object(ambient.GatewayAPIVersion, "HTTPRoute", s.Namespace, s.Name), map[string]any{
		"parentRefs": []any{map[string]any{"group": "", "kind": "Service", "name": s.Name, "port": port}},
		"rules":      rules,
	})
}

// retryCodeList turns retry conditions into the sorted, distinct status
// codes of an HTTPRoute retry.
func retryCodeList(on []string) []any {
	seen := map[int64]bool{}
	for _, o := range on {
		if c, err := strconv.Atoi(o); err == nil {
			seen[int64(c)] = true
		}
		for _, c := range retryCodes[o] {
			seen[c] = true
		}
	}
	codes := make([]int64, 0, len(seen))
	for c := range seen {
		codes = append(codes, c)
	}
	sort.Slice(codes, func(i, j int) bool { return codes[i] < codes[j] })
	out := make([]any, len(codes))
	for i, c := range codes {
		out[i] = c
	}
	return out
}

func httpMatch(m *meshspec.Match) map[string]any {
	if m == nil {
		return nil
	}
	out := map[string]any{}
	if len(m.Headers) > 0 {
		var hs []any
		for _, k := range sortedKeys(m.Headers) {
			hs = append(hs, map[string]any{"type": "Exact", "name": k, "value": m.Headers[k]})
		}
		out["headers"] = hs
	}
	if m.PathPrefix != "" {
		out["path"] = map[string]any{"type": "PathPrefix", "value": m.PathPrefix}
	}
	if m.Method != "" {
		out["method"] = m.Method
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func virtualService(s *meshspec.MeshService) *unstructured.Unstructured {
	sp := &s.Spec
	routes := sp.Routes
	if len(routes) == 0 {
		routes = []meshspec.Route{{}}
	}
	var http []any
	for _, r := range routes {
		rule := map[string]any{}
		if m := r.Match; m != nil {
			match := map[string]any{}
			if len(m.Headers) > 0 {
				hs := map[string]any{}
				for k, v := range m.Headers {
					hs[k] = map[string]any{"exact": v}
				}
				match["headers"] = hs
			}
			if m.PathPrefix != "" {
				match["uri"] = map[string]any{"prefix": m.PathPrefix}
			}
			if m.Method != "" {
				match["method"] = map[string]any{"exact": m.Method}
			}
			if len(match) > 0 {
				rule["match"] = []any{match}
			}
		}
		var dests []any
		for _, v := range sortedKeys(r.Backends) {
			dests = append(dests, map[string]any{"destination": map[string]any{"host": fqdn(s.Name+"-"+v, s.Namespace), "port": map[string]any{"number": int64(sp.Port)}}, "weight": int64(r.Backends[v])})
		}
		if len(r.Backends) == 0 {
			dests = []any{map[string]any{"destination": map[string]any{"host": fqdn(s.Name, s.Namespace)}}}
		}
		rule["route"] = dests
		if res := sp.Resilience; res != nil {
			if res.Timeout != nil {
				rule["timeout"] = istioDuration(res.Timeout.Duration)
			}
			if rt := res.Retries; rt != nil {
				retries := map[string]any{"attempts": int64(rt.Attempts), "retryOn": strings.Join(rt.On, ",")}
				if rt.PerTryTimeout != nil {
					retries["perTryTimeout"] = istioDuration(rt.PerTryTimeout.Duration)
				}
				rule["retries"] = retries
			}
		}
		http = append(http, rule)
	}
	return withSpec(object(ambient.IstioNetworkingAPIVersion, "VirtualService", s.Namespace, s.Name), map[string]any{
		"hosts": []any{fqdn(s.Name, s.Namespace)},
		"http":  http,
	})
}

// faults renders fault injection as a VirtualService of its own, with no
// retries or timeout in the same rule.
func faults(s *meshspec.MeshService) *unstructured.Unstructured {
	f := s.Spec.Faults
	fault := map[string]any{}
	if d := f.Delay; d != nil {
		fault["delay"] = map[string]any{"percentage": map[string]any{"value": d.Percent}, "fixedDelay": istioDuration(d.Fixed.Duration)}
	}
	if a := f.Abort; a != nil {
		fault["abort"] = map[string]any{"percentage": map[string]any{"value": a.Percent}, "httpStatus": int64(a.Status)}
	}
	return withSpec(object(ambient.IstioNetworkingAPIVersion, "VirtualService", s.Namespace, s.Name+"-faults"), map[string]any{
		"hosts": []any{fqdn(s.Name, s.Namespace)},
		"http": []any{map[string]any{
			"fault": fault,
			"route": []any{map[string]any{"destination": map[string]any{"host": fqdn(s.Name, s.Namespace)}}},
		}},
	})
}

func trafficPolicy(c *meshspec.CircuitBreaker) map[string]any {
	tp := map[string]any{}
	pool := map[string]any{}
	if c.MaxConnections > 0 {
		pool["tcp"] = map[string]any{"maxConnections": int64(c.MaxConnections)}
	}
	if c.MaxPendingRequests > 0 {
		pool["http"] = map[string]any{"http1MaxPendingRequests": int64(c.MaxPendingRequests)}
	}
	if len(pool) > 0 {
		tp["connectionPool"] = pool
	}
	if c.Consecutive5xxErrors > 0 {
		tp["outlierDetection"] = map[string]any{
			"consecutive5xxErrors": int64(c.Consecutive5xxErrors),
			"interval":             istioDuration(c.Interval.Duration),
			"baseEjectionTime":     istioDuration(c.BaseEjection.Duration),
			"maxEjectionPercent":   int64(c.MaxEjectionPercent),
		}
	}
	return tp
}

// gatewayDuration spells a duration as Gateway API accepts it: whole
// seconds or milliseconds.
func gatewayDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// istioDuration spells a duration in seconds, as protobuf JSON does.
func istioDuration(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

func object(apiVersion, kind, namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name}}}
	if namespace != "" {
		u.SetNamespace(namespace)
	}
	return u
}

func withSpec(u *unstructured.Unstructured, spec map[string]any) *unstructured.Unstructured {
	u.Object["spec"] = spec
	return u
}

func serviceRef(name string) []any {
	return []any{map[string]any{"kind": "Service", "group": "", "name": name}}
}

func fqdn(name, ns string) string { return name + "." + ns + ".svc.cluster.local" }

func anyList(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
