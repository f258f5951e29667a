package access

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// covers reports whether every request rule a of a policy in namespace aNS
// admits is also admitted by rule b of a policy in namespace bNS, judged
// from what the rules state: b's from, to and when each constrain no more
// than a's. It never says yes when it cannot tell.
func covers(b rule, bNS string, a rule, aNS, td string) bool {
	if !whenCovers(b.When, a.When) {
		return false
	}
	if len(b.To) > 0 {
		if len(a.To) == 0 {
			return false
		}
		for _, at := range a.To {
			if !slices.ContainsFunc(b.To, func(bt struct {
				Operation operation `json:"operation"`
			}) bool {
				return operationCovers(bt.Operation, at.Operation)
			}) {
				return false
			}
		}
	}
	if len(b.From) > 0 {
		if len(a.From) == 0 {
			return false
		}
		for _, af := range a.From {
			if !slices.ContainsFunc(b.From, func(bf struct {
				Source source `json:"source"`
			}) bool {
				return sourceCovers(bf.Source, bNS, af.Source, aNS, td)
			}) {
				return false
			}
		}
	}
	return true
}

// whenCovers: each condition of b is one of a's, so a asks at least as much.
func whenCovers(b, a []condition) bool {
	for _, bc := range b {
		if !slices.ContainsFunc(a, func(ac condition) bool { return reflect.DeepEqual(ac, bc) }) {
			return false
		}
	}
	return true
}

// valuesCover: every value of a (non-empty) is matched by a pattern of b.
func valuesCover(b, a []string) bool {
	if len(a) == 0 {
		return false
	}
	for _, v := range a {
		if !slices.ContainsFunc(b, func(p string) bool { return patternCovers(p, v) }) {
			return false
		}
	}
	return true
}

// patternCovers: whatever pattern v matches, pattern p matches too.
func patternCovers(p, v string) bool {
	switch {
	case p == v || p == "*":
		return true
	case strings.HasSuffix(p, "*") && !strings.HasPrefix(v, "*"):
		return strings.HasPrefix(strings.TrimSuffix(v, "*"), p[:len(p)-1])
	case strings.HasPrefix(p, "*") && !strings.HasSuffix(v, "*"):
		return strings.HasSuffix(strings.TrimPrefix(v, "*"), p[1:])
	}
	return false
}

// sameValues: a excludes at least what b excludes, stated the same way.
func sameValues(b, a []string) bool {
	for _, v := range b {
		if !slices.Contains(a, v) {
			return false
		}
	}
	return true
}

func operationCovers(b, a operation) bool {
	pos := [][2][]string{{b.Hosts, a.Hosts}, {b.Ports, a.Ports}, {b.Methods, a.Methods}, {b.Paths, a.Paths}}
	for _, f := range pos {
		if len(f[0]) > 0 && !valuesCover(f[0], f[1]) {
			return false
		}
	}
	neg := [][2][]string{{b.NotHosts, a.NotHosts}, {b.NotPorts, a.NotPorts}, {b.NotMethods, a.NotMethods}, {b.NotPaths, a.NotPaths}}
	for _, f := range neg {
		if !sameValues(f[0], f[1]) {
			return false
		}
	}
	return true
}

// sourceCovers compares two sources' identity fields through principals:
// serviceAccounts entries are spelled as the principals they stand for.
func sourceCovers(b source, bNS string, a source, aNS, td string) bool {
	principals := func(s source, ns string) []string {
		out := slices.Clone(s.Principals)
		for _, v := range s.ServiceAccounts {
			id := serviceAccountRef(v, ns)
			out = append(out, td+"/ns/"+id.Namespace+"/sa/"+id.ServiceAccount)
		}
		return out
	}
	aPrincipals := principals(a, aNS)
	if len(b.Principals) > 0 && !valuesCover(b.Principals, aPrincipals) {
		return false
	}
	if len(b.ServiceAccounts) > 0 && !valuesCover(principals(source{ServiceAccounts: b.ServiceAccounts}, bNS), aPrincipals) {
		return false
	}
	if len(b.Namespaces) > 0 {
		aNamespaces := a.Namespaces
		if len(aNamespaces) == 0 {
			for _, p := range aPrincipals {
				id, ok := parsePrincipal(p)
				if !ok {
					return false
				}
				aNamespaces = append(aNamespaces, id.Namespace)
			}
		}
		if !valuesCover(b.Namespaces, aNamespaces) {
			return false
		}
	}
	rest := [][2][]string{
		{b.NotPrincipals, a.NotPrincipals}, {b.NotNamespaces, a.NotNamespaces}, {b.NotServiceAccounts, a.NotServiceAccounts},
		{b.IPBlocks, a.IPBlocks}, {b.NotIPBlocks, a.NotIPBlocks}, {b.RemoteIPBlocks, a.RemoteIPBlocks}, {b.NotRemoteIPBlocks, a.NotRemoteIPBlocks},
		{b.RequestPrincipals, a.RequestPrincipals}, {b.NotRequestPrincipals, a.NotRequestPrincipals},
		{b.TrustDomains, a.TrustDomains}, {b.NotTrustDomains, a.NotTrustDomains},
	}
	for _, f := range rest {
		if len(f[0]) > 0 && !reflect.DeepEqual(sorted(f[0]), sorted(f[1])) {
			return false
		}
	}
	return true
}

func sorted(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}

// describeRule spells a rule as a policy states it, on one line.
func describeRule(r rule) string {
	var parts []string
	field := func(name string, values []string) string {
		if len(values) == 0 {
			return ""
		}
		quoted := make([]string, len(values))
		for i, v := range values {
			quoted[i] = strconv.Quote(v)
		}
		return name + " " + strings.Join(quoted, ", ")
	}
	join := func(fs ...string) string {
		var out []string
		for _, f := range fs {
			if f != "" {
				out = append(out, f)
			}
		}
		return strings.Join(out, " and ")
	}
	var froms, tos []string
	for _, f := range r.From {
		s := f.Source
		froms = append(froms, join(field("principals", s.Principals), field("serviceAccounts", s.ServiceAccounts), field("namespaces", s.Namespaces),
			field("notPrincipals", s.NotPrincipals), field("notServiceAccounts", s.NotServiceAccounts), field("notNamespaces", s.NotNamespaces),
			field("ipBlocks", s.IPBlocks), field("notIpBlocks", s.NotIPBlocks), field("remoteIpBlocks", s.RemoteIPBlocks), field("notRemoteIpBlocks", s.NotRemoteIPBlocks),
			field("requestPrincipals", s.RequestPrincipals), field("notRequestPrincipals", s.NotRequestPrincipals),
			field("trustDomains", s.TrustDomains), field("notTrustDomains", s.NotTrustDomains)))
	}
	for _, t := range r.To {
		o := t.Operation
		tos = append(tos, join(field("hosts", o.Hosts), field("notHosts", o.NotHosts), field("ports", o.Ports), field("notPorts", o.NotPorts),
			field("methods", o.Methods), field("notMethods", o.NotMethods), field("paths", o.Paths), field("notPaths", o.NotPaths)))
	}
	if len(froms) > 0 {
		parts = append(parts, "from "+strings.Join(froms, " or "))
	}
	if len(tos) > 0 {
		parts = append(parts, "to "+strings.Join(tos, " or "))
	}
	for _, w := range r.When {
		parts = append(parts, fmt.Sprintf("when %s", join(field(w.Key, w.Values), field(w.Key+" not", w.NotValues))))
	}
	if len(parts) == 0 {
		return "every request"
	}
	return strings.Join(parts, "; ")
}
