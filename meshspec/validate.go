package meshspec

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// problems collects the field errors of one document.
type problems struct {
	d      *document
	object string
	errs   []error
}

func (p *problems) add(path, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{Position: p.d.at(path), Object: p.object, Field: path, Message: fmt.Sprintf(format, args...)})
}

func (p *problems) err() error {
	sortErrors(p.errs)
	return errors.Join(p.errs...)
}

func validateMeta(name, namespace string, namespaced bool, kind string, d *document) error {
	p := &problems{d: d, object: kind + " " + name}
	if name == "" {
		p.add("metadata.name", "a name is required")
	} else if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		p.add("metadata.name", "%q is not a valid name: %s", name, strings.Join(errs, "; "))
	}
	switch {
	case namespaced && namespace == "":
		p.add("metadata", "a namespace is required: set metadata.namespace to the Service's namespace")
	case namespaced:
		if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
			p.add("metadata.namespace", "%q is not a valid namespace: %s", namespace, strings.Join(errs, "; "))
		}
	case namespace != "":
		p.add("metadata.namespace", "%s is not namespaced; remove metadata.namespace", kind)
	}
	return p.err()
}

func validateNamespace(o *MeshNamespace, d *document) error {
	p := &problems{d: d, object: KindMeshNamespace + " " + o.Name}
	s := &o.Spec
	oneOf(p, "spec.dataplane", string(s.Dataplane), "ambient", "none")
	oneOf(p, "spec.useWaypoint", string(s.UseWaypoint), "namespace", "services", "none")
	oneOf(p, "spec.mtls", string(s.MTLS), "STRICT", "PERMISSIVE")
	if w := s.Waypoint; w != nil {
		if w.Name != "" {
			dnsLabel(p, "spec.waypoint.name", w.Name)
		}
		oneOf(p, "spec.waypoint.for", string(w.For), "service", "workload", "all")
		if w.Revision != "" {
			dnsLabel(p, "spec.waypoint.revision", w.Revision)
		}
	}
	if s.Dataplane == DataplaneNone && s.Waypoint != nil {
		p.add("spec.waypoint", "a waypoint serves ambient workloads only; remove it or set dataplane: ambient")
	}
	if s.WaypointOnly && s.Waypoint == nil {
		p.add("spec.waypointOnly", "the waypoint-only guard admits only the waypoint's traffic and needs a waypoint; add spec.waypoint")
	}
	if s.Waypoint == nil && (s.UseWaypoint == UseWaypointNamespace || s.UseWaypoint == UseWaypointServices) {
		p.add("spec.useWaypoint", "useWaypoint %q needs a waypoint; add spec.waypoint", s.UseWaypoint)
	}
	if w := s.Waypoint; w != nil && !w.For.ServesServices() && w.For != "" && (s.UseWaypoint == UseWaypointNamespace || s.UseWaypoint == UseWaypointServices) {
		p.add("spec.useWaypoint", "a waypoint for %q does not accept traffic addressed to Services; use for: service or all, or useWaypoint: none", w.For)
	}
	return p.err()
}

func validateService(o *MeshService, d *document) error {
	p := &problems{d: d, object: KindMeshService + " " + o.Namespace + "/" + o.Name}
	s := &o.Spec
	port(p, "spec.port", s.Port, true)
	port(p, "spec.targetPort", s.TargetPort, false)
	if len(s.Selector) == 0 {
		p.add("spec.selector", "a selector is required: the labels of the Service's pods")
	}
	labels(p, "spec.selector", s.Selector)
	for _, v := range sortedKeys(s.Versions) {
		path := "spec.versions." + v
		if len(o.Name)+1+len(v) > validation.DNS1035LabelMaxLength {
			p.add(path, "the Service %s-%s would be longer than 63 characters; shorten the version name", o.Name, v)
		} else if errs := validation.IsDNS1035Label(o.Name + "-" + v); len(errs) > 0 {
			p.add(path, "version %q does not make a valid Service name %s-%s: %s", v, o.Name, v, strings.Join(errs, "; "))
		}
		if len(s.Versions[v]) == 0 {
			p.add(path, "a version needs the pod labels that set it apart, such as {version: %s}", v)
		}
		labels(p, path, s.Versions[v])
	}
	for i, r := range s.Routes {
		path := fmt.Sprintf("spec.routes[%d]", i)
		if len(r.Backends) == 0 {
			p.add(path+".backends", "a route needs at least one backend version")
		}
		var sum int64
		for _, v := range sortedKeys(r.Backends) {
			if _, ok := s.Versions[v]; !ok {
				p.add(path+".backends."+v, "version %q is not declared in spec.versions (declared: %s)", v, strings.Join(sortedKeys(s.Versions), ", "))
			}
			if r.Backends[v] < 0 {
				p.add(path+".backends."+v, "a weight cannot be negative")
			}
			sum += int64(r.Backends[v])
		}
		if len(r.Backends) > 0 && sum == 0 {
			p.add(path+".backends", "the weights sum to zero, so the route sends traffic nowhere; give one backend a weight")
		}
		if m := r.Match; m != nil {
			if m.PathPrefix != "" && !strings.HasPrefix(m.PathPrefix, "/") {
				p.add(path+".match.pathPrefix", "a path prefix starts with /")
			}
			for _, h := range sortedKeys(m.Headers) {
				if errs := validation.IsHTTPHeaderName(h); len(errs) > 0 {
					p.add(path+".match.headers."+h, "%q is not an HTTP header name", h)
				}
			}
			if m.Method != "" {
				method(p, path+".match.method", m.Method)
			}
		}
		if i < len(s.Routes)-1 && (r.Match == nil || (len(r.Match.Headers) == 0 && r.Match.PathPrefix == "" && r.Match.Method == "")) {
			p.add(path+".match", "a route without a match takes every request, so the routes after it never match; move it last")
		}
	}
	if len(s.Routes) > 0 && len(s.Versions) == 0 {
		p.add("spec.routes", "routes send traffic to versions; declare them in spec.versions")
	}
	if r := s.Resilience; r != nil && r.Retries != nil {
		if r.Retries.Attempts < 1 {
			p.add("spec.resilience.retries.attempts", "attempts must be at least 1")
		}
		for i, on := range r.Retries.On {
			if !retryCondition(on) {
				p.add(fmt.Sprintf("spec.resilience.retries.on[%d]", i), "%q is not a retry condition; use 5xx, gateway-error, reset, connect-failure, refused-stream, unavailable, cancelled, retriable-4xx or a status code", on)
			}
		}
	}
	if f := s.Faults; f != nil {
		if f.Delay != nil {
			percent(p, "spec.faults.delay.percent", f.Delay.Percent)
			if f.Delay.Fixed.Duration <= 0 {
				p.add("spec.faults.delay.fixed", "a delay needs a positive duration such as 3s")
			}
		}
		if f.Abort != nil {
			percent(p, "spec.faults.abort.percent", f.Abort.Percent)
			if f.Abort.Status < 200 || f.Abort.Status > 599 {
				p.add("spec.faults.abort.status", "%d is not an HTTP status code (200-599)", f.Abort.Status)
			}
		}
		if f.Delay == nil && f.Abort == nil {
			p.add("spec.faults", "set delay, abort or both, or remove faults")
		}
		if len(s.Routes) > 0 || s.Resilience != nil {
			p.add("spec.faults", "faults cannot be combined with routes or resilience on one Service: ambient honours one routing API per host (AMB032), and a fault must not share a rule with retries or a timeout (AMB033); inject faults on a Service without routes")
		}
	}
	if c := s.CircuitBreaker; c != nil {
		if c.MaxEjectionPercent < 0 || c.MaxEjectionPercent > 100 {
			p.add("spec.circuitBreaker.maxEjectionPercent", "must be between 0 and 100")
		}
		for path, v := range map[string]int32{"maxConnections": c.MaxConnections, "maxPendingRequests": c.MaxPendingRequests, "consecutive5xxErrors": c.Consecutive5xxErrors} {
			if v < 0 {
				p.add("spec.circuitBreaker."+path, "cannot be negative")
			}
		}
	}
	for i, r := range s.Access {
		path := fmt.Sprintf("spec.access[%d]", i)
		if len(r.From.ServiceAccounts)+len(r.From.Namespaces)+len(r.From.IPBlocks) == 0 {
			p.add(path+".from", "name the callers: serviceAccounts, namespaces or ipBlocks")
		}
		for j, sa := range r.From.ServiceAccounts {
			ns, name, ok := strings.Cut(sa, "/")
			if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
				p.add(fmt.Sprintf("%s.from.serviceAccounts[%d]", path, j), "%q is not namespace/name", sa)
			}
		}
		for j, ns := range r.From.Namespaces {
			dnsLabel(p, fmt.Sprintf("%s.from.namespaces[%d]", path, j), ns)
		}
		for j, b := range r.From.IPBlocks {
			if _, err := netip.ParsePrefix(b); err != nil {
				if _, err := netip.ParseAddr(b); err != nil {
					p.add(fmt.Sprintf("%s.from.ipBlocks[%d]", path, j), "%q is not an IP address or CIDR", b)
				}
			}
		}
		for j, pt := range r.Ports {
			port(p, fmt.Sprintf("%s.ports[%d]", path, j), pt, true)
		}
		for j, m := range r.Methods {
			method(p, fmt.Sprintf("%s.methods[%d]", path, j), m)
		}
		for j, pa := range r.Paths {
			if !strings.HasPrefix(pa, "/") && !strings.HasPrefix(pa, "*") {
				p.add(fmt.Sprintf("%s.paths[%d]", path, j), "a path starts with / (or * for a suffix match)")
			}
		}
	}
	if j := s.JWT; j != nil {
		if j.Issuer == "" {
			p.add("spec.jwt.issuer", "an issuer is required")
		}
		if !strings.HasPrefix(j.JWKSURI, "https://") && !strings.HasPrefix(j.JWKSURI, "http://") {
			p.add("spec.jwt.jwksUri", "want the http(s) URL of the issuer's keys")
		}
	}
	return p.err()
}

func validateRollout(o *DataplaneRollout, d *document) error {
	p := &problems{d: d, object: KindDataplaneRollout + " " + o.Name}
	s := &o.Spec
	if s.Bundle == "" {
		p.add("spec.bundle", "a bundle is required: the Istio version to roll out, as `meshcd bundle list` prints it")
	}
	names := map[string]bool{}
	if w := s.Waypoints; w != nil {
		if len(w.Stages) == 0 {
			p.add("spec.waypoints.stages", "list at least one stage, or remove waypoints")
		}
		rest := -1
		for i, st := range w.Stages {
			path := fmt.Sprintf("spec.waypoints.stages[%d]", i)
			if st.Name == "" {
				p.add(path+".name", "a stage needs a name")
			} else if names[st.Name] {
				p.add(path+".name", "stage %q is named twice", st.Name)
			}
			names[st.Name] = true
			if len(st.Namespaces) == 0 && st.Selector == nil {
				p.add(path, "a stage names its namespaces or a selector; an empty stage rolls nothing out")
			}
			if len(st.Namespaces) > 0 && st.Selector != nil {
				p.add(path, "set namespaces or selector, not both")
			}
			for j, ns := range st.Namespaces {
				if ns == "*" {
					if rest >= 0 {
						p.add(fmt.Sprintf("%s.namespaces[%d]", path, j), `"*" (the rest) may appear in one stage only`)
					}
					rest = i
					continue
				}
				dnsLabel(p, fmt.Sprintf("%s.namespaces[%d]", path, j), ns)
			}
			oneOf(p, path+".approval", string(st.Approval), "auto", "manual")
			oneOf(p, path+".strategy", string(st.Strategy), "replace", "canary")
			if len(st.Steps) > 0 && st.Strategy != StrategyCanary {
				p.add(path+".steps", "steps are the weights of a canary; set strategy: canary or remove them")
			}
			for j, w := range st.Steps {
				switch {
				case w < 1 || w > 100:
					p.add(fmt.Sprintf("%s.steps[%d]", path, j), "a weight is a percentage from 1 to 100, got %d", w)
				case j > 0 && w <= st.Steps[j-1]:
					p.add(fmt.Sprintf("%s.steps[%d]", path, j), "weights must rise: %d follows %d", w, st.Steps[j-1])
				}
			}
			if n := len(st.Steps); n > 0 && st.Steps[n-1] != 100 {
				p.add(fmt.Sprintf("%s.steps[%d]", path, n-1), "the last weight must be 100, so that the canary carries all traffic before it is promoted")
			}
			if st.Gates != nil && st.Gates.Prometheus != nil {
				prometheusGate(p, path+".gates.prometheus", st.Gates.Prometheus)
			}
		}
		if rest >= 0 && rest != len(w.Stages)-1 {
			p.add(fmt.Sprintf("spec.waypoints.stages[%d]", rest), `the stage with "*" (the rest) must be the last one`)
		}
	}
	if z := s.Ztunnel; z != nil {
		oneOf(p, "spec.ztunnel.strategy", string(z.Strategy), "node-by-node", "rolling")
		if z.MaxUnavailable < 0 {
			p.add("spec.ztunnel.maxUnavailable", "cannot be negative")
		}
	}
	if s.Promote != "" && !names[s.Promote] {
		p.add("spec.promote", "no stage is named %q", s.Promote)
	}
	return p.err()
}

func oneOf(p *problems, path, v string, allowed ...string) {
	if v == "" {
		return
	}
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	p.add(path, "%q is not one of %s", v, strings.Join(allowed, ", "))
}

func dnsLabel(p *problems, path, v string) {
	if errs := validation.IsDNS1123Label(v); len(errs) > 0 {
		p.add(path, "%q is not a valid name: %s", v, strings.Join(errs, "; "))
	}
}

func port(p *problems, path string, v int32, required bool) {
	if v == 0 && !required {
		return
	}
	if v < 1 || v > 65535 {
		p.add(path, "%d is not a port (1-65535)", v)
	}
}

func percent(p *problems, path string, v float64) {
	if v < 0 || v > 100 {
		p.add(path, "%g is not a percentage (0-100)", v)
	}
}

func labels(p *problems, path string, m map[string]string) {
	for _, k := range sortedKeys(m) {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			p.add(path+"."+k, "%q is not a label key: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(m[k]); len(errs) > 0 {
			p.add(path+"."+k, "%q is not a label value: %s", m[k], strings.Join(errs, "; "))
		}
	}
}

var httpMethods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true, "CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true}

func method(p *problems, path, m string) {
	if !httpMethods[m] {
		p.add(path, "%q is not an HTTP method; write it in capitals, such as GET", m)
	}
}

var retryConditions = map[string]bool{"5xx": true, "gateway-error": true, "reset": true, "connect-failure": true, "refused-stream": true, "unavailable": true, "cancelled": true, "retriable-4xx": true, "deadline-exceeded": true, "resource-exhausted": true, "internal": true, "retriable-status-codes": true}

func retryCondition(on string) bool {
	if retryConditions[on] {
		return true
	}
	code, err := strconv.Atoi(on)
	return err == nil && code >= 100 && code <= 599
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func prometheusGate(p *problems, path string, g *PrometheusGate) {
	if u, err := url.Parse(g.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.add(path+".url", "want the Prometheus server's http(s) URL, such as http://prometheus.istio-system:9090, got %q", g.URL)
	}
	if strings.TrimSpace(g.Query) == "" {
		p.add(path+".query", "a PromQL query is required")
	}
	if limit, err := strconv.ParseFloat(g.Max, 64); err != nil {
		p.add(path+".max", "want a decimal number such as \"0.01\", got %q", g.Max)
	} else if math.IsNaN(limit) || math.IsInf(limit, 0) {
		p.add(path+".max", "must be a finite number such as \"0.01\", got %q", g.Max)
	}
}
