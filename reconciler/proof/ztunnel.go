package proof

import (
	"fmt"
	"slices"
	"strings"

	"istio.io/istio/pkg/workloadapi"
	"istio.io/istio/pkg/workloadapi/security"

	"github.com/meshcd/meshcd/access"
)

// ztunnelVerdict is one workload's ztunnel decision for one caller.
type ztunnelVerdict struct {
	decision access.Decision
	policies []string
	reason   string
}

// connection is what ztunnel knows of an inbound connection.
type connection struct {
	// caller is nil when the connection carries no identity.
	caller      *access.Identity
	trustDomain string
	port        uint32
}

func (c connection) principal() string {
	return c.trustDomain + "/ns/" + c.caller.Namespace + "/sa/" + c.caller.ServiceAccount
}

// decide evaluates, as ztunnel does, the policies that apply to w for conn:
// a matching DENY refuses; with no ALLOW the connection is allowed; else one
// ALLOW must match.
func (c *Config) decide(w *workloadapi.Workload, conn connection) ztunnelVerdict {
	if w.GetTunnelProtocol() != workloadapi.TunnelProtocol_HBONE {
		return ztunnelVerdict{decision: access.Allow, reason: "istiod does not send it through ztunnel (tunnel protocol " + w.GetTunnelProtocol().String() + "): nothing enforces"}
	}
	pols, missing := c.applying(w)
	if len(missing) > 0 {
		return ztunnelVerdict{decision: access.Undecided, reason: "it lists policies istiod did not send: " + strings.Join(missing, ", ")}
	}
	var allows, allowed, denied []string
	for _, p := range pols {
		ref := p.GetNamespace() + "/" + p.GetName()
		m := matches(p, conn)
		if m == unknown {
			return ztunnelVerdict{decision: access.Undecided, policies: []string{ref}, reason: ref + " matches on IP addresses, which are not decided"}
		}
		switch p.GetAction() {
		case security.Action_DENY:
			if m == yes {
				denied = append(denied, ref)
			}
		case security.Action_ALLOW:
			allows = append(allows, ref)
			if m == yes {
				allowed = append(allowed, ref)
			}
		}
	}
	switch {
	case len(denied) > 0:
		return ztunnelVerdict{decision: access.Deny, policies: denied, reason: "DENY " + strings.Join(denied, ", ") + " matches"}
	case len(allows) == 0:
		return ztunnelVerdict{decision: access.Allow, reason: "no ALLOW policy applies"}
	case len(allowed) > 0:
		return ztunnelVerdict{decision: access.Allow, policies: allowed, reason: "ALLOW " + strings.Join(allowed, ", ") + " matches"}
	}
	return ztunnelVerdict{decision: access.Deny, policies: allows, reason: "no group of ALLOW " + strings.Join(allows, ", ") + " matches"}
}

// applying lists the enforced policies that apply to w, sorted by name, and
// the names w lists that istiod did not send; it is computed once per
// workload of the Config.
func (c *Config) applying(w *workloadapi.Workload) ([]*security.Authorization, []string) {
	if a, ok := c.applies[w.GetUid()]; ok {
		return a.policies, a.missing
	}
	pols, missing := c.selectPolicies(w)
	c.applies[w.GetUid()] = applied{pols, missing}
	return pols, missing
}

// applied is what applying found for one workload.
type applied struct {
	policies []*security.Authorization
	missing  []string
}

func (c *Config) selectPolicies(w *workloadapi.Workload) (pols []*security.Authorization, missing []string) {
	named := map[string]bool{}
	for _, ref := range w.GetAuthorizationPolicies() {
		named[ref] = true
		if c.Policies[ref] == nil {
			missing = append(missing, ref)
		}
	}
	for ref, p := range c.Policies {
		scoped := p.GetScope() == security.Scope_GLOBAL ||
			(p.GetScope() == security.Scope_NAMESPACE && p.GetNamespace() == w.GetNamespace())
		if (scoped || named[ref]) && !p.GetDryRun() {
			pols = append(pols, p)
		}
	}
	slices.SortFunc(pols, func(a, b *security.Authorization) int {
		return strings.Compare(a.GetNamespace()+"/"+a.GetName(), b.GetNamespace()+"/"+b.GetName())
	})
	return pols, missing
}

type tri uint8

const (
	no tri = iota
	yes
	unknown
)

// all is true when every outcome is; unknown wins over yes, no over both.
func all(outcomes ...tri) tri {
	out := yes
	for _, o := range outcomes {
		if o == no {
			return no
		}
		if o == unknown {
			out = unknown
		}
	}
	return out
}

// anyOf is true when one outcome is; yes wins over unknown.
func anyOf[T any](items []T, f func(T) tri) tri {
	out := no
	for _, it := range items {
		switch f(it) {
		case yes:
			return yes
		case unknown:
			out = unknown
		}
	}
	return out
}

// matches: groups are ORed, a group's rules ANDed, a rule's matches ORed.
func matches(p *security.Authorization, conn connection) tri {
	return anyOf(p.GetGroups(), func(g *security.Group) tri {
		var rules []tri
		for _, r := range g.GetRules() {
			rules = append(rules, anyOf(r.GetMatches(), func(m *security.Match) tri { return matchOne(m, conn) }))
		}
		return all(rules...)
	})
}

// matchOne ANDs the fields a match sets.
func matchOne(m *security.Match, conn connection) tri {
	if len(m.GetSourceIps())+len(m.GetNotSourceIps())+len(m.GetDestinationIps())+len(m.GetNotDestinationIps()) > 0 {
		return unknown
	}
	var namespace, principal string
	if conn.caller != nil {
		namespace, principal = conn.caller.Namespace, conn.principal()
	}
	return all(
		identityField(m.GetNamespaces(), m.GetNotNamespaces(), conn, func(s *security.StringMatch) bool { return stringMatch(s, namespace) }),
		identityField(m.GetPrincipals(), m.GetNotPrincipals(), conn, func(s *security.StringMatch) bool { return stringMatch(s, principal) }),
		identityField(m.GetServiceAccounts(), m.GetNotServiceAccounts(), conn, func(s *security.ServiceAccountMatch) bool {
			return s.GetNamespace() == conn.caller.Namespace && s.GetServiceAccount() == conn.caller.ServiceAccount
		}),
		portField(m.GetDestinationPorts(), m.GetNotDestinationPorts(), conn.port),
	)
}

// identityField: one of values and none of notValues; a caller without
// identity matches no value, positive or negated.
func identityField[T any](values, notValues []T, conn connection, match func(T) bool) tri {
	if conn.caller == nil {
		return boolTri(len(values) == 0)
	}
	hit := func(v T) tri { return boolTri(match(v)) }
	if len(values) > 0 && anyOf(values, hit) == no {
		return no
	}
	return boolTri(anyOf(notValues, hit) == no)
}

func portField(values, notValues []uint32, port uint32) tri {
	if len(values) > 0 && !slices.Contains(values, port) {
		return no
	}
	return boolTri(!slices.Contains(notValues, port))
}

// stringMatch follows stringToMatch in authorization.go: "*" is presence,
// "*x" a suffix, "x*" a prefix, else exact.
func stringMatch(s *security.StringMatch, v string) bool {
	switch t := s.GetMatchType().(type) {
	case *security.StringMatch_Exact:
		return v == t.Exact
	case *security.StringMatch_Prefix:
		return strings.HasPrefix(v, t.Prefix)
	case *security.StringMatch_Suffix:
		return strings.HasSuffix(v, t.Suffix)
	case *security.StringMatch_Presence:
		return v != ""
	}
	return false
}

func boolTri(b bool) tri {
	if b {
		return yes
	}
	return no
}

func (v ztunnelVerdict) String() string {
	s := string(v.decision)
	if len(v.policies) > 0 {
		s += " by " + strings.Join(v.policies, ", ")
	}
	return fmt.Sprintf("%s (%s)", s, v.reason)
}
