package renderer

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshcd/meshcd/meshspec"
)

// knownScopes says, for the kinds meshcd renders, checks or is commonly
// handed, whether they are namespaced (true) or cluster-scoped (false), as
// the API server serves them. A render decides scope offline from this
// table and the CustomResourceDefinitions of its own input; a kind in
// neither is left as written, with or without a namespace.
var knownScopes = map[schema.GroupKind]bool{
	// core
	{Kind: "ConfigMap"}:             true,
	{Kind: "Endpoints"}:             true,
	{Kind: "LimitRange"}:            true,
	{Kind: "PersistentVolumeClaim"}: true,
	{Kind: "Pod"}:                   true,
	{Kind: "PodTemplate"}:           true,
	{Kind: "ReplicationController"}: true,
	{Kind: "ResourceQuota"}:         true,
	{Kind: "Secret"}:                true,
	{Kind: "Service"}:               true,
	{Kind: "ServiceAccount"}:        true,
	{Kind: "Namespace"}:             false,
	{Kind: "Node"}:                  false,
	{Kind: "PersistentVolume"}:      false,
	// apps, batch, autoscaling, policy, networking, discovery, coordination
	{Group: "apps", Kind: "Deployment"}:                               true,
	{Group: "apps", Kind: "DaemonSet"}:                                true,
	{Group: "apps", Kind: "StatefulSet"}:                              true,
	{Group: "apps", Kind: "ReplicaSet"}:                               true,
	{Group: "apps", Kind: "ControllerRevision"}:                       true,
	{Group: "batch", Kind: "Job"}:                                     true,
	{Group: "batch", Kind: "CronJob"}:                                 true,
	{Group: "autoscaling", Kind: "HorizontalPodAutoscaler"}:           true,
	{Group: "policy", Kind: "PodDisruptionBudget"}:                    true,
	{Group: "networking.k8s.io", Kind: "Ingress"}:                     true,
	{Group: "networking.k8s.io", Kind: "NetworkPolicy"}:               true,
	{Group: "networking.k8s.io", Kind: "IngressClass"}:                false,
	{Group: "discovery.k8s.io", Kind: "EndpointSlice"}:                true,
	{Group: "coordination.k8s.io", Kind: "Lease"}:                     true,
	{Group: "scheduling.k8s.io", Kind: "PriorityClass"}:               false,
	{Group: "storage.k8s.io", Kind: "StorageClass"}:                   false,
	{Group: "node.k8s.io", Kind: "RuntimeClass"}:                      false,
	{Group: "apiregistration.k8s.io", Kind: "APIService"}:             false,
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}: false,
	// RBAC
	{Group: "rbac.authorization.k8s.io", Kind: "Role"}:               true,
	{Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}:        true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:        false,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}: false,
	// admission
	{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"}:     false,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"}:   false,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicy"}:        false,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicyBinding"}: false,
	// Gateway API
	{Group: "gateway.networking.k8s.io", Kind: "GatewayClass"}:            false,
	{Group: "gateway.networking.k8s.io", Kind: "Gateway"}:                 true,
	{Group: "gateway.networking.k8s.io", Kind: "HTTPRoute"}:               true,
	{Group: "gateway.networking.k8s.io", Kind: "GRPCRoute"}:               true,
	{Group: "gateway.networking.k8s.io", Kind: "TCPRoute"}:                true,
	{Group: "gateway.networking.k8s.io", Kind: "TLSRoute"}:                true,
	{Group: "gateway.networking.k8s.io", Kind: "UDPRoute"}:                true,
	{Group: "gateway.networking.k8s.io", Kind: "ReferenceGrant"}:          true,
	{Group: "gateway.networking.k8s.io", Kind: "BackendTLSPolicy"}:        true,
	{Group: "gateway.networking.x-k8s.io", Kind: "XListenerSet"}:          true,
	{Group: "gateway.networking.x-k8s.io", Kind: "XBackendTrafficPolicy"}: true,
	// Istio: every configuration kind is namespaced (ClusterScoped: false in
	// pkg/config/schema/collections/collections.gen.go of the pinned istio module)
	{Group: "networking.istio.io", Kind: "VirtualService"}:      true,
	{Group: "networking.istio.io", Kind: "DestinationRule"}:     true,
	{Group: "networking.istio.io", Kind: "Gateway"}:             true,
	{Group: "networking.istio.io", Kind: "ServiceEntry"}:        true,
	{Group: "networking.istio.io", Kind: "WorkloadEntry"}:       true,
	{Group: "networking.istio.io", Kind: "WorkloadGroup"}:       true,
	{Group: "networking.istio.io", Kind: "Sidecar"}:             true,
	{Group: "networking.istio.io", Kind: "EnvoyFilter"}:         true,
	{Group: "networking.istio.io", Kind: "ProxyConfig"}:         true,
	{Group: "security.istio.io", Kind: "AuthorizationPolicy"}:   true,
	{Group: "security.istio.io", Kind: "PeerAuthentication"}:    true,
	{Group: "security.istio.io", Kind: "RequestAuthentication"}: true,
	{Group: "telemetry.istio.io", Kind: "Telemetry"}:            true,
	{Group: "extensions.istio.io", Kind: "WasmPlugin"}:          true,
	{Group: "extensions.istio.io", Kind: "TrafficExtension"}:    true,
	{Group: "install.istio.io", Kind: "IstioOperator"}:          true,
}

// scopes decides whether a kind is namespaced: from the CRDs of the input
// first, then from knownScopes. An unknown kind counts as not namespaced,
// so that it keeps what it was written with.
type scopes map[schema.GroupKind]bool

// scopesOf returns knownScopes with the scope of every
// CustomResourceDefinition among manifests added.
func scopesOf(manifests []*unstructured.Unstructured) scopes {
	s := scopes{}
	for _, m := range manifests {
		if meshspec.RefOf(m).Group != "apiextensions.k8s.io" || m.GetKind() != "CustomResourceDefinition" {
			continue
		}
		group, _, _ := unstructured.NestedString(m.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(m.Object, "spec", "names", "kind")
		scope, _, _ := unstructured.NestedString(m.Object, "spec", "scope")
		if kind != "" && (scope == "Namespaced" || scope == "Cluster") {
			s[schema.GroupKind{Group: group, Kind: kind}] = scope == "Namespaced"
		}
	}
	return s
}

// namespaced reports whether objects of gk live in a namespace.
func (s scopes) namespaced(gk schema.GroupKind) bool {
	if ns, ok := s[gk]; ok {
		return ns
	}
	return knownScopes[gk]
}
