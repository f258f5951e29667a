package meshspec

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Group and Version name the spec API.
const (
	Group   = "meshcd.dev"
	Version = "v1alpha1"
	// APIVersion is the apiVersion every spec document carries.
	APIVersion = Group + "/" + Version
)

// Kinds of the spec API.
const (
	KindMeshNamespace    = "MeshNamespace"
	KindMeshService      = "MeshService"
	KindDataplaneRollout = "DataplaneRollout"
)

// DefaultRootNamespace is the Istio root namespace: policies placed there
// apply to the whole mesh.
const DefaultRootNamespace = "istio-system"

// DefaultWaypointName is the name of a waypoint Gateway when none is given,
// the same name `istioctl waypoint generate` uses.
const DefaultWaypointName = "waypoint"

// MeshNamespace enrolls one namespace in the mesh and states its waypoint and
// namespace-wide security posture. meshcd never owns the Namespace object: it
// owns only the labels it writes on it.
//
// A MeshNamespace named after the mesh root namespace (istio-system unless
// configured otherwise) states the mesh-wide posture instead: its mtls and
// defaultDeny apply to every namespace, and it enrolls nothing.
type MeshNamespace struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	// Spec is the namespace's intent.
	Spec MeshNamespaceSpec `json:"spec"`
}

// MeshNamespaceSpec states how a namespace takes part in the mesh.
type MeshNamespaceSpec struct {
	// Dataplane is the namespace's data plane mode, written as the
	// istio.io/dataplane-mode label. The mesh root namespace is never enrolled.
	// +kubebuilder:validation:Enum=ambient;none
	// +kubebuilder:default=ambient
	// +optional
	Dataplane DataplaneMode `json:"dataplane,omitempty"`

	// Waypoint deploys an L7 waypoint proxy for the namespace, as a Gateway of
	// class istio-waypoint. Routes, L7 access rules, JWT and fault injection
	// on the namespace's services need one.
	// +optional
	Waypoint *Waypoint `json:"waypoint,omitempty"`

	// UseWaypoint says which traffic goes through the waypoint:
	// "namespace" labels the Namespace with istio.io/use-waypoint, so every
	// Service in it uses the waypoint; "services" labels only the Services
	// declared by a MeshService in this namespace; "none" labels nothing, so
	// only workloads that name the waypoint themselves use it.
	// Defaults to "namespace" when the waypoint serves services (for: service
	// or all) and to "none" otherwise.
	// +kubebuilder:validation:Enum=namespace;services;none
	// +optional
	UseWaypoint UseWaypoint `json:"useWaypoint,omitempty"`

	// MTLS is the PeerAuthentication mode for the namespace (or, on the root
	// namespace, for the mesh). Empty writes no PeerAuthentication. DISABLE is
	// refused in ambient namespaces.
	// +kubebuilder:validation:Enum=STRICT;PERMISSIVE
	// +optional
	MTLS MTLSMode `json:"mtls,omitempty"`

	// DefaultDeny writes an AuthorizationPolicy with an empty spec, which
	// ztunnel enforces as "allow nothing": only traffic admitted by an access
	// rule gets through.
	// +optional
	DefaultDeny bool `json:"defaultDeny,omitempty"`

	// WaypointOnly refuses, at ztunnel, all traffic to the namespace's pods
	// that does not come from its waypoint (or from a canary waypoint while
	// a rollout runs one): a missing or broken waypoint then means refused
	// traffic, not traffic that skips the waypoint's policies. Every access
	// rule of the namespace's services is then enforced at the waypoint.
	// Direct pod-to-pod traffic, probes from other meshed pods and traffic
	// from outside the mesh are refused too. Needs a waypoint and
	// useWaypoint: namespace.
	// +optional
	WaypointOnly bool `json:"waypointOnly,omitempty"`
}

// DataplaneMode is the value of the istio.io/dataplane-mode label.
type DataplaneMode string

// Data plane modes.
const (
	DataplaneAmbient DataplaneMode = "ambient"
	DataplaneNone    DataplaneMode = "none"
)

// UseWaypoint is the scope of the istio.io/use-waypoint label.
type UseWaypoint string

// Waypoint scopes.
const (
	UseWaypointNamespace UseWaypoint = "namespace"
	UseWaypointServices  UseWaypoint = "services"
	UseWaypointNone      UseWaypoint = "none"
)

// MTLSMode is a PeerAuthentication mTLS mode.
type MTLSMode string

// mTLS modes meshcd writes.
const (
	MTLSStrict     MTLSMode = "STRICT"
	MTLSPermissive MTLSMode = "PERMISSIVE"
)

// Waypoint describes a waypoint proxy Gateway.
type Waypoint struct {
	// Name of the Gateway, and of the Deployment and ServiceAccount istiod
	// creates for it.
	// +kubebuilder:default=waypoint
	// +optional
	Name string `json:"name,omitempty"`

	// For is the traffic the waypoint accepts, written as the
	// istio.io/waypoint-for label: "service" for traffic addressed to a
	// Service, "workload" for traffic addressed to a pod, "all" for both.
	// +kubebuilder:validation:Enum=service;workload;all
	// +kubebuilder:default=service
	// +optional
	For WaypointFor `json:"for,omitempty"`

	// Revision pins the waypoint to an Istio revision (the istio.io/rev label).
	// +optional
	Revision string `json:"revision,omitempty"`
}

// WaypointFor is the value of the istio.io/waypoint-for label.
type WaypointFor string

// Waypoint traffic types.
const (
	WaypointForService  WaypointFor = "service"
	WaypointForWorkload WaypointFor = "workload"
	WaypointForAll      WaypointFor = "all"
)

// ServesServices reports whether a waypoint of this type accepts traffic
// addressed to a Service.
func (f WaypointFor) ServesServices() bool { return f == WaypointForService || f == WaypointForAll }

// MeshService states the traffic and security intent for one application
// Service. The Service itself belongs to the application: meshcd only adds
// the istio.io/use-waypoint label to it, and owns the per-version Services,
// routes and policies it renders.
type MeshService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	// Spec is the service's intent.
	Spec MeshServiceSpec `json:"spec"`
}

// MeshServiceSpec states how one Service is routed and protected.
type MeshServiceSpec struct {
	// Port is the Service port that routes attach to and that the
	// per-version Services expose.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// TargetPort is the container port behind Port, used by the per-version
	// Services. Defaults to Port.
	// +optional
	TargetPort int32 `json:"targetPort,omitempty"`

	// Selector is the label set of the Service's pods. Access rules enforced
	// at ztunnel select workloads with it, and each per-version Service adds
	// its version's labels to it.
	Selector map[string]string `json:"selector"`

	// Versions maps a version name to the pod labels that set it apart, for
	// example {v1: {version: v1}}. Each version gets a Service named
	// <service>-<version> for routes to send traffic to.
	// +optional
	Versions map[string]map[string]string `json:"versions,omitempty"`

	// Routes are tried in order; the first whose match fits takes the
	// request. They are written as one HTTPRoute on the Service, so they need
	// the Service to use a waypoint.
	// +optional
	Routes []Route `json:"routes,omitempty"`

	// Resilience sets the request timeout and retries on the routes.
	// +optional
	Resilience *Resilience `json:"resilience,omitempty"`

	// CircuitBreaker limits connections and ejects failing endpoints,
	// written as DestinationRules for the Service and each version.
	// +optional
	CircuitBreaker *CircuitBreaker `json:"circuitBreaker,omitempty"`

	// Faults injects delays and aborts, written as a VirtualService of its
	// own. It cannot be combined with routes or resilience on the same
	// Service: ambient honours one routing API per host.
	// +optional
	Faults *Faults `json:"faults,omitempty"`

	// Access lists who may call the Service. Rules with only L4 attributes
	// are enforced by ztunnel; a rule with methods or paths is enforced by
	// the waypoint, and meshcd then also admits the waypoint at ztunnel.
	// +optional
	Access []AccessRule `json:"access,omitempty"`

	// JWT validates end-user tokens at the waypoint.
	// +optional
	JWT *JWT `json:"jwt,omitempty"`

	// WaypointOnly refuses, at ztunnel, all traffic to the Service's pods
	// (those its selector matches) that does not come from its waypoint, so
	// that its waypoint policies cannot be skipped; every access rule is
	// then enforced at the waypoint. Direct calls to the pods are refused.
	// +optional
	WaypointOnly bool `json:"waypointOnly,omitempty"`
}

// Route is one routing rule: requests that fit Match go to Backends.
type Route struct {
	// Match narrows the requests this rule takes. Empty matches everything.
	// +optional
	Match *Match `json:"match,omitempty"`

	// Backends maps a version name to its weight. The weights are relative;
	// they must not all be zero.
	Backends map[string]int32 `json:"backends"`
}

// Match selects requests by header, path and method.
type Match struct {
	// Headers must all be present with exactly these values.
	// +optional
	Headers map[string]string `json:"headers,omitempty"`

	// PathPrefix matches paths that start with it, by path segment.
	// +optional
	PathPrefix string `json:"pathPrefix,omitempty"`

	// Method matches one HTTP method.
	// +optional
	Method string `json:"method,omitempty"`
}

// Resilience sets timeouts and retries.
type Resilience struct {
	// Timeout bounds the whole request, retries included.
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// Retries retries failed requests.
	// +optional
	Retries *Retries `json:"retries,omitempty"`
}

// Retries says when and how often a failed request is retried.
type Retries struct {
	// Attempts is the number of retries after the first try.
	// +kubebuilder:validation:Minimum=1
	Attempts int32 `json:"attempts"`

	// PerTryTimeout bounds each try.
	// +optional
	PerTryTimeout *metav1.Duration `json:"perTryTimeout,omitempty"`

	// On lists the failures that are retried: "5xx", "gateway-error",
	// "reset", "connect-failure", "refused-stream", or an HTTP status code
	// such as "503". Defaults to ["connect-failure", "refused-stream",
	// "unavailable", "cancelled", "503"].
	// +optional
	On []string `json:"on,omitempty"`
}

// CircuitBreaker limits connections and ejects failing endpoints.
type CircuitBreaker struct {
	// MaxConnections caps TCP connections to each endpoint.
	// +optional
	MaxConnections int32 `json:"maxConnections,omitempty"`

	// MaxPendingRequests caps requests waiting for a connection.
	// +optional
	MaxPendingRequests int32 `json:"maxPendingRequests,omitempty"`

	// Consecutive5xxErrors ejects an endpoint after this many 5xx in a row.
	// +optional
	Consecutive5xxErrors int32 `json:"consecutive5xxErrors,omitempty"`

	// Interval between ejection sweeps. Defaults to 10s when ejection is on.
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`

	// BaseEjection is the minimum ejection time. Defaults to 30s when
	// ejection is on.
	// +optional
	BaseEjection *metav1.Duration `json:"baseEjection,omitempty"`

	// MaxEjectionPercent caps the share of endpoints ejected at once.
	// Defaults to 50 when ejection is on.
	// +kubebuilder:validation:Maximum=100
	// +optional
	MaxEjectionPercent int32 `json:"maxEjectionPercent,omitempty"`
}

// Faults injects failures for testing.
type Faults struct {
	// Delay holds some requests back.
	// +optional
	Delay *DelayFault `json:"delay,omitempty"`

	// Abort fails some requests with a status code.
	// +optional
	Abort *AbortFault `json:"abort,omitempty"`
}

// DelayFault delays a share of requests.
type DelayFault struct {
	// Percent of requests delayed, 0 to 100.
	// +kubebuilder:validation:Maximum=100
	Percent float64 `json:"percent"`
	// Fixed is the delay.
	Fixed metav1.Duration `json:"fixed"`
}

// AbortFault fails a share of requests.
type AbortFault struct {
	// Percent of requests aborted, 0 to 100.
	// +kubebuilder:validation:Maximum=100
	Percent float64 `json:"percent"`
	// Status is the HTTP status returned.
	// +kubebuilder:validation:Minimum=200
	// +kubebuilder:validation:Maximum=599
	Status int32 `json:"status"`
}

// AccessRule admits one set of callers. The fields are ANDed; the rules of
// a service are ORed.
type AccessRule struct {
	// From names the callers.
	From Source `json:"from"`

	// Ports limits the rule to these destination ports (L4).
	// +optional
	Ports []int32 `json:"ports,omitempty"`

	// Methods limits the rule to these HTTP methods (L7: needs a waypoint).
	// +optional
	Methods []string `json:"methods,omitempty"`

	// Paths limits the rule to these HTTP paths; a trailing or leading *
	// matches a prefix or suffix (L7: needs a waypoint).
	// +optional
	Paths []string `json:"paths,omitempty"`
}

// IsL7 reports whether the rule uses an attribute only a waypoint can read.
func (r AccessRule) IsL7() bool { return len(r.Methods) > 0 || len(r.Paths) > 0 }

// Source names callers by identity or address. At least one field is set.
type Source struct {
	// ServiceAccounts are "namespace/name" pairs, matched by SPIFFE identity.
	// +optional
	ServiceAccounts []string `json:"serviceAccounts,omitempty"`

	// Namespaces admits every workload of these namespaces.
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`

	// IPBlocks are CIDRs of the peer address.
	// +optional
	IPBlocks []string `json:"ipBlocks,omitempty"`
}

// JWT validates end-user tokens at the waypoint.
type JWT struct {
	// Issuer is the token's iss claim.
	Issuer string `json:"issuer"`

	// JWKSURI is where the issuer's public keys are fetched.
	JWKSURI string `json:"jwksUri"`

	// Audiences accepted in the aud claim. Empty accepts any.
	// +optional
	Audiences []string `json:"audiences,omitempty"`

	// Required refuses requests without a valid token. Without it a token is
	// only checked when present.
	// +optional
	Required bool `json:"required,omitempty"`
}

// DataplaneRollout rolls the bundled ztunnel and waypoint proxy images out
// in stages: waypoints namespace by namespace, ztunnel node by node.
type DataplaneRollout struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	// Spec is the rollout's intent.
	Spec DataplaneRolloutSpec `json:"spec"`
}

// DataplaneRolloutSpec names the target bundle and the stages to reach it.
type DataplaneRolloutSpec struct {
	// Bundle is the Istio version whose pinned proxy images are rolled out,
	// as listed by `meshcd bundle list`.
	Bundle string `json:"bundle"`

	// Waypoints stages the waypoint upgrade namespace by namespace.
	// +optional
	Waypoints *WaypointRollout `json:"waypoints,omitempty"`

	// Ztunnel stages the ztunnel upgrade node by node.
	// +optional
	Ztunnel *ZtunnelRollout `json:"ztunnel,omitempty"`

	// Promote names a manual stage that may start. Committing it is the
	// approval, so promotion goes through a pull request.
	// +optional
	Promote string `json:"promote,omitempty"`
}

// WaypointRollout is an ordered list of stages.
type WaypointRollout struct {
	// Stages run in order; each starts when the one before it passed its gates.
	Stages []Stage `json:"stages"`
}

// Stage is one step of a waypoint rollout.
type Stage struct {
	// Name identifies the stage in status and in `promote`.
	Name string `json:"name"`

	// Namespaces in this stage; "*" means every namespace no earlier stage
	// named.
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`

	// Selector picks namespaces by label instead of by name.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`

	// Gates must all hold before the next stage starts.
	// +optional
	Gates *Gates `json:"gates,omitempty"`

	// Approval "manual" waits for `promote: <stage>` to be committed.
	// +kubebuilder:validation:Enum=auto;manual
	// +kubebuilder:default=auto
	// +optional
	Approval Approval `json:"approval,omitempty"`

	// Strategy is how the stage moves its namespaces. "replace" pins each
	// namespace's waypoint to the new bundle, which restarts it in place.
	// "canary" runs a second waypoint on the new bundle beside it (the
	// istio.io/use-waypoint-canary label), shifts new connections to it by
	// the weights in steps, checking the gates at every step, then moves
	// the primary to the new bundle and removes the canary. A failed gate,
	// an abort or a rollback sets the weight to 0 and removes the canary;
	// the primary is untouched until then.
	// +kubebuilder:validation:Enum=replace;canary
	// +kubebuilder:default=replace
	// +optional
	Strategy StageStrategy `json:"strategy,omitempty"`

	// Steps are the canary's weights in percent, ascending and ending at
	// 100. Default [5, 25, 50, 100].
	// +optional
	Steps []int32 `json:"steps,omitempty"`
}

// StageStrategy is how a waypoint stage moves a namespace to a bundle.
type StageStrategy string

// Stage strategies.
const (
	StrategyReplace StageStrategy = "replace"
	StrategyCanary  StageStrategy = "canary"
)

// DefaultCanarySteps are the weights of a canary stage that sets none.
var DefaultCanarySteps = []int32{5, 25, 50, 100}

// Approval says whether a stage starts by itself.
type Approval string

// Approvals.
const (
	ApprovalAuto   Approval = "auto"
	ApprovalManual Approval = "manual"
)

// Gates are the checks a stage must pass.
type Gates struct {
	// Programmed waits for each waypoint Gateway to be Programmed with an
	// address.
	// +optional
	Programmed bool `json:"programmed,omitempty"`

	// Ready waits for each waypoint Deployment to roll out the new image with
	// every replica available.
	// +optional
	Ready bool `json:"ready,omitempty"`

	// Soak is how long the stage must stay healthy before it passes.
	// +optional
	Soak *metav1.Duration `json:"soak,omitempty"`

	// Timeout is how long the gates may take to hold; past it the stage
	// fails and is rolled back to the previous images. Default 10m.
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// Prometheus holds while a PromQL query, such as the stage's error
	// rate, stays at or under a threshold.
	// +optional
	Prometheus *PrometheusGate `json:"prometheus,omitempty"`
}

// PrometheusGate is a PromQL query whose every sample must stay at or under
// Max. A query that returns no sample does not hold: no data is not proof
// of health.
type PrometheusGate struct {
	// URL is the Prometheus server, such as http://prometheus.istio-system:9090.
	URL string `json:"url"`

	// Query is an instant PromQL query; "$namespaces" in it is replaced by
	// the stage's namespaces as a regular expression (a|b|c), for example
	// sum(rate(istio_requests_total{destination_service_namespace=~"$namespaces",response_code=~"5.."}[1m]))
	// / sum(rate(istio_requests_total{destination_service_namespace=~"$namespaces"}[1m])).
	Query string `json:"query"`

	// Max is the largest value a sample may have, as a decimal number
	// such as "0.01".
	Max string `json:"max"`
}

// ZtunnelRollout stages the per-node ztunnel DaemonSet.
type ZtunnelRollout struct {
	// Strategy is "node-by-node" (OnDelete, one node's pod at a time) or
	// "rolling" (the DaemonSet's own rolling update).
	// +kubebuilder:validation:Enum=node-by-node;rolling
	// +kubebuilder:default=node-by-node
	// +optional
	Strategy ZtunnelStrategy `json:"strategy,omitempty"`

	// MaxUnavailable is how many nodes may restart ztunnel at once.
	// +kubebuilder:default=1
	// +optional
	MaxUnavailable int32 `json:"maxUnavailable,omitempty"`

	// Timeout is how long one step may wait for its nodes' new ztunnel pods
	// to be Ready with nothing unhealthy; past it the ztunnel stage fails
	// and ztunnel is rolled back, node by node, to its previous image.
	// Default 10m.
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// ZtunnelStrategy is how ztunnel pods are replaced.
type ZtunnelStrategy string

// ztunnel strategies.
const (
	ZtunnelNodeByNode ZtunnelStrategy = "node-by-node"
	ZtunnelRolling    ZtunnelStrategy = "rolling"
)
