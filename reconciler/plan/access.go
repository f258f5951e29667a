package plan

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/access"
	"github.com/meshcd/meshcd/ambient"
)

// The access changes of a plan compare the access matrices of base and
// head: for every caller and Service port, the verdict for every request
// the policies tell apart. The requests are the methods and paths the
// policies of either revision name, each path pattern standing for the
// paths it matches that no narrower pattern names, plus one method and one
// path no policy names ("other methods", "other paths"). Other request
// attributes (headers, the JWT, hosts) are left open, so a verdict that
// hangs on them is "depends".

// Placeholders no policy can name: a method for the methods no policy
// names, and what stands for the wildcard in a path pattern.
const (
	otherMethod = "\x00other"
	wildcard    = "\x00any"
	otherPath   = "/\x00other"
)

// request is one request the policies tell apart, and how to print it.
type request struct {
	method, path string // the labels
	req          access.Request
}

// requests lists the method × path combinations of base and head.
func requests(models ...*access.Model) (methods, paths []string, out []request) {
	ms, ps := map[string]bool{}, map[string]bool{}
	for _, m := range models {
		if m == nil {
			continue
		}
		named, patterns := m.Named()
		for _, v := range named {
			ms[v] = true
		}
		for _, v := range patterns {
			ps[v] = true
		}
	}
	methods, paths = append(sortedSet(ms), otherMethod), append(sortedSet(ps), otherPath)
	for _, m := range methods {
		for _, p := range paths {
			out = append(out, request{method: m, path: p, req: access.Request{Method: m, Path: strings.ReplaceAll(p, "*", wildcard)}})
		}
	}
	return methods, paths, out
}

func sortedSet(s map[string]bool) []string {
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// pair is one caller and Service port.
type pair struct {
	from access.Identity
	to   access.Destination
}

// side answers the pairs of one revision, request by request.
type side struct {
	m      *access.Model
	mxs    []*access.Matrix // one per request
	column map[access.Destination]int
	known  map[access.Identity]bool
}

func newSide(m *access.Model, reqs []request) *side {
	s := &side{m: m, column: map[access.Destination]int{}, known: map[access.Identity]bool{}}
	if m == nil {
		return s
	}
	for _, r := range reqs {
		s.mxs = append(s.mxs, m.Matrix(r.req))
	}
	for _, id := range m.Identities() {
		s.known[id] = true
	}
	for j, d := range m.Destinations() {
		s.column[d] = j
	}
	return s
}

// verdict answers pair k for the r-th request; ok is false when the
// revision lacks the Service port.
func (s *side) verdict(r int, k pair, req access.Request) (access.Verdict, bool) {
	j, ok := s.column[k.to]
	switch {
	case !ok:
		return access.Verdict{}, false
	case s.known[k.from]:
		return s.mxs[r].Cell(k.from, j), true
	}
	return s.m.Check(k.from, k.to, req), true
}

// accessChanges lists who gains and who loses access from base to head,
// one line per change, callers and Services with the same change grouped:
// "+ shop/web → shop/orders: DELETE /api/* (waypoint)". + is allowed now
// and was not, - was allowed and is not, ~ a change between deny, depends
// and undecided, or a Service that is gone.
func accessChanges(before, after []*unstructured.Unstructured) ([]string, error) {
	opts := access.Options{RootNamespace: ambient.RootNamespace, TrustDomain: access.DefaultOptions().TrustDomain}
	var base *access.Model
	if before != nil {
		var err error
		if base, err = access.Build(before, opts); err != nil {
			return nil, fmt.Errorf("base access model: %w", err)
		}
	}
	head, err := access.Build(after, opts)
	if err != nil {
		return nil, fmt.Errorf("head access model: %w", err)
	}
	ids, dests, ports := union(base, head)
	methods, paths, reqs := requests(base, head)

	// For each pair, the requests of each kind of change.
	changed := map[pair]map[classified][]request{}
	was, now := newSide(base, reqs), newSide(head, reqs)
	for _, d := range dests {
		for _, id := range ids {
			k := pair{id, d}
			for r, req := range reqs {
				vb, inBase := was.verdict(r, k, req.req)
				vh, inHead := now.verdict(r, k, req.req)
				c, ok := classify(vb, inBase, vh, inHead)
				if !ok {
					continue
				}
				if changed[k] == nil {
					changed[k] = map[classified][]request{}
				}
				changed[k][c] = append(changed[k][c], req)
			}
		}
	}

	// Group the callers of one Service with the same change, then the
	// Services with the same callers and change.
	type line struct{ sign, what, at string }
	callers := map[access.Destination]map[line][]string{}
	for k, chs := range changed {
		for ch, rs := range chs {
			l := line{ch.sign, describeRequests(rs, methods, paths) + ch.transition, ch.at}
			if callers[k.to] == nil {
				callers[k.to] = map[line][]string{}
			}
			callers[k.to][l] = append(callers[k.to][l], k.from.String())
		}
	}
	type group struct {
		l       line
		callers string
	}
	services := map[group][]string{}
	for d, ls := range callers {
		for l, cs := range ls {
			sort.Strings(cs)
			g := group{l, strings.Join(cs, ", ")}
			services[g] = append(services[g], destinationLabel(d, ports))
		}
	}
	out := make([]string, 0, len(services))
	for g, ss := range services {
		sort.Strings(ss)
		out = append(out, fmt.Sprintf("%s %s → %s: %s (%s)", g.l.sign, g.callers, strings.Join(ss, ", "), g.l.what, g.l.at))
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i][2:], out[j][2:]
		if a != b {
			return a < b
		}
		return out[i] < out[j]
	})
	return out, nil
}

// classified is how one request's verdict changed.
type classified struct{ sign, at, transition string }

func classify(vb access.Verdict, inBase bool, vh access.Verdict, inHead bool) (classified, bool) {
	switch {
	case inBase && inHead && vb.Decision == vh.Decision:
		return classified{}, false
	case !inBase && !inHead:
		return classified{}, false
	case inHead && vh.Decision == access.Allow:
		return classified{"+", string(vh.EnforcedAt), ""}, true
	case !inHead:
		if vb.Decision != access.Allow {
			return classified{}, false
		}
		return classified{"-", string(vb.EnforcedAt), ", the Service is gone"}, true
	case !inBase && vh.Decision == access.Deny:
		return classified{}, false // a new Service that refuses gives nothing
	case vb.Decision == access.Allow && vh.Decision == access.Deny:
		return classified{"-", string(vh.EnforcedAt), ""}, true
	}
	from := "absent"
	if inBase {
		from = string(vb.Decision)
	}
	return classified{"~", string(vh.EnforcedAt), fmt.Sprintf(": %s → %s", from, vh.Decision)}, true
}

// union lists the identities and Service ports of base and head, and how
// many ports each Service has.
func union(models ...*access.Model) ([]access.Identity, []access.Destination, map[string]int) {
	ids, dests := map[access.Identity]bool{}, map[access.Destination]bool{}
	for _, m := range models {
		if m == nil {
			continue
		}
		for _, id := range m.Identities() {
			ids[id] = true
		}
		for _, d := range m.Destinations() {
			dests[d] = true
		}
	}
	outIDs := make([]access.Identity, 0, len(ids))
	for id := range ids {
		outIDs = append(outIDs, id)
	}
	sort.Slice(outIDs, func(i, j int) bool { return outIDs[i].String() < outIDs[j].String() })
	outDests := make([]access.Destination, 0, len(dests))
	ports := map[string]int{}
	for d := range dests {
		outDests = append(outDests, d)
		ports[d.Namespace+"/"+d.Service]++
	}
	sort.Slice(outDests, func(i, j int) bool { return outDests[i].String() < outDests[j].String() })
	return outIDs, outDests, ports
}

// destinationLabel is NS/SERVICE, with :PORT when the Service has several.
func destinationLabel(d access.Destination, ports map[string]int) string {
	if ports[d.Namespace+"/"+d.Service] > 1 {
		return d.String()
	}
	return d.Namespace + "/" + d.Service
}

// describeRequests summarises a set of requests as the policies state
// them: paths with the same methods together, "any method" and "any path"
// for the whole of either, "every request" for all.
func describeRequests(rs []request, methods, paths []string) string {
	if len(rs) == len(methods)*len(paths) {
		return "every request"
	}
	byPath := map[string][]string{}
	for _, r := range rs {
		byPath[r.path] = append(byPath[r.path], r.method)
	}
	var order []string // method sets, in the order of their first path
	byMethods := map[string][]string{}
	for _, p := range paths {
		ms, ok := byPath[p]
		if !ok {
			continue
		}
		key := strings.Join(ms, "\x00")
		if _, seen := byMethods[key]; !seen {
			order = append(order, key)
		}
		byMethods[key] = append(byMethods[key], p)
	}
	var parts []string
	for _, key := range order {
		ms, ps := strings.Split(key, "\x00"), byMethods[key]
		what := "any method"
		if len(ms) < len(methods) {
			what = strings.Join(labels(ms, otherMethod, "other methods"), ", ")
		}
		if len(ps) < len(paths) {
			what += " " + strings.Join(labels(ps, otherPath, "other paths"), ", ")
		} else {
			what += " on any path"
		}
		parts = append(parts, what)
	}
	return strings.Join(parts, "; ")
}

// labels spells the placeholder as what it stands for.
func labels(values []string, placeholder, label string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = v
		if v == placeholder {
			out[i] = label
		}
	}
	return out
}
