package access

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshcd/meshcd/ambient"
)

// Options tune how the model reads the objects.
type Options struct {
	// RootNamespace is the mesh root namespace: policies there are mesh-wide.
	RootNamespace string
	// TrustDomain spells the principals of identities.
	TrustDomain string
	// Sidecars evaluates a Service whose workloads run with a sidecar at
	// the sidecar, with sidecar semantics (see sidecar.go). Without it such
	// a Service is undecided.
	Sidecars bool
}

// DefaultOptions returns the options of a default Istio install.
func DefaultOptions() Options {
	return Options{RootNamespace: "istio-system", TrustDomain: "cluster.local"}
}

// Identity is a workload identity: a service account in a namespace.
type Identity struct {
	Namespace      string `json:"namespace"`
	ServiceAccount string `json:"serviceAccount"`
}

func (i Identity) String() string { return i.Namespace + "/" + i.ServiceAccount }

// ParseIdentity reads NS/SA.
func ParseIdentity(s string) (Identity, error) {
	ns, sa, ok := strings.Cut(s, "/")
	if !ok || ns == "" || sa == "" || strings.Contains(sa, "/") {
		return Identity{}, fmt.Errorf("identity %q is not NAMESPACE/SERVICEACCOUNT", s)
	}
	return Identity{Namespace: ns, ServiceAccount: sa}, nil
}

// Destination is a Service port.
type Destination struct {
	Namespace string `json:"namespace"`
	Service   string `json:"service"`
	Port      int32  `json:"port"`
}

func (d Destination) String() string {
	return d.Namespace + "/" + d.Service + ":" + strconv.Itoa(int(d.Port))
}

// meshState says whether workloads of a namespace send mTLS with an identity.
type meshState uint8

const (
	stateUnknown   meshState = iota // the namespace is not in the input
	stateMeshed                     // ambient or sidecar: calls carry an identity
	statePlaintext                  // outside the mesh
)

// dataplane is how a destination namespace is enrolled.
type dataplane uint8

const (
	dataplaneUnknown dataplane = iota
	dataplaneAmbient
	dataplaneSidecar
	dataplaneNone
)

type namespace struct {
	labels map[string]string
}

type servicePort struct {
	name        string
	port        int32
	targetPort  int32  // 0 when named
	targetName  string // a named targetPort
	appProtocol string
}

type service struct {
	namespace, name string
	labels          map[string]string
	selector        map[string]string
	ports           []servicePort
}

// workload is a pod template: what ztunnel sees of a destination.
type workload struct {
	kind, namespace, name string
	labels                map[string]string
	serviceAccount        string
	ports                 map[string]int32 // container ports by name
}

func (w *workload) ref() string { return w.kind + " " + w.namespace + "/" + w.name }

type gateway struct {
	namespace, name, class, waypointFor, serviceAccount string
}

// Model is the access-relevant part of a set of rendered objects.
type Model struct {
	opts       Options
	namespaces map[string]*namespace
	services   map[string]*service // by ns/name
	workloads  map[string][]*workload
	gateways   map[string]*gateway // by ns/name
	policies   []*policy
	peerAuths  []*peerAuthentication
	identities []Identity

	// policiesIn and waypointIDs index the above for the matrix.
	policiesIn  map[string][]*policy
	waypointIDs map[Identity]*gateway
}

// Build reads the objects a render returned. It fails only on a policy it
// cannot decode, naming it.
func Build(objs []*unstructured.Unstructured, opts Options) (*Model, error) {
	m := &Model{
		opts: opts, namespaces: map[string]*namespace{}, services: map[string]*service{},
		workloads: map[string][]*workload{}, gateways: map[string]*gateway{},
	}
	named := identitySet{}
	for _, o := range objs {
		gk := o.GroupVersionKind().GroupKind()
		switch {
		case gk == ambient.NamespaceGK:
			m.namespaces[o.GetName()] = &namespace{labels: o.GetLabels()}
		case gk == ambient.ServiceGK:
			m.services[o.GetNamespace()+"/"+o.GetName()] = readService(o)
		case gk == schema.GroupKind{Kind: "ServiceAccount"}:
			named.add(Identity{o.GetNamespace(), o.GetName()})
		case gk == ambient.GatewayGK:
			gw := readGateway(o)
			m.gateways[o.GetNamespace()+"/"+o.GetName()] = gw
			if gw.class == ambient.WaypointClass {
				named.add(Identity{gw.namespace, gw.serviceAccount})
			}
		case gk == ambient.AuthorizationPolicyGK:
			p, err := readPolicy(o)
			if err != nil {
				return nil, err
			}
			m.policies = append(m.policies, p)
		case gk == ambient.PeerAuthenticationGK:
			pa, err := readPeerAuthentication(o)
			if err != nil {
				return nil, err
			}
			m.peerAuths = append(m.peerAuths, pa)
		default:
			if tmpl, ok := ambient.PodTemplate(o); ok {
				w := readWorkload(o, tmpl)
				m.workloads[w.namespace] = append(m.workloads[w.namespace], w)
				named.add(Identity{w.namespace, w.serviceAccount})
			}
		}
	}
	namespaces := map[string]bool{}
	for id := range named {
		namespaces[id.Namespace] = true
	}
	for _, p := range m.policies {
		ids, nss := p.namedIdentities()
		for _, id := range ids {
			named.add(id)
			namespaces[id.Namespace] = true
		}
		for _, ns := range nss {
			if !namespaces[ns] {
				named.add(Identity{ns, "default"})
				namespaces[ns] = true
			}
		}
	}
	m.identities = named.sorted()
	m.policiesIn, m.waypointIDs = map[string][]*policy{}, map[Identity]*gateway{}
	for _, p := range m.policies {
		m.policiesIn[p.namespace] = append(m.policiesIn[p.namespace], p)
	}
	for _, gw := range m.gateways {
		if gw.class == ambient.WaypointClass {
			m.waypointIDs[Identity{gw.namespace, gw.serviceAccount}] = gw
		}
	}
	return m, nil
}

// Identities lists every identity the input names: service accounts,
// those the pod templates run as, the waypoints', and those policies name
// (a namespace named without a known account stands as NS/default).
func (m *Model) Identities() []Identity { return m.identities }

// Destinations lists every Service port, sorted.
func (m *Model) Destinations() []Destination {
	var out []Destination
	for _, s := range m.services {
		for _, p := range s.ports {
			out = append(out, Destination{s.namespace, s.name, p.port})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// ResolveDestination completes NS/SERVICE[:PORT]: without a port the
// Service must have exactly one.
func (m *Model) ResolveDestination(s string) (Destination, error) {
	ref, portText, hasPort := strings.Cut(s, ":")
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || name == "" {
		return Destination{}, fmt.Errorf("destination %q is not NAMESPACE/SERVICE[:PORT]", s)
	}
	svc := m.services[ref]
	if svc == nil {
		return Destination{}, fmt.Errorf("Service %s is not in the input: name a Service the spec renders", ref)
	}
	var ports []string
	for _, p := range svc.ports {
		ports = append(ports, strconv.Itoa(int(p.port)))
	}
	if !hasPort {
		if len(svc.ports) != 1 {
			return Destination{}, fmt.Errorf("Service %s has ports %s: name one as %s:PORT", ref, strings.Join(ports, ", "), ref)
		}
		return Destination{ns, name, svc.ports[0].port}, nil
	}
	port, err := strconv.ParseInt(portText, 10, 32)
	if err == nil && svc.port(int32(port)) != nil {
		return Destination{ns, name, int32(port)}, nil
	}
	return Destination{}, fmt.Errorf("Service %s has no port %q: its ports are %s", ref, portText, strings.Join(ports, ", "))
}

func (s *service) port(p int32) *servicePort {
	for i := range s.ports {
		if s.ports[i].port == p {
			return &s.ports[i]
		}
	}
	return nil
}

// callerState says whether calls from identity id carry it.
func (m *Model) callerState(id Identity) meshState {
	if m.waypointIDs[id] != nil {
		return stateMeshed
	}
	ns := m.namespaces[id.Namespace]
	if ns == nil {
		return stateUnknown
	}
	switch m.dataplaneOf(ns.labels) {
	case dataplaneAmbient, dataplaneSidecar:
		return stateMeshed
	}
	return statePlaintext
}

// dataplaneOf reads a namespace's enrollment labels.
func (m *Model) dataplaneOf(labels map[string]string) dataplane {
	switch {
	case labels[ambient.LabelDataplaneMode] == "ambient":
		return dataplaneAmbient
	case labels[ambient.LabelInjection] == "enabled", labels[ambient.LabelRev] != "":
		return dataplaneSidecar
	}
	return dataplaneNone
}

func readService(o *unstructured.Unstructured) *service {
	s := &service{namespace: o.GetNamespace(), name: o.GetName(), labels: o.GetLabels()}
	s.selector, _, _ = unstructured.NestedStringMap(o.Object, "spec", "selector")
	ports, _, _ := unstructured.NestedSlice(o.Object, "spec", "ports")
	for _, p := range ports {
		pm, ok := p.(map[string]any)
		if !ok {
			continue
		}
		sp := servicePort{name: str(pm["name"]), appProtocol: str(pm["appProtocol"])}
		if n, ok := integer(pm["port"]); ok {
			sp.port = n
		}
		switch t := pm["targetPort"].(type) {
		case string:
			if n, err := strconv.Atoi(t); err == nil {
				sp.targetPort = int32(n)
			} else {
				sp.targetName = t
			}
		case nil:
			sp.targetPort = sp.port
		default:
			sp.targetPort, _ = integer(t)
		}
		s.ports = append(s.ports, sp)
	}
	return s
}

func readWorkload(o *unstructured.Unstructured, tmpl map[string]any) *workload {
	w := &workload{kind: o.GetKind(), namespace: o.GetNamespace(), name: o.GetName(), ports: map[string]int32{}}
	w.labels, _, _ = unstructured.NestedStringMap(tmpl, "metadata", "labels")
	w.serviceAccount, _, _ = unstructured.NestedString(tmpl, "spec", "serviceAccountName")
	if w.serviceAccount == "" {
		w.serviceAccount = "default"
	}
	containers, _, _ := unstructured.NestedSlice(tmpl, "spec", "containers")
	for _, c := range containers {
		cm, _ := c.(map[string]any)
		ports, _, _ := unstructured.NestedSlice(cm, "ports")
		for _, p := range ports {
			pm, _ := p.(map[string]any)
			if n, ok := integer(pm["containerPort"]); ok && str(pm["name"]) != "" {
				w.ports[str(pm["name"])] = n
			}
		}
	}
	return w
}

func readGateway(o *unstructured.Unstructured) *gateway {
	gw := &gateway{namespace: o.GetNamespace(), name: o.GetName()}
	gw.class, _, _ = unstructured.NestedString(o.Object, "spec", "gatewayClassName")
	gw.waypointFor = o.GetLabels()[ambient.LabelWaypointFor]
	if gw.waypointFor == "" {
		gw.waypointFor = ambient.WaypointDefaultFor
	}
	// deploymentcontroller.go: ServiceAccount defaults to the deployment name,
	// which for the istio-waypoint class (DisableNameSuffix) is the Gateway's.
	gw.serviceAccount = o.GetAnnotations()[annotationGatewayServiceAccount]
	if gw.serviceAccount == "" {
		gw.serviceAccount = o.GetName()
	}
	return gw
}

// annotationGatewayServiceAccount overrides the service account istiod
// deploys a Gateway with.
const annotationGatewayServiceAccount = "gateway.istio.io/service-account"

// decodeSpec decodes an object's spec into v, naming the object on failure.
func decodeSpec(o *unstructured.Unstructured, v any) error {
	spec, _ := o.Object["spec"].(map[string]any)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(spec, v); err != nil {
		return fmt.Errorf("%s %s/%s cannot be read: %w: fix its spec", o.GetKind(), o.GetNamespace(), o.GetName(), err)
	}
	return nil
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
		return int32(n), true
	}
	return 0, false
}

// identitySet collects identities without duplicates.
type identitySet map[Identity]bool

func (s identitySet) add(id Identity) { s[id] = true }

func (s identitySet) sorted() []Identity {
	out := make([]Identity, 0, len(s))
	for id := range s {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// selects reports whether a label selector selects labels.
func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}

// Named lists, sorted, the HTTP methods and the paths (as patterns) that
// the rules of the policies name, in values or notValues.
func (m *Model) Named() (methods, paths []string) {
	ms, ps := map[string]bool{}, map[string]bool{}
	for _, p := range m.policies {
		for _, r := range p.spec.Rules {
			for _, t := range r.To {
				for _, v := range concat(t.Operation.Methods, t.Operation.NotMethods) {
					ms[v] = true
				}
				for _, v := range concat(t.Operation.Paths, t.Operation.NotPaths) {
					ps[v] = true
				}
			}
		}
	}
	keys := func(set map[string]bool) []string {
		out := make([]string, 0, len(set))
		for k := range set {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	return keys(ms), keys(ps)
}
