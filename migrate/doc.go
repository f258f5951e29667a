// Package migrate plans the move of a sidecar-mode Istio configuration to
// ambient: it reads the configuration, writes the meshcd spec repository
// that keeps its routing and its access, reports what does not carry over,
// proves with the access model that every stage of the move allows and
// denies what the sidecars did, and lays the move out as stages an operator
// merges one commit at a time, namespace by namespace.
//
// What it translates:
//   - A mesh VirtualService on one Service, with DestinationRule subsets:
//     the subsets it routes to become versions (per-version Services), its
//     rules routes with their header, path-prefix and method matches and
//     weights, its timeout and retries the resilience, a fault on every
//     request the faults. Anything else (rewrites, mirrors, other hosts, a
//     fault on some requests) keeps the VirtualService as plain YAML, which
//     the waypoint serves.
//   - DestinationRule connection pools and outlier detection: the circuit
//     breaker. ISTIO_MUTUAL is dropped (ztunnel always speaks mTLS).
//   - An ALLOW AuthorizationPolicy whose selector picks the pods of exactly
//     one Service and whose rules name service accounts, namespaces, IP
//     blocks, ports, methods and paths: that MeshService's access rules; an
//     empty namespace-wide ALLOW: defaultDeny. Any other policy stays plain
//     YAML, re-targeted: a copy with targetRefs on the waypoint, the
//     original at ztunnel cut to what ztunnel enforces, and the waypoint
//     admitted at ztunnel.
//   - A namespace-wide PeerAuthentication: the namespace's mtls.
//   - RequestAuthentication: moved from selector to targetRefs.
//
// A namespace gets a waypoint when anything in it needs L7. Application
// objects (Deployments, Services, ServiceAccounts) are not written: they
// stay with their owners and are read as context.
//
// What it never does: talk to a cluster or write outside the output
// directory.
package migrate
