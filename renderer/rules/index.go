package rules

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshcd/meshcd/ambient"
)

// key names a namespaced object.
type key struct{ namespace, name string }

// index is the input, looked up by what the rules ask for. It is built once
// per Check, so each rule costs O(1) per object.
type index struct {
	namespaces map[string]*unstructured.Unstructured
	services   map[key]*unstructured.Unstructured
	gateways   map[key]*unstructured.Unstructured
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

func newIndex(objs []*unstructured.Unstructured) *index {
	idx := &index{
		namespaces: map[string]*unstructured.Unstructured{}, services: map[key]*unstructured.Unstructured{},
		gateways: map[key]*unstructured.Unstructured{}, subsets: map[string]map[string]bool{},
		httpRoutes: map[key][]string{}, virtualServices: map[key][]*unstructured.Unstructured{},
	}
	for _, o := range objs {
		k := key{o.GetNamespace(), o.GetName()}
		switch o.GroupVersionKind().GroupKind() {
		case ambient.NamespaceGK:
			idx.namespaces[o.GetName()] = o
		case ambient.ServiceGK:
			idx.services[k] = o
		case ambient.GatewayGK:
			idx.gateways[k] = o
		case destinationRuleGK:
			host := idx.fqdn(str(o.Object, "spec", "host"), o.GetNamespace())
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
				if svc.namespace == o.GetNamespace() {
					idx.httpRoutes[svc] = append(idx.httpRoutes[svc], o.GetName())
				}
			}
		case virtualServiceGK:
			for _, h := range stringsOf(list(o.Object, "spec", "hosts")) {
				if svc, ok := serviceOfHost(h, o.GetNamespace()); ok {
					idx.virtualServices[svc] = append(idx.virtualServices[svc], o)
				}
			}
		}
	}
	return idx
}

// ambient reports whether namespace ns is known to be ambient, and whether
// it is in the input at all.
func (idx *index) ambient(ns string) (ambientNS, known bool) {
	n, ok := idx.namespaces[ns]
	if !ok {
		return false, false
	}
	return n.GetLabels()[ambient.LabelDataplaneMode] == "ambient", true
}

// waypointOf resolves the waypoint a Service uses: its own
// istio.io/use-waypoint label, else its namespace's. known is false when
// neither the Service nor its namespace is in the input.
func (idx *index) waypointOf(svc key) (wp key, bound, known bool) {
	if s, ok := idx.services[svc]; ok {
		if name, set := s.GetLabels()[ambient.LabelUseWaypoint]; set {
			if name == "none" {
				return key{}, false, true
			}
			return waypointRef(s.GetLabels(), svc.namespace, name), true, true
		}
	}
	n, ok := idx.namespaces[svc.namespace]
	if !ok {
		return key{}, false, false // the namespace may carry the label in the cluster
	}
	name := n.GetLabels()[ambient.LabelUseWaypoint]
	if name == "" || name == "none" {
		return key{}, false, true
	}
	return waypointRef(n.GetLabels(), svc.namespace, name), true, true
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
			ns = route.GetNamespace()
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

// podTemplatePaths are where each workload kind keeps its pod template.
var podTemplatePaths = map[schema.GroupKind][]string{
	{Group: "apps", Kind: "Deployment"}:  {"spec", "template"},
	{Group: "apps", Kind: "StatefulSet"}: {"spec", "template"},
	{Group: "apps", Kind: "DaemonSet"}:   {"spec", "template"},
	{Group: "apps", Kind: "ReplicaSet"}:  {"spec", "template"},
	{Group: "batch", Kind: "Job"}:        {"spec", "template"},
	{Group: "batch", Kind: "CronJob"}:    {"spec", "jobTemplate", "spec", "template"},
}

// template returns the pod template of a workload, the pod itself for a
// Pod, or nil.
func template(o *unstructured.Unstructured) map[string]any {
	gk := o.GroupVersionKind().GroupKind()
	if gk == (schema.GroupKind{Kind: "Pod"}) {
		return o.Object
	}
	if p, ok := podTemplatePaths[gk]; ok {
		if t := mapping(o.Object, p...); t != nil {
			return t
		}
		return map[string]any{}
	}
	return nil
}
