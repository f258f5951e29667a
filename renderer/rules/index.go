package rules

import (
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/ambient"
)

// key names a namespaced object.
type key struct{ namespace, name string }

// String is "namespace/name".
func (k key) String() string { return k.namespace + "/" + k.name }

// index is the input, looked up by what the rules ask for. It is built once
// per Check, so each rule costs O(1) per object.
type index struct {
	namespaces map[string]*unstructured.Unstructured
	// live holds the namespaces read from the cluster (Options.Context).
	live     map[string]bool
	services map[key]*unstructured.Unstructured
	gateways map[key]*unstructured.Unstructured
	// subsets holds the subsets DestinationRules define, by host FQDN.
	subsets map[string]map[string]bool
	// httpRoutes and virtualServices list the routes of each Service.
	httpRoutes      map[key][]string
	virtualServices map[key][]*unstructured.Unstructured
}

var (
	destinationRuleGK = ambient.DestinationRuleGK
	httpRouteGK       = ambient.HTTPRouteGK
	virtualServiceGK  = ambient.VirtualServiceGK
)

func newIndex(context, objs []*unstructured.Unstructured) *index {
	idx := &index{
		namespaces: map[string]*unstructured.Unstructured{}, live: map[string]bool{}, services: map[key]*unstructured.Unstructured{},
		gateways: map[key]*unstructured.Unstructured{}, subsets: map[string]map[string]bool{},
		httpRoutes: map[key][]string{}, virtualServices: map[key][]*unstructured.Unstructured{},
	}
	for _, o := range context {
		if o.GroupVersionKind().GroupKind() == ambient.NamespaceGK {
			idx.live[o.GetName()] = true
		}
	}
	for _, o := range withContext(context, objs) {
		k := key{namespaceOf(o), o.GetName()}
		switch o.GroupVersionKind().GroupKind() {
		case ambient.NamespaceGK:
			idx.namespaces[o.GetName()] = o
		case ambient.ServiceGK:
			idx.services[k] = o
		case ambient.GatewayGK:
			idx.gateways[k] = o
		case destinationRuleGK:
			host := idx.fqdn(str(o.Object, "spec", "host"), k.namespace)
			if idx.subsets[host] == nil {
				idx.subsets[host] = map[string]bool{}
			}
			for _, s := range list(o.Object, "spec", "subsets") {
				if m, ok := s.(map[string]any); ok {
					if name, ok := m["name"].(string); ok {
						idx.subsets[host][name] = true
					}
				}
			}
		case httpRouteGK:
			for _, svc := range routeServices(o) {
				if svc.namespace == k.namespace {
					idx.httpRoutes[svc] = append(idx.httpRoutes[svc], k.String())
				}
			}
		case virtualServiceGK:
			for _, h := range stringsOf(list(o.Object, "spec", "hosts")) {
				if svc, ok := serviceOfHost(h, k.namespace); ok {
					idx.virtualServices[svc] = append(idx.virtualServices[svc], o)
				}
			}
		}
	}
	return idx
}

// mode is the data plane of the pods of namespace ns that state nothing
// themselves (NamespaceMode), or ModeUnknown when ns is not in the input.
func (idx *index) mode(ns string) Mode {
	n, ok := idx.namespaces[ns]
	if !ok {
		return ModeUnknown
	}
	return NamespaceMode(ns, n.GetLabels())
}

// complete reports whether every object of namespace ns is in the input, so
// that a reference the input cannot resolve is known to be broken: the
// cluster was read (Options.Context) and holds ns, or the input holds the
// Namespace itself and does not only label it (meshcd's partial Namespaces).
func (idx *index) complete(ns string) bool {
	if idx.live[ns] {
		return true
	}
	n, ok := idx.namespaces[ns]
	return ok && n.GetAnnotations()[ambient.AnnotationOwnership] != ambient.OwnershipPartial
}

// ambientNamespaces lists the namespaces of the input whose pods are ambient.
func (idx *index) ambientNamespaces() []string {
	var out []string
	for ns := range idx.namespaces {
		if idx.mode(ns) == ModeAmbient {
			out = append(out, ns)
		}
	}
	sort.Strings(out)
	return out
}

// binding is what the input tells of the waypoint a Service uses.
type binding int

const (
	// unresolved: the Service and its namespace's labels are not both known.
	unresolved binding = iota
	unbound
	bound
)

// waypointOf resolves the waypoint a Service uses: its own
// istio.io/use-waypoint label, else its namespace's. It is unresolved when
// the namespace is not in the input, and when the Service is not in the
// input, its namespace is not complete and the namespace names no waypoint:
// the Service may carry the label in the cluster.
func (idx *index) waypointOf(svc key) (key, binding) {
	s, found := idx.services[svc]
	if found {
		if name, set := s.GetLabels()[ambient.LabelUseWaypoint]; set {
			if name == "none" {
				return key{}, unbound
			}
			return waypointRef(s.GetLabels(), svc.namespace, name), bound
		}
	}
	n, ok := idx.namespaces[svc.namespace]
	if !ok {
		return key{}, unresolved
	}
	name := n.GetLabels()[ambient.LabelUseWaypoint]
	if name != "" && name != "none" {
		return waypointRef(n.GetLabels(), svc.namespace, name), bound
	}
	if !found && !idx.complete(svc.namespace) {
		return key{}, unresolved
	}
	return key{}, unbound
}

// waypointRef reads the waypoint a set of labels names, honouring
// istio.io/use-waypoint-namespace.
func waypointRef(labels map[string]string, ns, name string) key {
	if other := labels[ambient.LabelUseWaypointNamespace]; other != "" {
		ns = other
	}
	return key{ns, name}
}

// waypointFor is the traffic a waypoint Gateway accepts.
func waypointFor(gw *unstructured.Unstructured) string {
	if f := gw.GetLabels()[ambient.LabelWaypointFor]; f != "" {
		return f
	}
	return ambient.WaypointDefaultFor
}

// routeServices lists the Service parents of an HTTPRoute.
func routeServices(route *unstructured.Unstructured) []key {
	var out []key
	for _, p := range list(route.Object, "spec", "parentRefs") {
		m, ok := p.(map[string]any)
		if !ok {
			continue
		}
		if !isServiceRef(m) {
			continue
		}
		ns, _ := m["namespace"].(string)
		if ns == "" {
			ns = namespaceOf(route)
		}
		if name, _ := m["name"].(string); name != "" {
			out = append(out, key{ns, name})
		}
	}
	return out
}

// isServiceRef reports whether a parentRef or backendRef names a core Service.
// A parentRef's kind defaults to Gateway, a backendRef's to Service; callers
// pass refs whose kind is set when it matters.
func isServiceRef(m map[string]any) bool {
	kind, _ := m["kind"].(string)
	group, _ := m["group"].(string)
	return kind == "Service" && (group == "" || group == "core")
}

// serviceOfHost maps a VirtualService host to the Service it names, in the
// short, namespaced or fully qualified form.
func serviceOfHost(host, ns string) (key, bool) {
	if host == "" || strings.Contains(host, "*") {
		return key{}, false
	}
	parts := strings.Split(strings.TrimSuffix(host, "."), ".")
	switch {
	case len(parts) == 1:
		return key{ns, parts[0]}, true
	case len(parts) == 2, len(parts) == 3 && parts[2] == "svc", len(parts) == 5 && parts[2] == "svc" && parts[3] == "cluster" && parts[4] == "local":
		return key{parts[1], parts[0]}, true
	}
	return key{}, false
}

// fqdn expands a host to its fully qualified Service name when it names one.
func (idx *index) fqdn(host, ns string) string {
	if svc, ok := serviceOfHost(host, ns); ok {
		return svc.name + "." + svc.namespace + ".svc.cluster.local"
	}
	return host
}

// template returns the pod template of a workload, the pod itself for a
// Pod, or nil.
func template(o *unstructured.Unstructured) map[string]any {
	t, _ := ambient.PodTemplate(o)
	return t
}

// describe names an object as "Kind namespace/name", with the namespace
// kubectl would place it in, or "Kind name" for a Namespace.
func describe(o *unstructured.Unstructured) string {
	if ns := namespaceOf(o); ns != "" {
		return o.GetKind() + " " + ns + "/" + o.GetName()
	}
	return o.GetKind() + " " + o.GetName()
}

// namespaceOf is the namespace of a namespaced object as kubectl places it:
// "default" when the manifest names none.
func namespaceOf(o *unstructured.Unstructured) string {
	if ns := o.GetNamespace(); ns != "" || o.GroupVersionKind().GroupKind() == ambient.NamespaceGK {
		return ns
	}
	return "default"
}
