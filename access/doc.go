// Package access computes effective access: for a caller identity and a
// Service port, whether a request gets through, where it is enforced (the
// waypoint or the destination's ztunnel) and which AuthorizationPolicies
// decided it. It is a pure function of rendered objects, meshcd's own and
// plain Istio YAML alike, and never talks to a cluster.
//
// It follows istiod's ambient semantics, in the pinned istio module
// (istio.io/istio@v0.0.0-20260827124520-eed52ebb66ad):
//
//   - ztunnel receives only policies without targetRefs, and only ALLOW and
//     DENY ones (CUSTOM and AUDIT are refused with UnsupportedValue); in an
//     ALLOW policy a rule with an HTTP attribute is omitted, in a DENY policy
//     the HTTP attributes are dropped and the rest enforced, so it denies more;
//     trustDomains is not translated at all
//     (pilot/pkg/serviceregistry/ambient/authorization.go,
//     convertAuthorizationPolicy and handleRule).
//   - A selector policy applies to the workloads of its namespace, or of every
//     namespace from the root namespace, whose labels it selects; a policy with
//     neither selector nor targetRefs applies to its namespace, or to the mesh
//     from the root namespace (pilot/pkg/serviceregistry/ambient/workloads.go,
//     buildWorkloadPolicies).
//   - A waypoint takes only targetRefs policies: a Service in the policy's
//     namespace, the waypoint Gateway by name in its namespace, or the
//     istio-waypoint GatewayClass from the root namespace
//     (pilot/pkg/model/policyattachment.go, ShouldAttachPolicy). A Service
//     uses a waypoint when it or its Namespace carries istio.io/use-waypoint
//     and the Gateway's istio.io/waypoint-for admits service traffic.
//   - Evaluation is CUSTOM, then DENY, then ALLOW; with no ALLOW policy the
//     request is allowed; an ALLOW or DENY policy without rules matches
//     nothing (pilot/pkg/security/authz/builder/builder.go; the Groups of
//     pkg/workloadapi/security/authorization.proto).
//   - The waypoint hop: behind a waypoint, the destination's ztunnel sees the
//     waypoint's identity, service account = the Gateway's name unless
//     annotated gateway.istio.io/service-account
//     (pilot/pkg/config/kube/gatewaycommon/deploymentcontroller.go and
//     manifests/charts/istio-control/istio-discovery/files/waypoint.yaml).
//   - PeerAuthentication: a caller outside the mesh has no identity; under an
//     effective STRICT mode ztunnel refuses it, otherwise identity rules cannot
//     match it (pilot/pkg/serviceregistry/ambient/authorization.go,
//     convertedSelectorPeerAuthentications).
//
// With Options.Sidecars a destination whose pods run with sidecars is
// decided at its sidecar, with the semantics istiod builds for sidecars
// (pilot/pkg/security/authz/builder, ShouldAttachPolicy): selector and
// namespace-wide policies with their HTTP rules intact, targetRefs policies
// ignored, no waypoint hop (sidecar.go says what is followed). Without it
// such a destination is undecided.
//
// Where the model cannot decide it says so rather than guessing: a CUSTOM
// policy at the waypoint (an external provider decides), a namespace whose
// dataplane mode is not in the input, a waypoint the input does not hold,
// source IPs, path templates, sidecar-injected destinations without
// Options.Sidecars. A request
// attribute a rule examines but the question left open (method, path, a
// header, the JWT) makes the verdict "depends" and names the attribute.
//
// Besides verdicts it finds rules that do not do what they state (Shadows,
// DeadRules, Openings, Bypasses), and answers for one hop (AtZtunnel,
// WaypointFor) so that a change can be judged while it is applied; the
// rule catalogue (renderer/rules) turns these into findings. This package
// never imports the catalogue.
//
// What it assumes: waypoints are running (a missing or unready waypoint fails
// open, which the rule catalogue reports, not this package);
// PILOT_AUTO_ALLOW_WAYPOINT_POLICY is off (its default); a waypoint compares
// ports with the Service port, ztunnel with the workload's target port.
package access
