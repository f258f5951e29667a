package access

import (
	"fmt"
	"sort"
	"strings"

	"github.com/meshcd/meshcd/ambient"
)

// Decision is a verdict's answer.
type Decision string

// Decisions.
const (
	Allow Decision = "allow"
	Deny  Decision = "deny"
	// Depends: the answer hangs on a request attribute the question left
	// open (a method, a path, a header, the JWT); the reason names it.
	Depends Decision = "depends"
	// Undecided: the model cannot answer (a CUSTOM provider, a namespace or
	// waypoint missing from the input, IP addresses); the reason says why.
	Undecided Decision = "undecided"
)

// Hop is where a decision is enforced.
type Hop string

// Hops.
const (
	AtZtunnel  Hop = "ztunnel"
	AtWaypoint Hop = "waypoint"
	// AtSidecar is the destination's sidecar (Options.Sidecars).
	AtSidecar Hop = "sidecar"
	AtNone    Hop = "none"
)

// HopVerdict is the decision of one proxy on the path.
type HopVerdict struct {
	At Hop `json:"at"`
	// Proxy is the waypoint Gateway, or the destination workload ztunnel
	// enforces for.
	Proxy string `json:"proxy"`
	// Caller is the identity this proxy sees, "" when none.
	Caller   string   `json:"caller"`
	Decision Decision `json:"decision"`
	Policies []string `json:"policies"`
	Reason   string   `json:"reason"`
	// applied counts the policies that apply at this proxy.
	applied int
}

// Verdict answers whether From may send Request to To.
type Verdict struct {
	From     Identity    `json:"from"`
	To       Destination `json:"to"`
	Decision Decision    `json:"decision"`
	Allowed  bool        `json:"allowed"`
	// Undecided is true for Depends and Undecided.
	Undecided  bool     `json:"undecided"`
	EnforcedAt Hop      `json:"enforcedAt"`
	Policies   []string `json:"policies"`
	Reason     string   `json:"reason"`
	// Waypoint is the waypoint Gateway on the path, NS/NAME.
	Waypoint string       `json:"waypoint,omitempty"`
	Hops     []HopVerdict `json:"hops"`
}

// Check decides one question. to must be a Destination of the model (see
// ResolveDestination); req fixes what it knows of the request.
func (m *Model) Check(from Identity, to Destination, req Request) Verdict {
	v := m.check(from, to, &req, m.callerState(from))
	v.From, v.To = from, to
	return v
}

// check answers for a caller in a known or unknown mesh state; an unknown
// state is answered both ways, and is undecided only when the two differ.
func (m *Model) check(from Identity, to Destination, req *Request, state meshState) Verdict {
	if state == stateUnknown {
		meshed := m.check(from, to, req, stateMeshed)
		plain := m.check(from, to, req, statePlaintext)
		if meshed.Decision == plain.Decision && meshed.EnforcedAt == plain.EnforcedAt {
			return meshed
		}
		return undecided(fmt.Sprintf("Namespace %s is not in the input, so whether %s calls with its identity is unknown: "+
			"with it %s, without it %s; add the Namespace with its istio.io/dataplane-mode label", from.Namespace, from, meshed.Decision, plain.Decision))
	}
	svc := m.services[to.Namespace+"/"+to.Service]
	if svc == nil || svc.port(to.Port) == nil {
		return undecided("Service port " + to.String() + " is not in the input")
	}
	var caller *Identity
	if state == stateMeshed {
		caller = &from
	}
	if m.opts.Sidecars {
		switch sidecar, why := m.sidecarService(svc); {
		case why != "":
			return undecided(why)
		case sidecar:
			return combine([]HopVerdict{m.sidecarHop(svc, svc.port(to.Port), caller, req)})
		}
	}
	var hops []HopVerdict
	gw, why := m.waypointOf(svc)
	switch {
	case why != "":
		return undecided(why)
	case gw != nil && caller == nil:
		return undecided(fmt.Sprintf("%s calls from outside the mesh; whether such a call passes waypoint %s/%s is not modelled", from, gw.namespace, gw.name))
	case gw != nil:
		c := &call{caller: caller, td: m.opts.TrustDomain, port: to.Port, req: req}
		hv := decide(c, m.waypointPolicies(svc, gw))
		hv.At, hv.Proxy, hv.Caller = AtWaypoint, "Gateway "+gw.namespace+"/"+gw.name, from.String()
		hops = append(hops, hv)
		// The waypoint forwards with its own identity (the waypoint hop).
		caller = &Identity{gw.namespace, gw.serviceAccount}
	}
	hops = append(hops, m.ztunnelHop(svc, svc.port(to.Port), caller, req))
	v := combine(hops)
	if gw != nil {
		v.Waypoint = gw.namespace + "/" + gw.name
	}
	return v
}

func undecided(reason string) Verdict {
	return Verdict{Decision: Undecided, Undecided: true, EnforcedAt: AtNone, Policies: []string{}, Reason: reason}
}

// waypointOf resolves the waypoint a Service's traffic passes: the
// Service's istio.io/use-waypoint label, else its Namespace's ("none" opts
// out), honouring istio.io/use-waypoint-namespace. A waypoint whose
// istio.io/waypoint-for is workload or none takes no Service traffic. why is
// set when the input cannot say.
func (m *Model) waypointOf(svc *service) (gw *gateway, why string) {
	labels := svc.labels
	if _, set := labels[ambient.LabelUseWaypoint]; !set {
		ns := m.namespaces[svc.namespace]
		if ns == nil {
			if len(m.waypointIDs) > 0 {
				return nil, "Namespace " + svc.namespace + " is not in the input, so whether Service " + svc.namespace + "/" + svc.name +
					" uses a waypoint is unknown: add the Namespace with its istio.io/use-waypoint label"
			}
			return nil, ""
		}
		labels = ns.labels
	}
	name := labels[ambient.LabelUseWaypoint]
	if name == "" || name == "none" {
		return nil, ""
	}
	wpNamespace := svc.namespace
	if other := labels[ambient.LabelUseWaypointNamespace]; other != "" {
		wpNamespace = other
	}
	gw = m.gateways[wpNamespace+"/"+name]
	if gw == nil || gw.class != ambient.WaypointClass {
		return nil, fmt.Sprintf("Service %s/%s uses waypoint %s/%s, which is not an %s Gateway in the input", svc.namespace, svc.name, wpNamespace, name, ambient.WaypointClass)
	}
	if gw.waypointFor != "service" && gw.waypointFor != "all" {
		return nil, ""
	}
	return gw, ""
}

// waypointPolicies are the policies a waypoint enforces for a Service,
// following ShouldAttachPolicy in pilot/pkg/model/policyattachment.go: a
// targetRef to the Service from its namespace, to the waypoint Gateway from
// its namespace, or to the istio-waypoint GatewayClass from the root
// namespace. Policies without targetRefs never attach to a waypoint.
func (m *Model) waypointPolicies(svc *service, gw *gateway) []*policy {
	var out []*policy
	for _, p := range m.candidates(svc.namespace, gw.namespace) {
		if !p.dryRun && p.action() != actionAudit && m.attachesToWaypoint(p, svc, gw) {
			out = append(out, p)
		}
	}
	return out
}

// candidates lists the policies of the root namespace and of namespaces.
func (m *Model) candidates(namespaces ...string) []*policy {
	out := m.policiesIn[m.opts.RootNamespace]
	seen := map[string]bool{m.opts.RootNamespace: true}
	for _, ns := range namespaces {
		if !seen[ns] {
			seen[ns] = true
			out = append(out[:len(out):len(out)], m.policiesIn[ns]...)
		}
	}
	return out
}

func (m *Model) attachesToWaypoint(p *policy, svc *service, gw *gateway) bool {
	for _, ref := range p.targetRefs() {
		group := ref.Group
		if group == "core" {
			group = ""
		}
		switch {
		case group == "" && ref.Kind == "Service" && ref.Name == svc.name && p.namespace == svc.namespace,
			group == ambient.GatewayGK.Group && ref.Kind == "Gateway" && ref.Name == gw.name && p.namespace == gw.namespace &&
				(ref.Namespace == "" || ref.Namespace == gw.namespace),
			group == ambient.GatewayGK.Group && ref.Kind == "GatewayClass" && ref.Name == ambient.WaypointClass && p.namespace == m.opts.RootNamespace:
			return true
		}
	}
	return false
}

// atZtunnel reports whether ztunnel takes p for workloads of namespace ns
// (authorization.go, convertAuthorizationPolicy; workloads.go,
// buildWorkloadPolicies): no targetRefs, ALLOW or DENY, not dry-run, in ns
// or the root namespace. Its selector is checked apart.
func (m *Model) atZtunnel(p *policy, ns string) bool {
	return !p.dryRun && len(p.targetRefs()) == 0 && (p.action() == actionAllow || p.action() == actionDeny) &&
		(p.namespace == ns || p.namespace == m.opts.RootNamespace)
}

// ztunnelPolicies are the policies ztunnel enforces for a workload: those
// atZtunnel without a selector, or with one that selects the workload.
func (m *Model) ztunnelPolicies(w *workload) []*policy {
	var out []*policy
	for _, p := range m.candidates(w.namespace) {
		if m.atZtunnel(p, w.namespace) && (p.spec.Selector == nil || selects(p.spec.Selector.MatchLabels, w.labels)) {
			out = append(out, p)
		}
	}
	return out
}

// ztunnelHop decides at the destination's ztunnel, for every workload the
// Service selects; workloads that disagree leave the hop undecided.
func (m *Model) ztunnelHop(svc *service, sp *servicePort, caller *Identity, req *Request) HopVerdict {
	ws := m.serviceWorkloads(svc)
	if len(ws) == 0 {
		return m.podlessHop(svc, callerName(caller))
	}
	return perWorkload(svc, ws, AtZtunnel, caller, func(w *workload) HopVerdict { return m.workloadHop(w, sp, caller, req) })
}

func callerName(caller *Identity) string {
	if caller == nil {
		return ""
	}
	return caller.String()
}

// perWorkload decides at hop at for every workload ws of a Service, with
// decide; workloads that disagree leave the hop undecided.
func perWorkload(svc *service, ws []*workload, at Hop, caller *Identity, decide func(*workload) HopVerdict) HopVerdict {
	name := callerName(caller)
	var verdicts []HopVerdict
	for _, w := range ws {
		hv := decide(w)
		hv.At, hv.Proxy, hv.Caller = at, w.ref(), name
		verdicts = append(verdicts, hv)
	}
	first := verdicts[0]
	for _, hv := range verdicts[1:] {
		if hv.Decision != first.Decision {
			return HopVerdict{At: at, Proxy: "Service " + svc.namespace + "/" + svc.name, Caller: name, Decision: Undecided, Policies: []string{},
				Reason: fmt.Sprintf("its workloads disagree: %s: %s (%s); %s: %s (%s)", first.Proxy, first.Decision, first.Reason, hv.Proxy, hv.Decision, hv.Reason)}
		}
		first.Policies = union(first.Policies, hv.Policies)
		first.applied = max(first.applied, hv.applied)
	}
	if len(verdicts) > 1 {
		first.Proxy = "Service " + svc.namespace + "/" + svc.name
	}
	return first
}

// podlessHop answers for a Service whose pods the input does not hold:
// only when no policy could apply to them at ztunnel.
func (m *Model) podlessHop(svc *service, caller string) HopVerdict {
	hv := HopVerdict{At: AtZtunnel, Proxy: "Service " + svc.namespace + "/" + svc.name, Caller: caller, Policies: []string{}}
	if ns := m.namespaces[svc.namespace]; ns != nil && m.dataplaneOf(ns.labels) == dataplaneNone {
		hv.Decision, hv.Reason = Allow, "Namespace "+svc.namespace+" is not in the mesh: nothing enforces"
		return hv
	}
	for _, p := range m.candidates(svc.namespace) {
		if m.atZtunnel(p, svc.namespace) {
			hv.Decision = Undecided
			hv.Reason = "the input holds no pod template that Service " + svc.namespace + "/" + svc.name +
				" selects, and policies such as " + p.ref() + " may apply to its pods at ztunnel: add its workloads"
			return hv
		}
	}
	hv.Decision, hv.Reason = Allow, "no policy applies at ztunnel"
	return hv
}

func (m *Model) serviceWorkloads(svc *service) []*workload {
	if len(svc.selector) == 0 {
		return nil
	}
	var out []*workload
	for _, w := range m.workloads[svc.namespace] {
		if selects(svc.selector, w.labels) {
			out = append(out, w)
		}
	}
	return out
}

// workloadHop decides at one workload's ztunnel.
func (m *Model) workloadHop(w *workload, sp *servicePort, caller *Identity, req *Request) HopVerdict {
	switch m.workloadDataplane(w) {
	case dataplaneUnknown:
		return HopVerdict{Decision: Undecided, Policies: []string{}, Reason: "Namespace " + w.namespace + " is not in the input, so whether ztunnel captures " + w.ref() + " is unknown"}
	case dataplaneSidecar:
		return HopVerdict{Decision: Undecided, Policies: []string{}, Reason: w.ref() + " runs with a sidecar, which this model does not cover"}
	case dataplaneNone:
		return HopVerdict{Decision: Allow, Policies: []string{}, Reason: w.ref() + " is not in the mesh: nothing enforces"}
	}
	port, refused := m.admitPeer(w, sp, caller)
	if refused != nil {
		return *refused
	}
	return decide(&call{caller: caller, td: m.opts.TrustDomain, port: port, req: req, ztunnel: true}, m.ztunnelPolicies(w))
}

// admitPeer resolves the workload port behind sp and applies the effective
// mTLS mode there: a call without identity under STRICT is refused, and
// conflicting PeerAuthentications leave it undecided.
func (m *Model) admitPeer(w *workload, sp *servicePort, caller *Identity) (int32, *HopVerdict) {
	port := targetPort(*sp, w)
	if caller == nil {
		mode := m.effectiveMTLS(w, port)
		switch {
		case mode.undecided != "":
			return port, &HopVerdict{Decision: Undecided, Policies: []string{}, Reason: mode.undecided}
		case mode.strict:
			return port, &HopVerdict{Decision: Deny, Policies: []string{mode.by}, applied: 1,
				Reason: "mTLS is STRICT (" + mode.by + "): a call without identity is refused"}
		}
	}
	return port, nil
}

// workloadDataplane is how a workload is enrolled: its namespace's labels,
// overridden by its own istio.io/dataplane-mode.
func (m *Model) workloadDataplane(w *workload) dataplane {
	dp := dataplaneUnknown
	if ns := m.namespaces[w.namespace]; ns != nil {
		dp = m.dataplaneOf(ns.labels)
	}
	switch w.labels[ambient.LabelDataplaneMode] {
	case "ambient":
		dp = dataplaneAmbient
	case "none":
		dp = dataplaneNone
	}
	return dp
}

// hop evaluates the policies one proxy enforces: CUSTOM, then DENY, then
// ALLOW; with no ALLOW policy the request is allowed (builder.go builds the
// filters in that order). A DENY that matches decides even before a CUSTOM
// provider is asked, since the provider can only refuse more; an ALLOW step
// that refuses decides over an open DENY or CUSTOM for the same reason.
func decide(c *call, pols []*policy) HopVerdict {
	hv := HopVerdict{Policies: []string{}, applied: len(pols)}
	var open []struct {
		p *policy
		o outcome
	}
	var allows, allowed []string
	var allowOpen *outcome
	var allowOpenRef string
	var matches []string
	for _, p := range pols {
		o, hits := c.policy(p)
		switch {
		case p.action() == actionDeny && o.v == yes:
			hv.Policies = append(hv.Policies, p.ref())
			hv.Reason = joinReason(hv.Reason, fmt.Sprintf("DENY %s matches (rule %s)", p.ref(), ruleList(hits)))
		case p.action() == actionAllow:
			allows = append(allows, p.ref())
			if o.v == yes {
				allowed = append(allowed, p.ref())
				matches = append(matches, fmt.Sprintf("ALLOW %s matches (rule %s)", p.ref(), ruleList(hits)))
			} else if o.v == maybe && allowOpen == nil {
				allowOpen, allowOpenRef = &o, p.ref()
			}
		case o.v != no: // an open DENY, or a CUSTOM that may be asked
			open = append(open, struct {
				p *policy
				o outcome
			}{p, o})
		}
	}
	if len(hv.Policies) > 0 {
		hv.Decision = Deny
		return hv
	}
	switch {
	case len(allows) > 0 && len(allowed) == 0 && allowOpen == nil:
		hv.Decision, hv.Policies = Deny, allows
		hv.Reason = "no rule of ALLOW " + strings.Join(allows, ", ") + " matches"
		return hv
	case len(open) > 0:
		first := open[0]
		hv.Policies = []string{first.p.ref()}
		hv.Decision = pending(first.o)
		hv.Reason = fmt.Sprintf("DENY %s matches for some %s", first.p.ref(), first.o.on)
		if first.p.action() == actionCustom {
			hv.Decision = Undecided
			hv.Reason = "CUSTOM " + first.p.ref() + " hands the request to an external authorizer"
		}
	case len(allows) == 0:
		hv.Decision, hv.Reason = Allow, "no ALLOW policy applies"
	case len(allowed) > 0:
		hv.Decision, hv.Policies, hv.Reason = Allow, allowed, strings.Join(matches, "; ")
	default:
		hv.Decision, hv.Policies = pending(*allowOpen), []string{allowOpenRef}
		hv.Reason = fmt.Sprintf("ALLOW %s matches only for some %s", allowOpenRef, allowOpen.on)
	}
	return hv
}

// pending is the decision an open match leaves.
func pending(o outcome) Decision {
	if o.limit {
		return Undecided
	}
	return Depends
}

func ruleList(hits []int) string {
	var parts []string
	for _, h := range hits {
		parts = append(parts, fmt.Sprint(h+1))
	}
	return strings.Join(parts, ", ")
}

func joinReason(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// combine joins the hops of a path: any hop that denies denies; otherwise
// an open hop leaves the verdict open.
func combine(hops []HopVerdict) Verdict {
	v := Verdict{Hops: hops, Policies: []string{}, EnforcedAt: AtNone}
	for _, d := range []Decision{Deny, Undecided, Depends} {
		for _, h := range hops {
			if h.Decision == d {
				v.Decision, v.EnforcedAt, v.Policies = d, h.At, h.Policies
				v.Reason = string(h.At) + ": " + h.Reason
				v.Undecided = d != Deny
				return v
			}
		}
	}
	v.Decision, v.Allowed = Allow, true
	var reasons []string
	for _, h := range hops {
		v.Policies = union(v.Policies, h.Policies)
		if h.applied > 0 && v.EnforcedAt == AtNone {
			v.EnforcedAt = h.At
		}
		reasons = append(reasons, string(h.At)+": "+h.Reason)
	}
	v.Reason = strings.Join(reasons, "; ")
	return v
}

func union(a, b []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, s := range append(append([]string{}, a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// WaypointPolicies names the waypoint Gateway, NS/NAME, that d's Service
// passes and the ALLOW and DENY policies, NS/NAME, it enforces for the
// Service, sorted; the waypoint is "" when the Service uses none or the
// input cannot say which.
func (m *Model) WaypointPolicies(d Destination) (string, []string) {
	svc := m.services[d.Namespace+"/"+d.Service]
	if svc == nil {
		return "", nil
	}
	gw, why := m.waypointOf(svc)
	if gw == nil || why != "" {
		return "", nil
	}
	refs := []string{}
	for _, p := range m.waypointPolicies(svc, gw) {
		if p.action() == actionAllow || p.action() == actionDeny {
			refs = append(refs, p.ref())
		}
	}
	sort.Strings(refs)
	return gw.namespace + "/" + gw.name, refs
}
