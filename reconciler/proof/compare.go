package proof

import (
	"fmt"
	"sort"
	"strings"

	"istio.io/istio/pkg/workloadapi"

	"github.com/meshcd/meshcd/access"
	"github.com/meshcd/meshcd/reconciler/health"
)

// View is one side's account of a caller → Service port pair at the
// destination's ztunnel.
type View struct {
	// Waypoint is the waypoint on the path, NS/NAME: the model's, or
	// istiod's primary (the Service's waypoint field).
	Waypoint string `json:"waypoint,omitempty"`
	// Weighted are istiod's weighted waypoints with their weights, such as
	// NS/waypoint-canary=25, while a canary runs.
	Weighted []string `json:"weighted,omitempty"`
	// Callers are the identities the destination's ztunnel sees: the
	// caller's, or the waypoints'; empty when the call has no identity.
	Callers  []string        `json:"callers,omitempty"`
	Decision access.Decision `json:"decision"`
	Policies []string        `json:"policies,omitempty"`
	Reason   string          `json:"reason"`
}

func (v View) String() string {
	s := string(v.Decision)
	if len(v.Policies) > 0 {
		s += " by " + strings.Join(v.Policies, ", ")
	}
	var via []string
	switch {
	case len(v.Weighted) > 0:
		via = append(via, "through "+strings.Join(v.Weighted, ", "))
	case v.Waypoint != "":
		via = append(via, "through "+v.Waypoint)
	}
	if len(v.Callers) > 0 {
		via = append(via, "ztunnel sees "+strings.Join(v.Callers, ", "))
	}
	if len(via) > 0 {
		s += " (" + strings.Join(via, "; ") + ")"
	}
	return s + ": " + v.Reason
}

// Pair is one caller and Service port with both views.
type Pair struct {
	From   access.Identity    `json:"from"`
	To     access.Destination `json:"to"`
	Model  View               `json:"model"`
	Istiod View               `json:"istiod"`
}

// Result is a comparison of every pair.
type Result struct {
	// Agreed counts the pairs both views decide alike, and AgreedPairs
	// lists them when Options.KeepAgreed is set.
	Agreed      int    `json:"agreed"`
	AgreedPairs []Pair `json:"agreedPairs,omitempty"`
	// Mismatches are the pairs they decide differently.
	Mismatches []Pair `json:"mismatches,omitempty"`
	// Skipped are the pairs one side cannot decide, with its reason.
	Skipped []Pair `json:"skipped,omitempty"`
	// WaypointsAgreed counts the HTTP Service ports for which a waypoint
	// enforces the policies the model attaches; WaypointMismatches are
	// those where it does not. Compare leaves them empty; Prove reads the
	// waypoints' own configuration.
	WaypointsAgreed    int          `json:"waypointsAgreed"`
	WaypointMismatches []Attachment `json:"waypointMismatches,omitempty"`
}

// Split is istiod's decision when ztunnel allows some of a pair's
// connections and denies others: its workloads disagree, or a canary
// waypoint is admitted where the primary is not.
const Split access.Decision = "split"

// Options tune a comparison.
type Options struct {
	// TrustDomain spells the callers' principals.
	TrustDomain string
	// KeepAgreed keeps the pairs that agree in Result.AgreedPairs; a large
	// mesh has millions.
	KeepAgreed bool
}

// Compare decides every identity the model names against every Service
// port, as the model does and as ztunnel would with istiod's config.
func Compare(m *access.Model, c *Config, opts Options) *Result {
	mx := m.Matrix(access.Request{})
	res := &Result{}
	for j, d := range mx.Destinations {
		dest := c.destination(d)
		for _, id := range mx.Identities {
			v := mx.Cell(id, j)
			p := Pair{From: id, To: d, Model: modelView(v)}
			p.Istiod = dest.view(c, id, p.Model, opts)
			switch {
			case !decided(p.Model.Decision) || (!decided(p.Istiod.Decision) && p.Istiod.Decision != Split):
				res.Skipped = append(res.Skipped, p)
			case p.Model.Decision != p.Istiod.Decision || p.Model.Waypoint != p.Istiod.Waypoint:
				res.Mismatches = append(res.Mismatches, p)
			default:
				res.Agreed++
				if opts.KeepAgreed {
					res.AgreedPairs = append(res.AgreedPairs, p)
				}
			}
		}
	}
	return res
}

func decided(d access.Decision) bool { return d == access.Allow || d == access.Deny }

// modelView is the model's decision at the destination's ztunnel.
func modelView(v access.Verdict) View {
	out := View{Decision: v.Decision, Reason: v.Reason, Waypoint: v.Waypoint}
	for _, h := range v.Hops {
		if h.At != access.AtZtunnel {
			continue
		}
		out.Decision, out.Policies, out.Reason = h.Decision, h.Policies, h.Reason
		if h.Caller != "" {
			out.Callers = []string{h.Caller}
		}
	}
	return out
}

// destination is what istiod's config says of one Service port, whoever
// calls: its waypoints and the workloads behind it.
type destination struct {
	// missing says why istiod's config cannot decide for it.
	missing string
	// waypoint is the primary, weighted the waypoints with their weights.
	waypoint string
	weighted []string
	// waypointIDs are the identities of the waypoints that carry
	// connections.
	waypointIDs []access.Identity
	endpoints   []endpoint
}

type endpoint struct {
	w    *workloadapi.Workload
	port uint32
}

func (c *Config) destination(d access.Destination) *destination {
	out := &destination{}
	key, svc := c.service(d.Namespace, d.Service)
	if svc == nil {
		out.missing = "istiod sends no Service " + d.Namespace + "/" + d.Service + " to ztunnel"
		return out
	}
	for _, w := range c.endpoints(key) {
		if port, ok := targetPort(w, key, svc, uint32(d.Port)); ok {
			out.endpoints = append(out.endpoints, endpoint{w, port})
		}
	}
	if len(out.endpoints) == 0 {
		out.missing = "istiod sends no workload behind Service " + d.String()
		return out
	}
	if svc.GetWaypoint() == nil {
		return out
	}
	_, primary := c.gateway(svc.GetWaypoint())
	if primary == nil {
		out.missing = fmt.Sprintf("Service %s uses a waypoint istiod does not resolve (%s)", d, svc.GetWaypoint())
		return out
	}
	out.waypoint = primary.GetNamespace() + "/" + primary.GetName()
	// With weighted waypoints, each that has a weight carries connections
	// (workload.proto, WeightedWaypoint); without, the primary carries all.
	carriers := []*workloadapi.GatewayAddress{svc.GetWaypoint()}
	if ww := svc.GetWeightedWaypoints(); len(ww) > 0 {
		carriers = carriers[:0]
		for _, w := range ww {
			_, ws := c.gateway(w.GetDestination())
			if ws == nil {
				out.missing = fmt.Sprintf("Service %s has a weighted waypoint istiod does not resolve (%s)", d, w.GetDestination())
				return out
			}
			out.weighted = append(out.weighted, fmt.Sprintf("%s/%s=%d", ws.GetNamespace(), ws.GetName(), w.GetWeight()))
			if w.GetWeight() > 0 {
				carriers = append(carriers, w.GetDestination())
			}
		}
	}
	seen := map[access.Identity]bool{}
	for _, g := range carriers {
		wkey, wsvc := c.gateway(g)
		pods := c.endpoints(wkey)
		if len(pods) == 0 {
			out.missing = "waypoint " + wsvc.GetNamespace() + "/" + wsvc.GetName() + " has no workload in istiod's config"
			return out
		}
		for _, p := range pods {
			id := access.Identity{Namespace: p.GetNamespace(), ServiceAccount: p.GetServiceAccount()}
			if id.ServiceAccount == "" {
				id.ServiceAccount = "default" // elided when default (workload.proto)
			}
			if !seen[id] {
				seen[id] = true
				out.waypointIDs = append(out.waypointIDs, id)
			}
		}
	}
	return out
}

// view decides the pair from istiod's config. Behind a waypoint the
// destination's ztunnel sees the waypoint's identity; otherwise the caller's,
// which carries one when the model says the caller is in the mesh.
func (d *destination) view(c *Config, from access.Identity, model View, opts Options) View {
	out := View{Waypoint: d.waypoint, Weighted: d.weighted}
	if d.missing != "" {
		out.Decision, out.Reason = access.Undecided, d.missing
		return out
	}
	callers := d.waypointIDs
	if d.waypoint == "" {
		callers = []access.Identity{from}
		if model.Waypoint == "" && len(model.Callers) == 0 {
			callers = []access.Identity{{}} // no identity
		}
	}
	// The first reason of each decision, and how many more.
	first, more := map[access.Decision]string{}, map[access.Decision]int{}
	var policies []string
	for _, caller := range callers {
		conn := connection{trustDomain: opts.TrustDomain}
		if caller != (access.Identity{}) {
			conn.caller = &caller
			out.Callers = append(out.Callers, caller.String())
		}
		for _, e := range d.endpoints {
			conn.port = e.port
			zv := c.decide(e.w, conn)
			if _, ok := first[zv.decision]; ok {
				more[zv.decision]++
			} else {
				first[zv.decision] = "for " + describeCaller(conn.caller) + " at " + e.w.GetNamespace() + "/" + e.w.GetName() + ": " + zv.reason
			}
			if len(zv.policies) > 0 {
				policies = union(policies, zv.policies)
			}
		}
	}
	out.Policies = policies
	switch len(first) {
	case 1:
		for dec, reason := range first {
			out.Decision, out.Reason = dec, reason
			if n := more[dec]; n > 0 {
				out.Reason += fmt.Sprintf(" (and %d more alike)", n)
			}
		}
	default:
		var parts []string
		for _, dec := range []access.Decision{access.Allow, access.Deny, access.Undecided} {
			if r, ok := first[dec]; ok {
				parts = append(parts, string(dec)+" "+r)
			}
		}
		if _, ok := first[access.Undecided]; ok {
			out.Decision = access.Undecided
		} else {
			out.Decision = Split
		}
		out.Reason = "its workloads or callers disagree: " + strings.Join(parts, "; ")
	}
	return out
}

func describeCaller(id *access.Identity) string {
	if id == nil {
		return "no identity"
	}
	return id.String()
}

func union(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string{}, a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// ReportObject names the summary report of a comparison.
const ReportObject = "access proof (istiod's ztunnel and waypoint config)"

// Reports turns a comparison into health reports: one unhealthy report per
// mismatch with both views, and a summary that is healthy when none.
func (r *Result) Reports() []health.Report {
	out := []health.Report{r.summary()}
	for _, a := range r.WaypointMismatches {
		out = append(out, health.Report{
			Object: fmt.Sprintf("access policies of waypoint %s for %s", a.Waypoint, a.To),
			Message: fmt.Sprintf("the model attaches %s; istiod's waypoint config enforces %s",
				listOrNone(a.Model), listOrNone(a.Istiod)),
		})
	}
	for _, p := range r.Mismatches {
		out = append(out, health.Report{
			Object:  fmt.Sprintf("access %s → %s", p.From, p.To),
			Message: fmt.Sprintf("the model says %s; istiod's ztunnel config says %s", p.Model, p.Istiod),
		})
	}
	return out
}

func (r *Result) summary() health.Report {
	msg := fmt.Sprintf("%d caller → Service pairs agree, %d differ, %d not compared", r.Agreed, len(r.Mismatches), len(r.Skipped))
	if n := r.WaypointsAgreed + len(r.WaypointMismatches); n > 0 {
		msg += fmt.Sprintf("; waypoint policies agree for %d of %d Service ports", r.WaypointsAgreed, n)
	}
	if len(r.Skipped) > 0 {
		p := r.Skipped[0]
		side, v := "istiod", p.Istiod
		if !decided(p.Model.Decision) {
			side, v = "the model", p.Model
		}
		msg += fmt.Sprintf(" (first: %s → %s, %s: %s)", p.From, p.To, side, v.Reason)
	}
	return health.Report{Object: ReportObject, Healthy: len(r.Mismatches)+len(r.WaypointMismatches) == 0, Message: msg}
}

func listOrNone(refs []string) string {
	if len(refs) == 0 {
		return "none"
	}
	return strings.Join(refs, ", ")
}
