package rules

import (
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/access"
	"github.com/meshcd/meshcd/ambient"
)

// accessRules reports what the access model finds in the policies as they
// are enforced: AMB051 to AMB054. An input the model cannot read (a policy
// it cannot decode) is left to the other rules.
func (c *checker) accessRules(objs []*unstructured.Unstructured) {
	m, err := access.Build(withContext(c.opts.Context, objs), accessOptions)
	if err != nil {
		return
	}
	policies, services := byName(objs, ambient.AuthorizationPolicyGK.Kind), byName(objs, ambient.ServiceGK.Kind)
	for _, s := range m.Shadows() {
		if o := policies[s.Policy]; o != nil {
			c.report("AMB051", o, s.Rule, s.RuleText, s.Where, s.ByRule, s.By, s.ByText)
		}
	}
	for _, d := range m.DeadRules() {
		if o := policies[d.Policy]; o != nil {
			c.report("AMB052", o, d.Rule, d.RuleText, d.Where, d.Why)
		}
	}
	for _, op := range m.Openings() {
		if o := policies[op.Policy]; o != nil {
			c.report("AMB053", o, op.Rule, op.RuleText, op.Where, op.DefaultDeny)
		}
	}
	for _, b := range m.Bypasses() {
		if o := services[b.Via.Namespace+"/"+b.Via.Service]; o != nil {
			verb := "refuse"
			if b.Decision == access.Depends {
				verb = "restrict"
			}
			protected := b.Protected.Namespace + "/" + b.Protected.Service
			c.report("AMB054", o, protected, strings.Join(b.Policies, ", "), protected, b.Caller, verb, b.Via.Namespace+"/"+b.Via.Service)
		}
	}
}

// accessOptions are the model's options for the mesh the rules assume.
var accessOptions = access.Options{RootNamespace: ambient.RootNamespace, TrustDomain: access.DefaultOptions().TrustDomain}

// byName indexes the objects of one core or Istio kind by NS/NAME.
func byName(objs []*unstructured.Unstructured, kind string) map[string]*unstructured.Unstructured {
	out := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		if o.GetKind() == kind {
			out[o.GetNamespace()+"/"+o.GetName()] = o
		}
	}
	return out
}

// CheckChange reports what a change from base to head does while it is
// applied (AMB055): a Service whose waypoint moves keeps its
// istio.io/use-waypoint label on the old waypoint until the new one is
// ready, while the head's policies apply at once; where they no longer
// admit the old waypoint's identity at ztunnel, traffic through it is
// refused during the switch. opts.Origin locates head's objects. It never
// returns nil.
func CheckChange(base, head []*unstructured.Unstructured, opts Options) []Finding {
	c := &checker{opts: opts, findings: []Finding{}}
	before, err := access.Build(withContext(opts.Context, base), accessOptions)
	if err != nil {
		return c.findings
	}
	after, err := access.Build(withContext(opts.Context, head), accessOptions)
	if err != nil {
		return c.findings
	}
	type window struct {
		carrier    *unstructured.Unstructured
		from, to   string
		services   []string
		identity   access.Identity
		proxy, why string
	}
	windows := map[string]*window{}
	var order []string
	services, namespaces := byName(head, ambient.ServiceGK.Kind), byName(head, ambient.NamespaceGK.Kind)
	for _, d := range after.Destinations() {
		to, _, ok := after.WaypointFor(d)
		from, id, wasOK := before.WaypointFor(d)
		if !ok || !wasOK || from == to {
			continue
		}
		if before.AtZtunnel(id, d).Decision != access.Allow {
			continue
		}
		hv := after.AtZtunnel(id, d)
		if hv.Decision != access.Deny {
			continue
		}
		carrier := services[d.Namespace+"/"+d.Service]
		if carrier == nil || carrier.GetLabels()[ambient.LabelUseWaypoint] == "" {
			carrier = namespaces["/"+d.Namespace]
		}
		if carrier == nil {
			continue
		}
		key := describe(carrier) + "\x00" + from + "\x00" + to
		w := windows[key]
		if w == nil {
			w = &window{carrier: carrier, from: from, to: to, identity: id, proxy: hv.Proxy, why: hv.Reason}
			windows[key] = w
			order = append(order, key)
		}
		if svc := "Service " + d.Namespace + "/" + d.Service; !slices.Contains(w.services, svc) {
			w.services = append(w.services, svc)
		}
	}
	sort.Strings(order)
	for _, key := range order {
		w := windows[key]
		sort.Strings(w.services)
		principal := accessOptions.TrustDomain + "/ns/" + w.identity.Namespace + "/sa/" + w.identity.ServiceAccount
		c.report("AMB055", w.carrier, strings.Join(w.services, ", "), w.from, w.to, w.from, w.to, w.from, w.proxy, w.why, principal)
	}
	c.sortFindings()
	return c.findings
}
