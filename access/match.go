package access

import (
	"strconv"
	"strings"
)

// Request holds the request attributes a question fixes. An attribute left
// empty is unknown: a rule that examines it makes the verdict "depends".
type Request struct {
	Method string `json:"method,omitempty"`
	Path   string `json:"path,omitempty"`
	Host   string `json:"host,omitempty"`
	// RequestPrincipal is the JWT's ISSUER/SUBJECT.
	RequestPrincipal string `json:"requestPrincipal,omitempty"`
	// NoJWT says the request carries no JWT.
	NoJWT bool `json:"noJWT,omitempty"`
	// Headers by lower-case name; a header not here is unknown.
	Headers map[string]string `json:"headers,omitempty"`
}

// tri is a match result when some attributes are unknown.
type tri uint8

const (
	no tri = iota
	yes
	maybe
)

// outcome is a tri with, for maybe, what it hangs on.
type outcome struct {
	v tri
	// on names the request attribute, or the limit of the model, that
	// leaves a maybe open.
	on string
	// limit says on is a limit of the model, not a request attribute.
	limit bool
}

var (
	matched    = outcome{v: yes}
	notMatched = outcome{v: no}
)

func dependsOn(attr string) outcome { return outcome{v: maybe, on: attr} }
func notModelled(why string) outcome {
	return outcome{v: maybe, on: why, limit: true}
}

func and(a, b outcome) outcome {
	switch {
	case a.v == no || b.v == no:
		return notMatched
	case a.v == maybe && (b.v != maybe || a.limit):
		return a
	case b.v == maybe:
		return b
	}
	return matched
}

func or(a, b outcome) outcome {
	switch {
	case a.v == yes || b.v == yes:
		return matched
	case a.v == maybe && (b.v != maybe || a.limit):
		return a
	case b.v == maybe:
		return b
	}
	return notMatched
}

// call is one hop of a request as the enforcing proxy sees it.
type call struct {
	// caller is nil when the connection carries no identity.
	caller *Identity
	td     string
	port   int32
	req    *Request
	// ztunnel applies istiod's L4 translation (authorization.go, handleRule).
	ztunnel bool
	// tcp is a sidecar's TCP filter chain: the HTTP-only parts of rules
	// are handled as at ztunnel (builder.go and model.go, checkError).
	tcp bool
}

// l4Only says the proxy sees no HTTP request.
func (c *call) l4Only() bool { return c.ztunnel || c.tcp }

func (c *call) principal() string {
	return c.td + "/ns/" + c.caller.Namespace + "/sa/" + c.caller.ServiceAccount
}

// pattern matches Istio's string forms: "*" any non-empty value, "*x" a
// suffix, "x*" a prefix, else exact (authorization.go, stringToMatch).
func pattern(p, v string) bool {
	switch {
	case p == "*":
		return v != ""
	case strings.HasPrefix(p, "*"):
		return strings.HasSuffix(v, p[1:])
	case strings.HasSuffix(p, "*"):
		return strings.HasPrefix(v, p[:len(p)-1])
	}
	return p == v
}

func foldPattern(p, v string) bool { return pattern(strings.ToLower(p), strings.ToLower(v)) }

// field matches one attribute against values and notValues: it matches
// when values is empty or one matches, and no notValue matches. present is
// false when the attribute is absent from a known request.
func field(values, notValues []string, v string, present bool, match func(p, v string) bool) outcome {
	any := func(ps []string) bool {
		for _, p := range ps {
			if present && match(p, v) {
				return true
			}
		}
		return false
	}
	if len(values) > 0 && !any(values) {
		return notMatched
	}
	if any(notValues) {
		return notMatched
	}
	return matched
}

// unknownField is field for an attribute the question leaves open.
func unknownField(values, notValues []string, attr string) outcome {
	if len(values)+len(notValues) == 0 {
		return matched
	}
	return dependsOn(attr)
}

// identityField matches a field of the caller's identity; get reads it.
func (c *call) identityField(values, notValues []string, name string, get func() string, match func(p, v string) bool) outcome {
	if len(values)+len(notValues) == 0 {
		return matched
	}
	if c.caller == nil {
		if len(notValues) > 0 {
			return notModelled(name + " negated for a caller without identity")
		}
		return notMatched
	}
	return field(values, notValues, get(), true, match)
}

func (c *call) serviceAccounts(values, notValues []string, policyNamespace string) outcome {
	return c.identityField(values, notValues, "serviceAccounts", func() string { return c.caller.String() },
		func(p, v string) bool { return serviceAccountRef(p, policyNamespace).String() == v })
}

func (c *call) ports(values, notValues []string) outcome {
	// stringToPort skips what is not a port number.
	return field(values, notValues, strconv.Itoa(int(c.port)), true, func(p, v string) bool { return p == v })
}

func (c *call) ips(values, notValues []string, attr string) outcome {
	if len(values)+len(notValues) == 0 {
		return matched
	}
	return notModelled(attr + " (IP addresses are not modelled)")
}

// l7 evaluates an HTTP attribute: at ztunnel it is dropped from the rule
// (a DENY rule then matches more; an ALLOW rule with one is omitted before
// this is called).
func (c *call) l7(o func() outcome) outcome {
	if c.l4Only() {
		return matched
	}
	return o()
}

func (c *call) requestPrincipal(values, notValues []string) outcome {
	switch {
	case c.req.NoJWT:
		return field(values, notValues, "", false, pattern)
	case c.req.RequestPrincipal != "":
		return field(values, notValues, c.req.RequestPrincipal, true, pattern)
	}
	return unknownField(values, notValues, "request.auth.principal")
}

func (c *call) known(values, notValues []string, attr, v string, match func(p, v string) bool) outcome {
	if v == "" {
		return unknownField(values, notValues, attr)
	}
	return field(values, notValues, v, true, match)
}

func (c *call) path(values, notValues []string) outcome {
	for _, p := range concat(values, notValues) {
		if strings.Contains(p, "{") {
			return notModelled("path template " + p)
		}
	}
	return c.known(values, notValues, "path", c.req.Path, pattern)
}

func (c *call) source(s source, policyNamespace string) outcome {
	o := c.identityField(s.Principals, s.NotPrincipals, "principals", c.principal, pattern)
	o = and(o, c.identityField(s.Namespaces, s.NotNamespaces, "namespaces", func() string { return c.caller.Namespace }, pattern))
	o = and(o, c.serviceAccounts(s.ServiceAccounts, s.NotServiceAccounts, policyNamespace))
	o = and(o, c.ips(s.IPBlocks, s.NotIPBlocks, "ipBlocks"))
	if !c.ztunnel { // handleRule does not translate trustDomains: ztunnel ignores it
		o = and(o, c.identityField(s.TrustDomains, s.NotTrustDomains, "trustDomains", func() string { return c.td }, pattern))
	}
	o = and(o, c.l7(func() outcome { return c.ips(s.RemoteIPBlocks, s.NotRemoteIPBlocks, "remoteIpBlocks") }))
	return and(o, c.l7(func() outcome { return c.requestPrincipal(s.RequestPrincipals, s.NotRequestPrincipals) }))
}

func (c *call) operation(op operation) outcome {
	o := c.ports(op.Ports, op.NotPorts)
	o = and(o, c.l7(func() outcome { return c.known(op.Methods, op.NotMethods, "method", c.req.Method, exactly) }))
	o = and(o, c.l7(func() outcome { return c.path(op.Paths, op.NotPaths) }))
	return and(o, c.l7(func() outcome { return c.known(op.Hosts, op.NotHosts, "host", c.req.Host, foldPattern) }))
}

func exactly(p, v string) bool { return p == v }

func (c *call) condition(w condition, policyNamespace string) outcome {
	switch {
	case w.Key == "source.namespace":
		return c.identityField(w.Values, w.NotValues, w.Key, func() string { return c.caller.Namespace }, pattern)
	case w.Key == "source.principal":
		return c.identityField(w.Values, w.NotValues, w.Key, c.principal, pattern)
	case w.Key == "destination.port":
		return c.ports(w.Values, w.NotValues)
	case w.Key == "source.ip" || w.Key == "destination.ip":
		return c.ips(w.Values, w.NotValues, w.Key)
	}
	return c.l7(func() outcome {
		switch {
		case w.Key == "source.serviceAccount":
			return c.serviceAccounts(w.Values, w.NotValues, policyNamespace)
		case w.Key == "remote.ip":
			return c.ips(w.Values, w.NotValues, w.Key)
		case w.Key == "request.auth.principal":
			return c.requestPrincipal(w.Values, w.NotValues)
		case strings.HasPrefix(w.Key, "request.auth."):
			if c.req.NoJWT {
				return field(w.Values, w.NotValues, "", false, pattern)
			}
			return unknownField(w.Values, w.NotValues, w.Key)
		case strings.HasPrefix(w.Key, "request.headers[") && strings.HasSuffix(w.Key, "]"):
			name := strings.ToLower(w.Key[len("request.headers[") : len(w.Key)-1])
			v, ok := c.req.Headers[name]
			if !ok {
				return unknownField(w.Values, w.NotValues, w.Key)
			}
			return field(w.Values, w.NotValues, v, true, pattern)
		}
		return notModelled("condition " + w.Key)
	})
}

// rule evaluates one rule: any from, any to, every when.
func (c *call) rule(r rule, policyNamespace string) outcome {
	o := matched
	if len(r.From) > 0 {
		from := notMatched
		for _, f := range r.From {
			from = or(from, c.source(f.Source, policyNamespace))
		}
		o = and(o, from)
	}
	if len(r.To) > 0 {
		to := notMatched
		for _, t := range r.To {
			to = or(to, c.operation(t.Operation))
		}
		o = and(o, to)
	}
	for _, w := range r.When {
		o = and(o, c.condition(w, policyNamespace))
	}
	return o
}

// policy evaluates whether any rule of p matches, with istiod's ztunnel
// translation when the call is at ztunnel: an ALLOW rule with an HTTP
// attribute is omitted ("L7 policies never match for ALLOW", handleRule).
// It also returns the indexes of the rules that matched.
func (c *call) policy(p *policy) (outcome, []int) {
	o := notMatched
	var hits []int
	for i, r := range p.spec.Rules {
		if c.l4Only() && p.action() == actionAllow && len(p.l7[i]) > 0 {
			continue
		}
		ro := c.rule(r, p.namespace)
		if ro.v == yes {
			hits = append(hits, i)
		}
		o = or(o, ro)
	}
	return o, hits
}
