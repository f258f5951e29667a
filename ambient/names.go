package ambient

import "k8s.io/apimachinery/pkg/runtime/schema"

// Labels and annotations Istio reads.
const (
	// LabelDataplaneMode enrolls a Namespace or pod: "ambient" or "none".
	LabelDataplaneMode = "istio.io/dataplane-mode"
	// LabelUseWaypoint names the waypoint Gateway a Namespace, Service or pod uses.
	LabelUseWaypoint = "istio.io/use-waypoint"
	// LabelUseWaypointNamespace names the waypoint's namespace when it is not the resource's own.
	LabelUseWaypointNamespace = "istio.io/use-waypoint-namespace"
	// LabelUseWaypointCanary names a second, canary waypoint (Istio 1.31).
	LabelUseWaypointCanary = "istio.io/use-waypoint-canary"
	// LabelUseWaypointCanaryNamespace names the canary waypoint's namespace.
	LabelUseWaypointCanaryNamespace = "istio.io/use-waypoint-canary-namespace"
	// AnnotationUseWaypointCanaryWeight is the share, "0".."100", of new connections sent to the canary.
	AnnotationUseWaypointCanaryWeight = "istio.io/use-waypoint-canary-weight"
	// LabelWaypointFor is the traffic a waypoint accepts: service, workload, all or none.
	LabelWaypointFor = "istio.io/waypoint-for"
	// LabelRev pins a resource to an Istio revision.
	LabelRev = "istio.io/rev"
	// LabelInjection is the sidecar injection label of a Namespace.
	LabelInjection = "istio-injection"
	// LabelSidecarInject is the sidecar injection label of a pod.
	LabelSidecarInject = "sidecar.istio.io/inject"
	// AnnotationProxyImage pins a waypoint's proxy image.
	AnnotationProxyImage = "sidecar.istio.io/proxyImage"
	// LabelGatewayName is set by istiod on the waypoint Deployment and pods it creates.
	LabelGatewayName = "gateway.networking.k8s.io/gateway-name"
	// RootNamespace is istiod's default meshConfig.rootNamespace: its
	// policies without a selector apply to the whole mesh.
	RootNamespace = "istio-system"
)

// Waypoint Gateway facts.
const (
	// WaypointClass is the GatewayClass of waypoints.
	WaypointClass = "istio-waypoint"
	// WaypointListenerName, WaypointPort and WaypointProtocol describe the one
	// listener a waypoint has.
	WaypointListenerName = "mesh"
	WaypointPort         = 15008
	WaypointProtocol     = "HBONE"
	// WaypointDefaultFor is the traffic a waypoint serves without the label.
	WaypointDefaultFor = "service"
)

// Status conditions istiod writes back.
const (
	ConditionProgrammed        = "Programmed"
	ConditionAccepted          = "Accepted"
	ConditionResolvedRefs      = "ResolvedRefs"
	ConditionResolvedWaypoints = "ResolvedWaypoints"
	ConditionWaypointBound     = "istio.io/WaypointBound"
	ConditionZtunnelAccepted   = "ZtunnelAccepted"
	ConditionWaypointAccepted  = "WaypointAccepted"
	// ReasonUnsupportedValue and ReasonPartiallyInvalid mark a condition as
	// unhealthy even when its status is True.
	ReasonUnsupportedValue = "UnsupportedValue"
	ReasonPartiallyInvalid = "PartiallyInvalid"
	// ReasonAncestorNotBound is istiod's reason for refusing a waypoint
	// policy whose target is not bound to a waypoint.
	ReasonAncestorNotBound = "AncestorNotBound"
)

// Ownership labels and annotations meshcd writes on what it renders.
const (
	// LabelManagedBy marks meshcd as the owner; prune only touches objects with it.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is LabelManagedBy's value.
	ManagedByValue = "meshcd"
	// LabelInstance names the meshcd instance (--name) that owns an object:
	// an instance prunes, corrects and reports only its own objects.
	LabelInstance = "meshcd.dev/instance"
	// LabelSpecKind and LabelSpecName name the spec document an object came from.
	LabelSpecKind = "meshcd.dev/spec-kind"
	LabelSpecName = "meshcd.dev/spec-name"
	// AnnotationOwnership is "partial" on objects meshcd does not own but
	// labels: a Namespace, or an application's Service. meshcd never creates
	// or deletes them; pruning removes only its own labels.
	AnnotationOwnership = "meshcd.dev/ownership"
	// OwnershipPartial is AnnotationOwnership's value.
	OwnershipPartial = "partial"
	// AnnotationDigest holds a digest of the object meshcd last applied, so
	// that an unchanged object is recognised without a request to the server.
	AnnotationDigest = "meshcd.dev/digest"
	// FieldManager is meshcd's server-side apply field manager. It never
	// changes: a new name would orphan every field the old one owns.
	FieldManager = "meshcd"
)

// API groups and kinds.
var (
	GatewayGK               = schema.GroupKind{Group: "gateway.networking.k8s.io", Kind: "Gateway"}
	HTTPRouteGK             = schema.GroupKind{Group: "gateway.networking.k8s.io", Kind: "HTTPRoute"}
	AuthorizationPolicyGK   = schema.GroupKind{Group: "security.istio.io", Kind: "AuthorizationPolicy"}
	PeerAuthenticationGK    = schema.GroupKind{Group: "security.istio.io", Kind: "PeerAuthentication"}
	RequestAuthenticationGK = schema.GroupKind{Group: "security.istio.io", Kind: "RequestAuthentication"}
	VirtualServiceGK        = schema.GroupKind{Group: "networking.istio.io", Kind: "VirtualService"}
	DestinationRuleGK       = schema.GroupKind{Group: "networking.istio.io", Kind: "DestinationRule"}
	EnvoyFilterGK           = schema.GroupKind{Group: "networking.istio.io", Kind: "EnvoyFilter"}
	SidecarGK               = schema.GroupKind{Group: "networking.istio.io", Kind: "Sidecar"}
	WasmPluginGK            = schema.GroupKind{Group: "extensions.istio.io", Kind: "WasmPlugin"}
	TrafficExtensionGK      = schema.GroupKind{Group: "extensions.istio.io", Kind: "TrafficExtension"}
	NamespaceGK             = schema.GroupKind{Kind: "Namespace"}
	ServiceGK               = schema.GroupKind{Kind: "Service"}
)

// API versions meshcd writes.
const (
	GatewayAPIVersion         = "gateway.networking.k8s.io/v1"
	IstioSecurityAPIVersion   = "security.istio.io/v1"
	IstioNetworkingAPIVersion = "networking.istio.io/v1"
)

// Principal is the SPIFFE identity of a service account in the default
// trust domain, as AuthorizationPolicy principals spell it.
func Principal(trustDomain, namespace, serviceAccount string) string {
	return trustDomain + "/ns/" + namespace + "/sa/" + serviceAccount
}
