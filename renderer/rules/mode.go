package rules

import "github.com/meshcd/meshcd/ambient"

// Mode is the data plane that serves a pod: which proxy, if any, carries its
// traffic.
type Mode int

// Modes. ModeUnknown is a namespace absent from the input: rules that depend
// on the mode stay silent there.
const (
	ModeUnknown Mode = iota
	ModeNone         // mesh-neutral: neither ztunnel nor a sidecar
	ModeAmbient      // redirected to ztunnel
	ModeSidecar      // a sidecar was injected; istio-cni leaves the pod alone
)

// String names the mode as docs/rules.md does.
func (m Mode) String() string {
	switch m {
	case ModeNone:
		return "mesh-neutral"
	case ModeAmbient:
		return "ambient"
	case ModeSidecar:
		return "sidecar-injected"
	}
	return "unknown"
}

// injectionIgnored are the namespaces the sidecar injector never injects
// (IgnoredNamespaces in pkg/kube/inject/initializer.go).
var injectionIgnored = map[string]bool{"kube-system": true, "kube-public": true, "kube-node-lease": true, "local-path-storage": true}

// PodMode decides the data plane of a pod from its namespace's labels and the
// pod's own labels and annotations, the way the pinned Istio does (istio.io/istio
// @v0.0.0-20260827124520-eed52ebb66ad). A pod template's metadata stands for the
// pod. Pass nil pod labels to ask about a namespace's pods that state nothing.
//
//  1. hostNetwork pods are never meshed: injectRequired in
//     pkg/kube/inject/inject.go and CompiledEnablementSelectors.Matches in
//     cni/pkg/util/enablement_selector.go both skip them.
//  2. The sidecar wins. The injection webhook is called as the selectors of
//     manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml
//     say: never for a pod labelled sidecar.istio.io/inject=false; for a
//     namespace labelled istio-injection=enabled; for a namespace with a
//     non-empty istio.io/rev and no istio-injection label (any revision is
//     taken to be installed); for a namespace with neither label, only when the
//     pod is labelled sidecar.istio.io/inject=true or carries istio.io/rev.
//     A namespace labelled istio-injection with another value (disabled) is
//     never injected. Once called, injectRequired (pkg/kube/inject/inject.go)
//     injects unless the pod's sidecar.istio.io/inject label, or without it the
//     annotation, is "false". istio-cni then skips a pod with a sidecar
//     ("Ztunnel and sidecar for a single pod is currently not supported",
//     cni/pkg/util/enablement_selector.go).
//  3. Otherwise the pod is ambient when the default enablement selectors of
//     manifests/charts/istio-cni/values.yaml match: the pod is labelled
//     istio.io/dataplane-mode=ambient (in any namespace), or its namespace is
//     labelled istio.io/dataplane-mode=ambient and the pod is not labelled
//     istio.io/dataplane-mode=none. istiod does not decide this itself: it
//     serves the pod over HBONE once istio-cni annotates it
//     ambient.istio.io/redirection=enabled (setTunnelProtocol in
//     pilot/pkg/serviceregistry/ambient/workloads.go).
//  4. Anything else is mesh-neutral.
func PodMode(namespace string, nsLabels, podLabels, podAnnotations map[string]string, hostNetwork bool) Mode {
	if hostNetwork {
		return ModeNone
	}
	if !injectionIgnored[namespace] && sidecarInjected(nsLabels, podLabels, podAnnotations) {
		return ModeSidecar
	}
	if podLabels[ambient.LabelDataplaneMode] == "ambient" ||
		nsLabels[ambient.LabelDataplaneMode] == "ambient" && podLabels[ambient.LabelDataplaneMode] != "none" {
		return ModeAmbient
	}
	return ModeNone
}

// NamespaceMode is the mode of the pods of a namespace that state nothing
// themselves: PodMode with no pod labels.
func NamespaceMode(namespace string, nsLabels map[string]string) Mode {
	return PodMode(namespace, nsLabels, nil, nil, false)
}

// sidecarInjected follows the webhook selectors and injectRequired (see
// PodMode).
func sidecarInjected(nsLabels, podLabels, podAnnotations map[string]string) bool {
	podInject, podInjectSet := podLabels[ambient.LabelSidecarInject]
	if podInjectSet && podInject == "false" {
		return false
	}
	injection, injectionSet := nsLabels[ambient.LabelInjection]
	var called bool
	switch {
	case injectionSet:
		called = injection == "enabled"
	case nsLabels[ambient.LabelRev] != "":
		called = true
	default:
		called = podInject == "true" || podLabels[ambient.LabelRev] != ""
	}
	if !called {
		return false
	}
	if podInjectSet {
		return podInject != "false"
	}
	return podAnnotations[ambient.LabelSidecarInject] != "false"
}
