package access

import (
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Actions of an AuthorizationPolicy.
const (
	actionAllow  = "ALLOW"
	actionDeny   = "DENY"
	actionCustom = "CUSTOM"
	actionAudit  = "AUDIT"
)

// annotationDryRun marks a policy istiod does not enforce.
const annotationDryRun = "istio.io/dry-run"

type targetRef struct {
	Group     string `json:"group"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

type source struct {
	Principals           []string `json:"principals"`
	NotPrincipals        []string `json:"notPrincipals"`
	RequestPrincipals    []string `json:"requestPrincipals"`
	NotRequestPrincipals []string `json:"notRequestPrincipals"`
	Namespaces           []string `json:"namespaces"`
	NotNamespaces        []string `json:"notNamespaces"`
	ServiceAccounts      []string `json:"serviceAccounts"`
	NotServiceAccounts   []string `json:"notServiceAccounts"`
	IPBlocks             []string `json:"ipBlocks"`
	NotIPBlocks          []string `json:"notIpBlocks"`
	RemoteIPBlocks       []string `json:"remoteIpBlocks"`
	NotRemoteIPBlocks    []string `json:"notRemoteIpBlocks"`
	TrustDomains         []string `json:"trustDomains"`
	NotTrustDomains      []string `json:"notTrustDomains"`
}

type operation struct {
	Hosts      []string `json:"hosts"`
	NotHosts   []string `json:"notHosts"`
	Ports      []string `json:"ports"`
	NotPorts   []string `json:"notPorts"`
	Methods    []string `json:"methods"`
	NotMethods []string `json:"notMethods"`
	Paths      []string `json:"paths"`
	NotPaths   []string `json:"notPaths"`
}

type condition struct {
	Key       string   `json:"key"`
	Values    []string `json:"values"`
	NotValues []string `json:"notValues"`
}

type rule struct {
	From []struct {
		Source source `json:"source"`
	} `json:"from"`
	To []struct {
		Operation operation `json:"operation"`
	} `json:"to"`
	When []condition `json:"when"`
}

type policySpec struct {
	Selector *struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	TargetRef  *targetRef             `json:"targetRef"`
	TargetRefs []targetRef            `json:"targetRefs"`
	Action     string                 `json:"action"`
	Provider   *struct{ Name string } `json:"provider"`
	Rules      []rule                 `json:"rules"`
}

// policy is an AuthorizationPolicy as the model reads it.
type policy struct {
	namespace, name string
	spec            policySpec
	dryRun          bool
	// l7 holds, per rule, the HTTP attributes ztunnel cannot enforce.
	l7 [][]string
}

func (p *policy) ref() string { return p.namespace + "/" + p.name }

func (p *policy) action() string {
	if p.spec.Action == "" {
		return actionAllow
	}
	return p.spec.Action
}

// targetRefs follows model.GetTargetRefs: targetRefs, else the legacy targetRef.
func (p *policy) targetRefs() []targetRef {
	if len(p.spec.TargetRefs) == 0 && p.spec.TargetRef != nil {
		return []targetRef{*p.spec.TargetRef}
	}
	return p.spec.TargetRefs
}

func readPolicy(o *unstructured.Unstructured) (*policy, error) {
	p := &policy{namespace: o.GetNamespace(), name: o.GetName()}
	if err := decodeSpec(o, &p.spec); err != nil {
		return nil, err
	}
	// A dry-run policy is never enforced: ztunnel drops it or marks it
	// DryRun (authorization.go, convertAuthorizationPolicy), the waypoint
	// puts it in shadow rules (builder.go).
	p.dryRun, _ = strconv.ParseBool(o.GetAnnotations()[annotationDryRun])
	for _, r := range p.spec.Rules {
		p.l7 = append(p.l7, httpAttributes(r))
	}
	return p, nil
}

// l4WhenKeys are the conditions ztunnel enforces (authorization.go,
// l4WhenAttributes); any other key is an HTTP attribute to it.
var l4WhenKeys = map[string]bool{
	"source.ip": true, "source.namespace": true, "source.principal": true,
	"destination.ip": true, "destination.port": true,
}

// httpAttributes lists what handleRule in authorization.go reports as HTTP
// attributes of a rule.
func httpAttributes(r rule) []string {
	var out []string
	add := func(name string, values []string) {
		if len(values) > 0 {
			out = append(out, name)
		}
	}
	for _, t := range r.To {
		op := t.Operation
		add("hosts", op.Hosts)
		add("notHosts", op.NotHosts)
		add("methods", op.Methods)
		add("notMethods", op.NotMethods)
		add("paths", op.Paths)
		add("notPaths", op.NotPaths)
	}
	for _, f := range r.From {
		s := f.Source
		add("remoteIpBlocks", s.RemoteIPBlocks)
		add("notRemoteIpBlocks", s.NotRemoteIPBlocks)
		add("requestPrincipals", s.RequestPrincipals)
		add("notRequestPrincipals", s.NotRequestPrincipals)
	}
	for _, w := range r.When {
		if !l4WhenKeys[w.Key] {
			out = append(out, w.Key)
		}
	}
	return out
}

// namedIdentities lists the identities and the namespaces the rules name
// exactly (patterns name no one in particular).
func (p *policy) namedIdentities() (ids []Identity, namespaces []string) {
	for _, r := range p.spec.Rules {
		for _, f := range r.From {
			s := f.Source
			for _, v := range concat(s.ServiceAccounts, s.NotServiceAccounts) {
				ids = append(ids, serviceAccountRef(v, p.namespace))
			}
			for _, v := range concat(s.Principals, s.NotPrincipals) {
				if id, ok := parsePrincipal(v); ok {
					ids = append(ids, id)
				}
			}
			namespaces = append(namespaces, exact(concat(s.Namespaces, s.NotNamespaces))...)
		}
		for _, w := range r.When {
			switch w.Key {
			case "source.principal":
				for _, v := range concat(w.Values, w.NotValues) {
					if id, ok := parsePrincipal(v); ok {
						ids = append(ids, id)
					}
				}
			case "source.namespace":
				namespaces = append(namespaces, exact(concat(w.Values, w.NotValues))...)
			}
		}
	}
	return ids, namespaces
}

// serviceAccountRef reads a serviceAccounts entry: NS/SA, or SA in the
// policy's namespace (authorization.go, stringToServiceAccountMatch).
func serviceAccountRef(v, policyNamespace string) Identity {
	if ns, sa, ok := strings.Cut(v, "/"); ok {
		return Identity{ns, sa}
	}
	return Identity{policyNamespace, v}
}

// parsePrincipal reads TRUSTDOMAIN/ns/NS/sa/SA without wildcards.
func parsePrincipal(v string) (Identity, bool) {
	parts := strings.Split(v, "/")
	if len(parts) != 5 || parts[1] != "ns" || parts[3] != "sa" || strings.Contains(v, "*") {
		return Identity{}, false
	}
	return Identity{parts[2], parts[4]}, true
}

func exact(values []string) []string {
	var out []string
	for _, v := range values {
		if !strings.Contains(v, "*") {
			out = append(out, v)
		}
	}
	return out
}

func concat(a, b []string) []string { return append(append([]string(nil), a...), b...) }

// HTTPAttributes lists, per rule of the AuthorizationPolicy o, the
// attributes ztunnel cannot enforce (handleRule in authorization.go): a
// rule with any is omitted from an ALLOW policy at ztunnel and enforced
// without them in a DENY policy.
func HTTPAttributes(o *unstructured.Unstructured) ([][]string, error) {
	p, err := readPolicy(o)
	if err != nil {
		return nil, err
	}
	return p.l7, nil
}
