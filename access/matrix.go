package access

import "strings"

// Matrix is every identity the input names against every Service port.
//
// It is computed per Service port: the identities the policies that face
// callers name (exactly or by a prefix or suffix pattern) are decided one
// by one; every other identity matches none of those patterns, so one
// stand-in decides for all of them in each mesh state. Cell reads any cell.
type Matrix struct {
	Identities   []Identity
	Destinations []Destination
	Request      Request
	columns      []column
	state        map[Identity]meshState
}

type column struct {
	named  map[Identity]Verdict
	others map[meshState]Verdict
}

// Matrix decides every identity against every Service port for req.
func (m *Model) Matrix(req Request) *Matrix {
	mx := &Matrix{Identities: m.identities, Destinations: m.Destinations(), Request: req}
	ix := newIdentityIndex(m)
	mx.state = ix.state
	for _, d := range mx.Destinations {
		mx.columns = append(mx.columns, m.column(ix, d, &req))
	}
	return mx
}

// Cell is the verdict for identity i (one of Identities) and the j-th
// destination.
func (mx *Matrix) Cell(i Identity, j int) Verdict {
	col := mx.columns[j]
	v, ok := col.named[i]
	if !ok {
		v = col.others[mx.state[i]]
	}
	v.From, v.To = i, mx.Destinations[j]
	return v
}

// Cells is the number of identity × Service port pairs the matrix answers.
func (mx *Matrix) Cells() int { return len(mx.Identities) * len(mx.Destinations) }

// stand-in names no identity can have: no pattern but "*" matches them.
const standIn = "\x00"

func (m *Model) column(ix *identityIndex, d Destination, req *Request) column {
	col := column{named: map[Identity]Verdict{}, others: map[meshState]Verdict{}}
	named, coversAll := ix.named(m.callerFacing(d))
	for id := range named {
		col.named[id] = m.check(id, d, req, ix.state[id])
	}
	if coversAll {
		// A pattern may match the stand-in: decide everyone one by one.
		for _, id := range m.identities {
			if _, ok := col.named[id]; !ok {
				col.named[id] = m.check(id, d, req, ix.state[id])
			}
		}
		return col
	}
	for _, state := range ix.states {
		col.others[state] = m.check(Identity{standIn, standIn}, d, req, state)
	}
	return col
}

// callerFacing lists the policies that see the original caller of d: the
// sidecar's when d runs with sidecars (Options.Sidecars), the waypoint's
// when d uses one, else those ztunnel applies in its namespace.
func (m *Model) callerFacing(d Destination) []*policy {
	svc := m.services[d.Namespace+"/"+d.Service]
	if sidecar, _ := m.sidecarService(svc); m.opts.Sidecars && sidecar {
		return m.candidates(d.Namespace)
	}
	if gw, why := m.waypointOf(svc); gw != nil && why == "" {
		return m.waypointPolicies(svc, gw)
	}
	return m.candidates(d.Namespace)
}

// identityIndex finds the identities a pattern names.
type identityIndex struct {
	m           *Model
	byNamespace map[string][]Identity
	exists      map[Identity]bool
	state       map[Identity]meshState
	states      []meshState
	// scans caches the identities each wildcard pattern matches, by the
	// attribute and the pattern.
	scans map[string][]Identity
}

func newIdentityIndex(m *Model) *identityIndex {
	ix := &identityIndex{m: m, byNamespace: map[string][]Identity{}, exists: map[Identity]bool{},
		state: map[Identity]meshState{}, scans: map[string][]Identity{}}
	seen := map[meshState]bool{}
	for _, id := range m.identities {
		ix.byNamespace[id.Namespace] = append(ix.byNamespace[id.Namespace], id)
		ix.exists[id] = true
		s := m.callerState(id)
		ix.state[id] = s
		if !seen[s] {
			seen[s] = true
			ix.states = append(ix.states, s)
		}
	}
	return ix
}

// named lists the identities the policies' identity fields name. coversAll
// is true when a pattern would also match the stand-in.
func (ix *identityIndex) named(pols []*policy) (map[Identity]bool, bool) {
	out := map[Identity]bool{}
	coversAll := false
	td := ix.m.opts.TrustDomain
	principal := func(id Identity) string { return td + "/ns/" + id.Namespace + "/sa/" + id.ServiceAccount }
	namespaceOf := func(id Identity) string { return id.Namespace }
	byPattern := func(kind, p string, get func(Identity) string) {
		switch {
		case p == "*":
			return // every identity alike
		case !strings.Contains(p, "*"):
			if kind == "ns" {
				for _, id := range ix.byNamespace[p] {
					out[id] = true
				}
				return
			}
			if id, ok := parsePrincipal(p); ok && ix.exists[id] {
				out[id] = true
			}
			return
		}
		if pattern(p, get(Identity{standIn, standIn})) {
			coversAll = true
		}
		key := kind + "\x00" + p
		ids, ok := ix.scans[key]
		if !ok {
			for _, id := range ix.m.identities {
				if pattern(p, get(id)) {
					ids = append(ids, id)
				}
			}
			ix.scans[key] = ids
		}
		for _, id := range ids {
			out[id] = true
		}
	}
	for _, p := range pols {
		for _, r := range p.spec.Rules {
			for _, f := range r.From {
				s := f.Source
				for _, v := range concat(s.Principals, s.NotPrincipals) {
					byPattern("principal", v, principal)
				}
				for _, v := range concat(s.Namespaces, s.NotNamespaces) {
					byPattern("ns", v, namespaceOf)
				}
				for _, v := range concat(s.ServiceAccounts, s.NotServiceAccounts) {
					if id := serviceAccountRef(v, p.namespace); ix.exists[id] {
						out[id] = true
					}
				}
			}
			for _, w := range r.When {
				for _, v := range concat(w.Values, w.NotValues) {
					switch w.Key {
					case "source.principal":
						byPattern("principal", v, principal)
					case "source.namespace":
						byPattern("ns", v, namespaceOf)
					case "source.serviceAccount":
						if id := serviceAccountRef(v, p.namespace); ix.exists[id] {
							out[id] = true
						}
					}
				}
			}
		}
	}
	return out, coversAll
}
