package access

import (
	"strings"

	"github.com/meshcd/meshcd/ambient"
)

// Sidecar semantics, with Options.Sidecars, in the pinned istio module:
//
//   - A workload runs with a sidecar when the injector is called for it and
//     does not skip it: its namespace is labelled istio-injection=enabled,
//     or carries istio.io/rev without an istio-injection label, or neither
//     and the pod is labelled sidecar.istio.io/inject=true or istio.io/rev;
//     never when the pod is labelled sidecar.istio.io/inject=false
//     (manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml,
//     injectRequired in pkg/kube/inject/inject.go). The sidecar wins over
//     istio.io/dataplane-mode: istio-cni leaves a pod with a sidecar alone
//     (cni/pkg/util/enablement_selector.go).
//   - The sidecar takes the policies of its namespace and of the root
//     namespace whose selector selects it, or that have none; a policy with
//     targetRefs is ignored altogether (ShouldAttachPolicy in
//     pilot/pkg/model/policyattachment.go, "non-gateway: use selector").
//     CUSTOM, DENY and ALLOW apply in that order (pilot/pkg/security/authz/builder/builder.go).
//   - There is no waypoint hop: the sidecar sees the caller's own identity.
//   - On an HTTP port (or one whose protocol is sniffed) every HTTP
//     attribute is enforced. On a TCP port the builder builds TCP filters:
//     an ALLOW rule with an HTTP-only attribute is left out, a DENY rule is
//     kept without it (checkError in pilot/pkg/security/authz/model/model.go),
//     as at ztunnel. The port's protocol is its appProtocol, else its name's
//     prefix (ConvertProtocol in pkg/config/kube/conversion.go).
//   - A pod with a sidecar carries the labels the injector adds, among them
//     security.istio.io/tlsMode=istio
//     (manifests/charts/istio-control/istio-discovery/files/injection-template.yaml),
//     so a selector may pick pods with sidecars only.
//   - PeerAuthentication resolves as for ztunnel: mesh, namespace, workload,
//     port level.
//
// What it does not cover: the sidecar.istio.io/inject annotation (the label
// decides), sidecar clients sending to a waypoint, and a Service whose
// workloads run partly with sidecars.

// injected reports whether the injector gives w a sidecar.
func (m *Model) injected(w *workload) bool {
	podInject, podSet := w.labels[ambient.LabelSidecarInject]
	if podSet && podInject == "false" {
		return false
	}
	var nsLabels map[string]string
	if ns := m.namespaces[w.namespace]; ns != nil {
		nsLabels = ns.labels
	}
	if injection, ok := nsLabels[ambient.LabelInjection]; ok {
		return injection == "enabled"
	}
	return nsLabels[ambient.LabelRev] != "" || podInject == "true" || w.labels[ambient.LabelRev] != ""
}

// sidecarService reports whether the workloads of svc run with sidecars;
// why is set when only some of them do.
func (m *Model) sidecarService(svc *service) (sidecar bool, why string) {
	ws := m.serviceWorkloads(svc)
	n := 0
	for _, w := range ws {
		if m.injected(w) {
			n++
		}
	}
	if n > 0 && n < len(ws) {
		return false, "Service " + svc.namespace + "/" + svc.name + " selects workloads with and without sidecars, which this model does not cover"
	}
	return n > 0, ""
}

// sidecarHop decides at the sidecar of every workload of svc.
func (m *Model) sidecarHop(svc *service, sp *servicePort, caller *Identity, req *Request) HopVerdict {
	return perWorkload(svc, m.serviceWorkloads(svc), AtSidecar, caller, func(w *workload) HopVerdict {
		port, refused := m.admitPeer(w, sp, caller)
		if refused != nil {
			return *refused
		}
		return decide(&call{caller: caller, td: m.opts.TrustDomain, port: port, req: req, tcp: tcpPort(sp)}, m.sidecarPolicies(w))
	})
}

// sidecarPolicies are the policies a workload's sidecar enforces.
func (m *Model) sidecarPolicies(w *workload) []*policy {
	labels := injectedLabels(w.labels)
	var out []*policy
	for _, p := range m.candidates(w.namespace) {
		if !p.dryRun && p.action() != actionAudit && len(p.targetRefs()) == 0 &&
			(p.spec.Selector == nil || selects(p.spec.Selector.MatchLabels, labels)) {
			out = append(out, p)
		}
	}
	return out
}

// tcpProtocols are the protocols Istio serves on a TCP filter chain
// (protocol.Instance.IsTCP in pkg/config/protocol/instance.go).
var tcpProtocols = map[string]bool{"tcp": true, "https": true, "tls": true, "mongo": true, "redis": true, "mysql": true}

// wellKnownTCPPorts are the ports ConvertProtocol takes as TCP when the
// name says nothing (SMTP, DNS, MySQL, MongoDB).
var wellKnownTCPPorts = map[int32]bool{25: true, 53: true, 3306: true, 27017: true}

// tcpPort reports whether a sidecar serves sp on a TCP filter chain.
func tcpPort(sp *servicePort) bool {
	name := sp.name
	if sp.appProtocol != "" {
		switch sp.appProtocol {
		case "kubernetes.io/h2c", "kubernetes.io/ws":
			return false
		case "kubernetes.io/wss":
			return true
		}
		name = sp.appProtocol
	}
	if strings.HasPrefix(strings.ToLower(name), "grpc-web") {
		return false
	}
	prefix, _, _ := strings.Cut(strings.ToLower(name), "-")
	switch {
	case tcpProtocols[prefix]:
		return true
	case prefix == "http" || prefix == "http2" || prefix == "grpc" || prefix == "http_proxy":
		return false
	}
	return wellKnownTCPPorts[sp.port]
}

// LabelTLSMode is the label the injector puts on every pod it gives a
// sidecar (manifests/charts/istio-control/istio-discovery/files/injection-template.yaml):
// a selector with it picks only pods with sidecars.
const LabelTLSMode = "security.istio.io/tlsMode"

// injectedLabels are a pod template's labels as the injector leaves them.
func injectedLabels(labels map[string]string) map[string]string {
	if _, ok := labels[LabelTLSMode]; ok {
		return labels
	}
	out := make(map[string]string, len(labels)+1)
	for k, v := range labels {
		out[k] = v
	}
	out[LabelTLSMode] = "istio"
	return out
}
