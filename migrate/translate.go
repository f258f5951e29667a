package migrate

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/access"
	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/meshspec"
)

// step is where, in its namespace's stages, a document enters or leaves
// the repository.
type step int

// The stages of one namespace, in the order that never opens a window.
const (
	stepWaypoint  step = iota + 1 // the waypoint Gateway, deployed and ready
	stepPolicies                  // policies and routes the waypoint enforces, beside the sidecars'
	stepAmbient                   // the spec documents: ambient label, use-waypoint, routes
	stepInjection                 // sidecar injection off; the workloads are restarted
	stepPrune                     // the sidecar-era selector policies pruned
	stepEnd                       // kept to the end
)

var stepNames = map[step]string{stepWaypoint: "waypoint", stepPolicies: "policies", stepAmbient: "ambient", stepInjection: "injection", stepPrune: "prune"}

// Document is one object written to the repository: a spec document or a
// plain manifest. It is in the repository from stage from of its namespace
// until, not including, stage until.
type Document struct {
	Namespace string
	Object    *unstructured.Unstructured
	// Why is the comment on a plain manifest: why the spec does not
	// express it. Empty for spec documents.
	Why         string
	from, until step
}

// Item is something that does not carry over as it was.
type Item struct {
	Object   string            `json:"object"`
	Position meshspec.Position `json:"position"`
	// Consequence is what it means in ambient, and what to do.
	Consequence string `json:"consequence"`
}

// translator turns the source into documents and items.
type translator struct {
	opts       Options
	src        *source
	namespaces map[string]*meshspec.MeshNamespace
	services   map[string]*meshspec.MeshService // by ns/name
	// waypoint holds, per namespace, what needs a waypoint there.
	waypoint map[string][]string
	docs     []*Document
	items    []Item
	// subsets are the DestinationRule subsets by ns/service, and the
	// DestinationRules by the same key.
	subsets map[string]map[string]map[string]string
	rules   map[string]*unstructured.Unstructured
	// routed are the ns/service keys whose routes moved into the spec;
	// kept are those whose VirtualService stays.
	routed, kept map[string]bool
	// deferred are the policies kept as plain YAML, placed once the
	// waypoints are known.
	deferred []*unstructured.Unstructured
	// ingress are the namespaces an ingress Gateway's routes send to.
	ingress map[string]bool
}

func (t *translator) item(o *unstructured.Unstructured, format string, args ...any) {
	t.items = append(t.items, Item{Object: refOf(o), Position: t.src.origin(o), Consequence: fmt.Sprintf(format, args...)})
}

func (t *translator) add(d *Document) { t.docs = append(t.docs, d) }

// keep writes o as plain YAML for the whole move.
func (t *translator) keep(o *unstructured.Unstructured, why string) {
	t.add(&Document{Namespace: o.GetNamespace(), Object: Clean(o), Why: why, from: stepWaypoint, until: stepEnd})
}

// old keeps a sidecar-era object until the stage that replaces it.
func (t *translator) old(o *unstructured.Unstructured, until step, why string) {
	t.add(&Document{Namespace: o.GetNamespace(), Object: Clean(o), Why: why, from: stepWaypoint, until: until})
}

func (t *translator) needsWaypoint(ns, why string) {
	t.waypoint[ns] = append(t.waypoint[ns], why)
}

func refOf(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetKind() + " " + o.GetName()
	}
	return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
}

// Clean copies o without what the server or kubectl wrote: status,
// managed fields, the object's identity and version, kubectl's
// last-applied copy.
func Clean(o *unstructured.Unstructured) *unstructured.Unstructured {
	c := o.DeepCopy()
	for _, f := range []string{"creationTimestamp", "resourceVersion", "uid", "generation", "managedFields", "selfLink"} {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	unstructured.RemoveNestedField(c.Object, "status")
	annotations := c.GetAnnotations()
	delete(annotations, "kubectl.kubernetes.io/last-applied-configuration")
	if len(annotations) == 0 {
		annotations = nil
	}
	c.SetAnnotations(annotations)
	return c
}

func (t *translator) translate() {
	for _, ns := range t.src.meshNamespaces(t.opts.RootNamespace) {
		t.namespaces[ns] = &meshspec.MeshNamespace{TypeMeta: metav1.TypeMeta{APIVersion: meshspec.APIVersion, Kind: meshspec.KindMeshNamespace},
			ObjectMeta: metav1.ObjectMeta{Name: ns}, Spec: meshspec.MeshNamespaceSpec{Dataplane: meshspec.DataplaneAmbient}}
	}
	byKind := map[string][]*unstructured.Unstructured{}
	for _, o := range t.src.objects {
		gk := o.GroupVersionKind().GroupKind()
		if isApp(gk) {
			continue
		}
		byKind[gk.String()] = append(byKind[gk.String()], o)
	}
	for _, o := range byKind[ambient.DestinationRuleGK.String()] {
		t.indexSubsets(o)
	}
	for _, o := range byKind[ambient.VirtualServiceGK.String()] {
		t.virtualService(o)
	}
	for _, o := range byKind[ambient.DestinationRuleGK.String()] {
		t.destinationRule(o)
	}
	for _, o := range byKind[ambient.AuthorizationPolicyGK.String()] {
		t.authorizationPolicy(o)
	}
	for _, o := range byKind[ambient.PeerAuthenticationGK.String()] {
		t.peerAuthentication(o)
	}
	for _, o := range byKind[ambient.RequestAuthenticationGK.String()] {
		t.requestAuthentication(o)
	}
	for _, kind := range slices.Sorted(maps.Keys(byKind)) {
		for _, o := range byKind[kind] {
			t.other(o)
		}
	}
	for _, ns := range slices.Sorted(maps.Keys(t.namespaces)) {
		if n := t.namespaces[ns]; len(t.waypoint[ns]) > 0 {
			n.Spec.Waypoint = &meshspec.Waypoint{Name: meshspec.DefaultWaypointName, For: meshspec.WaypointForService}
			n.Spec.UseWaypoint = meshspec.UseWaypointNamespace
			if n.Spec.DefaultDeny {
				// Behind the waypoint ztunnel admits the waypoint, so the
				// default deny must hold at the waypoint too.
				t.add(&Document{Namespace: ns, Object: newObject(ambient.IstioSecurityAPIVersion, "AuthorizationPolicy", ns, "default-deny-waypoint", map[string]any{
					"targetRefs": []any{map[string]any{"group": ambient.GatewayGK.Group, "kind": "Gateway", "name": n.Spec.Waypoint.Name}},
				}), from: stepPolicies, until: stepEnd, Why: "the default deny at the waypoint: the spec's defaultDeny holds at ztunnel, which admits the waypoint"})
			}
		}
	}
	for _, o := range t.deferred {
		t.placePolicy(o)
	}
	t.specDocuments()
}

// other handles the kinds the passes above do not translate.
func (t *translator) other(o *unstructured.Unstructured) {
	gk := o.GroupVersionKind().GroupKind()
	targeted := nested(o.Object, "spec", "targetRefs") != nil
	switch gk {
	case ambient.VirtualServiceGK, ambient.DestinationRuleGK, ambient.AuthorizationPolicyGK, ambient.PeerAuthenticationGK, ambient.RequestAuthenticationGK:
		return // translated above
	case ambient.SidecarGK:
		t.item(o, "not carried over: ambient has no sidecar, so its egress and ingress listeners and outboundTrafficPolicy no longer apply; "+
			"limit egress with a waypoint for the ServiceEntries instead, and drop this object once the namespace is ambient")
	case ambient.EnvoyFilterGK, ambient.WasmPluginGK:
		if targeted {
			t.keep(o, "extends Envoy with targetRefs; the spec has no field for it")
			t.needsWaypoint(o.GetNamespace(), refOf(o))
			return
		}
		t.item(o, "not carried over: it patches the sidecars' Envoy and has no waypoint target, so in ambient it applies to nothing; "+
			"rewrite it with targetRefs on the namespace's waypoint Gateway, and check its patches against a waypoint's configuration")
	case ambient.HTTPRouteGK:
		t.keep(o, "a Gateway API route the spec does not write; it works as written")
		if parentIsService(o) {
			t.needsWaypoint(o.GetNamespace(), refOf(o))
		}
	default:
		t.keep(o, o.GetKind()+" is not part of the mesh spec; it works in ambient as written")
	}
}

func parentIsService(o *unstructured.Unstructured) bool {
	parents, _, _ := unstructured.NestedSlice(o.Object, "spec", "parentRefs")
	for _, p := range parents {
		if pm, _ := p.(map[string]any); str(pm["kind"]) == "Service" {
			return true
		}
	}
	return false
}

// meshService returns the MeshService for a Service of the source,
// creating it on port.
func (t *translator) meshService(svc *unstructured.Unstructured, port int32) *meshspec.MeshService {
	key := svc.GetNamespace() + "/" + svc.GetName()
	if ms := t.services[key]; ms != nil {
		return ms
	}
	sel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
	p, target := servicePort(svc, port)
	ms := &meshspec.MeshService{TypeMeta: metav1.TypeMeta{APIVersion: meshspec.APIVersion, Kind: meshspec.KindMeshService},
		ObjectMeta: metav1.ObjectMeta{Name: svc.GetName(), Namespace: svc.GetNamespace()},
		Spec:       meshspec.MeshServiceSpec{Port: p, Selector: sel}}
	if target != p {
		ms.Spec.TargetPort = target
	}
	t.services[key] = ms
	return ms
}

// servicePort picks the Service port routes attach to: want when the
// Service has it, else the first port named http*, else the first; and its
// numeric target port (the port itself when it is named).
func servicePort(svc *unstructured.Unstructured, want int32) (port, target int32) {
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	var first, http map[string]any
	for _, p := range ports {
		pm, _ := p.(map[string]any)
		n, _ := integer(pm["port"])
		if n == want && want != 0 {
			first, http = pm, pm
			break
		}
		if first == nil {
			first = pm
		}
		if http == nil && strings.HasPrefix(str(pm["name"]), "http") {
			http = pm
		}
	}
	if http == nil {
		http = first
	}
	port, _ = integer(http["port"])
	target = port
	if n, ok := integer(http["targetPort"]); ok {
		target = n
	} else if s, ok := http["targetPort"].(string); ok {
		if n, err := strconv.Atoi(s); err == nil {
			target = int32(n)
		}
	}
	return port, target
}

// specDocuments adds the MeshNamespaces and MeshServices, from the
// ambient stage on.
func (t *translator) specDocuments() {
	for _, ns := range slices.Sorted(maps.Keys(t.namespaces)) {
		t.add(&Document{Namespace: ns, Object: typed(t.namespaces[ns]), from: stepAmbient, until: stepEnd})
		// The injection label is stated beside the ambient label, so that
		// what reads the repository sees that the sidecars still win; it
		// goes off in its own stage, and the workloads restarted after it
		// come back without sidecars.
		ingress := t.ingress[ns] && t.namespaces[ns].Spec.Waypoint != nil
		why := ""
		if ingress {
			// ENABLE_INGRESS_WAYPOINT_ROUTING (pilot/pkg/features/ambient.go):
			// without the label the ingress gateway calls the pods straight,
			// past the waypoint's policies.
			why = "; istio.io/ingress-use-waypoint sends the ingress gateway's calls through the waypoint, whose policies the sidecars enforced on them"
		}
		t.add(&Document{Namespace: ns, Object: injection(ns, "enabled", ingress), from: stepAmbient, until: stepInjection,
			Why: "keeps sidecar injection on beside the ambient label: the pods keep their sidecars, which win over ambient, until the injection stage" + why})
		t.add(&Document{Namespace: ns, Object: injection(ns, "disabled", ingress), from: stepInjection, until: stepEnd,
			Why: "turns sidecar injection off: restart the namespace's workloads after this stage so they come back without sidecars, in ambient" + why})
	}
	for _, key := range slices.Sorted(maps.Keys(t.services)) {
		ms := t.services[key]
		t.add(&Document{Namespace: ms.Namespace, Object: typed(ms), from: stepAmbient, until: stepEnd})
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func integer(v any) (int32, bool) {
	switch n := v.(type) {
	case int64:
		return int32(n), true
	case int:
		return int32(n), true
	case float64:
		return int32(n), n == float64(int32(n))
	}
	return 0, false
}

// istioDuration reads a protobuf duration such as "2s" or "0.5s".
func istioDuration(v any) (*metav1.Duration, bool) {
	s, ok := v.(string)
	if !ok {
		return nil, false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return nil, false
	}
	return &metav1.Duration{Duration: d}, true
}

// httpAttributes reports whether any rule of policy o uses an attribute
// ztunnel cannot enforce.
func httpAttributes(o *unstructured.Unstructured) ([][]string, bool, error) {
	l7, err := access.HTTPAttributes(o)
	any := false
	for _, r := range l7 {
		any = any || len(r) > 0
	}
	return l7, any, err
}

// injection is a Namespace carrying the injection label and, for
// ingress, istio.io/ingress-use-waypoint.
func injection(ns, value string, ingress bool) *unstructured.Unstructured {
	labels := map[string]any{ambient.LabelInjection: value}
	if ingress {
		labels[labelIngressUseWaypoint] = "true"
	}
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": ns, "labels": labels}}}
}

// labelIngressUseWaypoint sends an ingress gateway's calls to a Service
// through its waypoint.
const labelIngressUseWaypoint = "istio.io/ingress-use-waypoint"
