package access

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// The analyses below find rules that do not do what they state: a rule a
// broader one makes meaningless, a rule that can never match where it is
// enforced, a rule that opens a default-deny namespace to every caller,
// and a Service that reaches a protected Service's pods past its policies.
// They name policies as NS/NAME and rules by their 1-based index; the rule
// catalogue turns them into findings.

// place is where policies are enforced: a waypoint for one Service, or the
// destination ztunnel of one workload.
type place struct {
	at  Hop
	svc *service  // at a waypoint
	gw  *gateway  // at a waypoint
	w   *workload // at ztunnel
	// ports are those the proxy compares a rule's ports with: the Service
	// ports at a waypoint, the workload's target ports at ztunnel.
	ports []int32
}

func (pl place) String() string {
	if pl.at == AtWaypoint {
		return "waypoint " + pl.gw.namespace + "/" + pl.gw.name + " for Service " + pl.svc.namespace + "/" + pl.svc.name
	}
	return "ztunnel for " + pl.w.ref()
}

func (pl place) namespace() string {
	if pl.at == AtWaypoint {
		return pl.svc.namespace
	}
	return pl.w.namespace
}

// sortedServices lists the Services by namespace and name.
func (m *Model) sortedServices() []*service {
	out := make([]*service, 0, len(m.services))
	for _, s := range m.services {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].namespace+"/"+out[i].name < out[j].namespace+"/"+out[j].name
	})
	return out
}

// places lists every waypoint-Service pair and every ambient workload, in
// a stable order, with the policies enforced there.
func (m *Model) places() ([]place, [][]*policy) {
	var places []place
	var pols [][]*policy
	svcs := m.sortedServices()
	for _, s := range svcs {
		if gw, why := m.waypointOf(s); gw != nil && why == "" {
			pl := place{at: AtWaypoint, svc: s, gw: gw}
			for _, p := range s.ports {
				pl.ports = append(pl.ports, p.port)
			}
			places, pols = append(places, pl), append(pols, m.waypointPolicies(s, gw))
		}
	}
	namespaces := make([]string, 0, len(m.workloads))
	for ns := range m.workloads {
		namespaces = append(namespaces, ns)
	}
	sort.Strings(namespaces)
	for _, ns := range namespaces {
		for _, w := range m.workloads[ns] {
			if m.workloadDataplane(w) != dataplaneAmbient {
				continue
			}
			pl := place{at: AtZtunnel, w: w}
			for _, s := range svcs {
				if s.namespace != ns || len(s.selector) == 0 || !selects(s.selector, w.labels) {
					continue
				}
				for _, sp := range s.ports {
					if port := targetPort(sp, w); port != 0 && !slices.Contains(pl.ports, port) {
						pl.ports = append(pl.ports, port)
					}
				}
			}
			places, pols = append(places, pl), append(pols, m.ztunnelPolicies(w))
		}
	}
	return places, pols
}

// targetPort is the workload port a Service port sends to, 0 when unknown.
func targetPort(sp servicePort, w *workload) int32 {
	if sp.targetName != "" {
		return w.ports[sp.targetName]
	}
	return sp.targetPort
}

// omitted reports a rule istiod leaves out at pl: at ztunnel, an ALLOW
// rule with HTTP attributes (authorization.go, handleRule).
func omitted(pl place, p *policy, i int) bool {
	return pl.at == AtZtunnel && p.action() == actionAllow && len(p.l7[i]) > 0
}

// ruleRef is the i-th rule of a policy.
type ruleRef struct {
	p *policy
	i int
}

// Shadow is an ALLOW rule that adds nothing where it is enforced: another
// ALLOW rule there admits every request it admits. The rules of the ALLOW
// policies of one proxy are ORed (builder.go builds one RBAC policy per
// rule), so a narrower rule next to a broader one for the same callers
// restricts nothing.
type Shadow struct {
	Policy   string
	Rule     int
	RuleText string
	By       string
	ByRule   int
	ByText   string
	Where    string
}

// Shadows lists each shadowed rule once, at the first place it is.
func (m *Model) Shadows() []Shadow {
	var out []Shadow
	seen := map[ruleRef]bool{}
	places, pols := m.places()
	for k, pl := range places {
		var rs []ruleRef
		for _, p := range pols[k] {
			if p.action() != actionAllow {
				continue
			}
			for i := range p.spec.Rules {
				if !omitted(pl, p, i) {
					rs = append(rs, ruleRef{p, i})
				}
			}
		}
		for _, a := range rs {
			if seen[a] {
				continue
			}
			for _, b := range rs {
				ar, br := a.p.spec.Rules[a.i], b.p.spec.Rules[b.i]
				if a == b || !covers(br, b.p.namespace, ar, a.p.namespace, m.opts.TrustDomain) || covers(ar, a.p.namespace, br, b.p.namespace, m.opts.TrustDomain) {
					continue
				}
				seen[a] = true
				out = append(out, Shadow{Policy: a.p.ref(), Rule: a.i + 1, RuleText: describeRule(ar),
					By: b.p.ref(), ByRule: b.i + 1, ByText: describeRule(br), Where: pl.String()})
				break
			}
		}
	}
	return out
}

// DeadRule is a rule that matches no request at any place its policy is
// enforced.
type DeadRule struct {
	Policy   string
	Rule     int
	RuleText string
	// Where lists the places, Why says what cannot match.
	Where, Why string
}

// DeadRules lists the rules no caller, port or request can match where
// their policy is enforced. Callers are tried as the rule names them, as
// any other identity of their namespaces and of the mesh, and without
// identity; a rule with a partial wildcard on an identity, or a port
// condition where the ports are unknown, is left alone.
func (m *Model) DeadRules() []DeadRule {
	places, pols := m.places()
	at := map[*policy][]int{} // the places of each policy
	for k := range places {
		for _, p := range pols[k] {
			at[p] = append(at[p], k)
		}
	}
	var out []DeadRule
	for _, p := range m.policies {
		for i, r := range p.spec.Rules {
			var where []string
			dead := true
			for _, k := range at[p] {
				if omitted(places[k], p, i) {
					continue
				}
				if !m.neverMatches(places[k], p.namespace, r) {
					dead = false
					break
				}
				where = append(where, places[k].String())
			}
			if dead && len(where) > 0 {
				out = append(out, DeadRule{Policy: p.ref(), Rule: i + 1, RuleText: describeRule(r),
					Where: strings.Join(where, ", "), Why: m.whyDead(places[at[p][0]], p.namespace, r)})
			}
		}
	}
	return out
}

// neverMatches tries rule r at pl for every kind of caller and every port.
func (m *Model) neverMatches(pl place, policyNamespace string, r rule) bool {
	callers, ok := m.probeCallers(r, policyNamespace)
	if !ok {
		return false
	}
	if pl.at == AtZtunnel {
		callers = append(callers, nil)
	}
	ports := pl.ports
	if len(ports) == 0 {
		if examinesPorts(r) {
			return false
		}
		ports = []int32{0}
	}
	for _, caller := range callers {
		for _, port := range ports {
			c := &call{caller: caller, td: m.opts.TrustDomain, port: port, req: &Request{}, ztunnel: pl.at == AtZtunnel}
			if c.rule(r, policyNamespace).v != no {
				return false
			}
		}
	}
	return true
}

// probeCallers are the meshed callers that stand for every caller of r:
// those it names, any other identity of the namespaces it names, and any
// other identity at all. ok is false when an identity pattern is partial
// (a prefix or suffix), which these cannot stand for.
func (m *Model) probeCallers(r rule, policyNamespace string) ([]*Identity, bool) {
	ids := identitySet{{standIn, standIn}: true}
	partial := func(vs []string) bool {
		return slices.ContainsFunc(vs, func(v string) bool { return v != "*" && strings.Contains(v, "*") })
	}
	addNamespaces := func(vs []string) {
		for _, ns := range vs {
			ids.add(Identity{ns, standIn})
		}
	}
	addPrincipals := func(vs []string) {
		for _, v := range vs {
			if id, ok := parsePrincipal(v); ok {
				ids.add(id)
			}
		}
	}
	for _, f := range r.From {
		s := f.Source
		if partial(concat(s.Principals, s.NotPrincipals)) || partial(concat(s.Namespaces, s.NotNamespaces)) {
			return nil, false
		}
		addPrincipals(concat(s.Principals, s.NotPrincipals))
		addNamespaces(concat(s.Namespaces, s.NotNamespaces))
		for _, v := range concat(s.ServiceAccounts, s.NotServiceAccounts) {
			ids.add(serviceAccountRef(v, policyNamespace))
		}
	}
	for _, w := range r.When {
		vs := concat(w.Values, w.NotValues)
		switch w.Key {
		case "source.principal":
			if partial(vs) {
				return nil, false
			}
			addPrincipals(vs)
		case "source.namespace":
			if partial(vs) {
				return nil, false
			}
			addNamespaces(vs)
		case "source.serviceAccount":
			for _, v := range vs {
				ids.add(serviceAccountRef(v, policyNamespace))
			}
		}
	}
	var out []*Identity
	for _, id := range ids.sorted() {
		if m.callerState(id) != statePlaintext {
			out = append(out, &id)
		}
	}
	return out, true
}

func examinesPorts(r rule) bool {
	for _, t := range r.To {
		if len(t.Operation.Ports)+len(t.Operation.NotPorts) > 0 {
			return true
		}
	}
	return slices.ContainsFunc(r.When, func(c condition) bool { return c.Key == "destination.port" })
}

// whyDead says which part of r cannot match at pl.
func (m *Model) whyDead(pl place, policyNamespace string, r rule) string {
	if len(r.From) > 0 && m.neverMatches(pl, policyNamespace, rule{From: r.From}) {
		var outside []string
		note := func(ns string) {
			if m.callerState(Identity{ns, standIn}) == statePlaintext && !slices.Contains(outside, ns) {
				outside = append(outside, ns)
			}
		}
		for _, f := range r.From {
			s := f.Source
			for _, v := range s.ServiceAccounts {
				note(serviceAccountRef(v, policyNamespace).Namespace)
			}
			for _, v := range s.Principals {
				if id, ok := parsePrincipal(v); ok {
					note(id.Namespace)
				}
			}
			for _, ns := range exact(s.Namespaces) {
				note(ns)
			}
		}
		if len(outside) > 0 {
			return "its callers are in namespaces outside the mesh (" + strings.Join(outside, ", ") + "), whose calls carry no identity to match"
		}
		return "no caller can match its from: the fields of a source are ANDed and these exclude each other"
	}
	if len(r.To) > 0 && m.neverMatches(pl, policyNamespace, rule{To: r.To}) {
		var ports []string
		for _, p := range pl.ports {
			ports = append(ports, strconv.Itoa(int(p)))
		}
		return fmt.Sprintf("its ports are none of %s, the ports %s compares (a waypoint matches the Service port, ztunnel the workload's target port)",
			strings.Join(ports, ", "), pl)
	}
	if len(r.When) > 0 && m.neverMatches(pl, policyNamespace, rule{When: r.When}) {
		return "its when conditions match no caller or port there"
	}
	return "its from, to and when exclude each other"
}

// Opening is an ALLOW rule that admits every caller where a default-deny
// policy (an ALLOW policy without rules) refuses all else.
type Opening struct {
	Policy      string
	Rule        int
	RuleText    string
	DefaultDeny string
	Where       string
}

// Openings lists each such rule once, at the first place it opens.
func (m *Model) Openings() []Opening {
	var out []Opening
	seen := map[ruleRef]bool{}
	places, pols := m.places()
	for k, pl := range places {
		deny := m.defaultDeny(pl.namespace())
		if deny == nil {
			continue
		}
		for _, p := range pols[k] {
			if p == deny || p.action() != actionAllow {
				continue
			}
			for i, r := range p.spec.Rules {
				if seen[ruleRef{p, i}] || omitted(pl, p, i) || !everyCaller(r) {
					continue
				}
				seen[ruleRef{p, i}] = true
				out = append(out, Opening{Policy: p.ref(), Rule: i + 1, RuleText: describeRule(r), DefaultDeny: deny.ref(), Where: pl.String()})
			}
		}
	}
	return out
}

// defaultDeny is the policy that denies by default in namespace ns: an
// ALLOW policy without rules, selector or targetRefs, in ns or in the root
// namespace.
func (m *Model) defaultDeny(ns string) *policy {
	for _, p := range m.candidates(ns) {
		if m.atZtunnel(p, ns) && p.action() == actionAllow && len(p.spec.Rules) == 0 && p.spec.Selector == nil {
			return p
		}
	}
	return nil
}

// callerKeys are the conditions that restrict who calls.
var callerKeys = []string{"source.principal", "source.namespace", "source.ip", "source.serviceAccount", "remote.ip"}

// everyCaller reports whether r admits any caller: no from, or a source
// that names no one but "*", and no condition on the caller or its JWT.
func everyCaller(r rule) bool {
	for _, w := range r.When {
		if slices.Contains(callerKeys, w.Key) || strings.HasPrefix(w.Key, "request.auth.") {
			return false
		}
	}
	if len(r.From) == 0 {
		return true
	}
	for _, f := range r.From {
		s := f.Source
		anyone := func(vs []string) bool { return len(vs) == 0 || slices.Equal(vs, []string{"*"}) }
		if anyone(s.Principals) && anyone(s.Namespaces) && anyone(s.ServiceAccounts) &&
			len(concat(s.NotPrincipals, s.NotNamespaces))+len(concat(s.NotServiceAccounts, s.IPBlocks))+len(concat(s.NotIPBlocks, s.RemoteIPBlocks))+
				len(concat(s.NotRemoteIPBlocks, s.RequestPrincipals))+len(concat(s.NotRequestPrincipals, s.TrustDomains))+len(s.NotTrustDomains) == 0 {
			return true
		}
	}
	return false
}

// Bypass is a Service whose port reaches the same pods and port as a
// Service behind a waypoint, and lets through a caller that the protected
// Service's policies refuse or restrict.
type Bypass struct {
	Protected, Via Destination
	// Caller is the identity, or "any caller no policy names".
	Caller string
	// Decision is the protected Service's verdict for Caller; Via allows it.
	Decision Decision
	// Policies are the protected Service's waypoint policies that target it
	// by name and do not apply to Via.
	Policies []string
}

// Bypasses compares, for every pair of Services of a namespace that select
// a common workload on the same target port, each caller's verdict with no
// request attribute fixed. A waypoint builds a filter chain per Service
// with only the policies targeting that Service
// (pilot/pkg/networking/core/listener_waypoint.go,
// buildWaypointHTTPFilters), so a caller who addresses the other Service
// meets other rules on the same pods.
func (m *Model) Bypasses() []Bypass {
	var out []Bypass
	ix := newIdentityIndex(m)
	svcs := m.sortedServices()
	for _, a := range svcs {
		gw, why := m.waypointOf(a)
		if gw == nil || why != "" {
			continue
		}
		var own []*policy
		for _, p := range m.waypointPolicies(a, gw) {
			if targetsService(p, a) {
				own = append(own, p)
			}
		}
		if len(own) == 0 {
			continue
		}
		for _, b := range svcs {
			if b == a || b.namespace != a.namespace {
				continue
			}
			if bp, ok := m.bypass(ix, a, b, own); ok {
				out = append(out, bp)
			}
		}
	}
	return out
}

func targetsService(p *policy, s *service) bool {
	return p.namespace == s.namespace && slices.ContainsFunc(p.targetRefs(), func(r targetRef) bool {
		return (r.Group == "" || r.Group == "core") && r.Kind == "Service" && r.Name == s.name
	})
}

// bypass finds a caller that Service b lets through and a refuses or
// restricts, callers no policy names first, on a pair of ports that reach one target port of a
// workload both select.
func (m *Model) bypass(ix *identityIndex, a, b *service, own []*policy) (Bypass, bool) {
	shared := slices.DeleteFunc(m.serviceWorkloads(a), func(w *workload) bool { return !selects(b.selector, w.labels) || len(b.selector) == 0 })
	for _, w := range shared {
		for _, pa := range a.ports {
			for _, pb := range b.ports {
				if targetPort(pa, w) == 0 || targetPort(pa, w) != targetPort(pb, w) {
					continue
				}
				da, db := Destination{a.namespace, a.name, pa.port}, Destination{b.namespace, b.name, pb.port}
				req := Request{}
				ca, cb := m.column(ix, da, &req), m.column(ix, db, &req)
				var onB []*policy
				if gw, why := m.waypointOf(b); gw != nil && why == "" {
					onB = m.waypointPolicies(b, gw)
				}
				var missing []string
				for _, p := range own {
					if !slices.Contains(onB, p) {
						missing = append(missing, p.ref())
					}
				}
				found := func(caller string, va, vb Verdict) (Bypass, bool) {
					if vb.Decision == Allow && (va.Decision == Deny || va.Decision == Depends) {
						return Bypass{Protected: da, Via: db, Caller: caller, Decision: va.Decision, Policies: missing}, true
					}
					return Bypass{}, false
				}
				for _, state := range ix.states {
					va, okA := ca.others[state]
					vb, okB := cb.others[state]
					if okA && okB {
						if bp, ok := found("any caller no policy names", va, vb); ok {
							return bp, true
						}
					}
				}
				for _, id := range m.identities {
					_, na := ca.named[id]
					_, nb := cb.named[id]
					if (!na && !nb) || m.waypointIDs[id] != nil {
						continue
					}
					if bp, ok := found(id.String(), cellOf(ca, ix, id), cellOf(cb, ix, id)); ok {
						return bp, true
					}
				}
			}
		}
	}
	return Bypass{}, false
}

func cellOf(c column, ix *identityIndex, id Identity) Verdict {
	if v, ok := c.named[id]; ok {
		return v
	}
	return c.others[ix.state[id]]
}

// WaypointFor names the waypoint Gateway (NS/NAME) a Service's traffic
// passes and the identity it forwards with; ok is false when none.
func (m *Model) WaypointFor(d Destination) (waypoint string, id Identity, ok bool) {
	svc := m.services[d.Namespace+"/"+d.Service]
	if svc == nil {
		return "", Identity{}, false
	}
	gw, why := m.waypointOf(svc)
	if gw == nil || why != "" {
		return "", Identity{}, false
	}
	return gw.namespace + "/" + gw.name, Identity{gw.namespace, gw.serviceAccount}, true
}

// AtZtunnel decides at the destination's ztunnel alone: what it does with
// a connection from identity from, such as a waypoint's.
func (m *Model) AtZtunnel(from Identity, to Destination) HopVerdict {
	svc := m.services[to.Namespace+"/"+to.Service]
	if svc == nil || svc.port(to.Port) == nil {
		return HopVerdict{At: AtZtunnel, Decision: Undecided, Policies: []string{}, Reason: "Service port " + to.String() + " is not in the input"}
	}
	return m.ztunnelHop(svc, svc.port(to.Port), &from, &Request{})
}
