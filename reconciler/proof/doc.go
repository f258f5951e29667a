// Package proof checks, after an apply, that istiod computed the access the
// model computed. For every caller identity and Service port the model
// names, it reads the Authorization and Address resources istiod serves to
// ztunnel, decides each pair as ztunnel would, and compares that with the
// model's decision at the destination's ztunnel. For every HTTP Service port
// the model routes through a waypoint, it reads the listeners istiod serves
// to that waypoint and compares the ALLOW and DENY policies in the port's
// RBAC filters with those the model attaches. A difference is an unhealthy
// report that shows both views. It never applies anything.
//
// What it does not cover: the waypoint's decisions themselves (it compares
// which policies a waypoint enforces, not how Envoy's RBAC matches methods,
// paths, headers or JWTs), TCP ports behind a waypoint, CUSTOM and AUDIT
// policies, the canary waypoint's own listeners (at the ztunnel it checks
// that each weighted waypoint's identity is admitted), and source or
// destination IP matches (such a pair is not compared).
//
// The istiod interface: istiod's plaintext gRPC xDS port (15010, the local
// cluster's --grpcAddr) with Delta ADS streams: one that subscribes, as a
// ztunnel node, to every type.googleapis.com/istio.security.Authorization
// and type.googleapis.com/istio.workload.Address; one per waypoint that
// subscribes, as one of the waypoint's pods, to its Listeners. That port does not
// authenticate callers (pkg/security/authentication.go, pilot/pkg/xds/auth.go
// in the pinned istio module), so on a real cluster the operator reaches it
// through a port-forward; the check is off without an address.
//
// The resources are decoded with the pinned istio module's own generated
// types (pkg/workloadapi, pkg/workloadapi/security), which depend on the
// protobuf runtime only. Istio's xDS client, pkg/adsc, is not used: linking
// it into meshcd, measured on this module, added 925 packages, grew the
// binary from 103 MB to 186 MB and took 9 min 47 s to build cold on 2 cores;
// the workload protos with gRPC and go-control-plane's discovery, listener,
// HTTP connection manager and RBAC types add 111 packages and 18 MB. The
// stream itself is a few lines (fetch.go).
//
// How ztunnel decides follows the proto and the code that produces it
// (pkg/workloadapi/security/authorization.proto;
// pilot/pkg/serviceregistry/ambient/authorization.go, convertAuthorizationPolicy
// and handleRule; policies.go for the static STRICT policy; workloads.go,
// buildWorkloadPolicies): a policy applies to a workload when its scope is
// GLOBAL, or NAMESPACE in the workload's namespace, or when the Workload
// lists it by namespace/name (selector policies and converted
// PeerAuthentications); dry-run policies are not enforced; a DENY that
// matches refuses, then with no ALLOW the connection is allowed, else an
// ALLOW must match. A policy matches when one of its groups does (one group
// per AuthorizationPolicy rule), a group when all of its rules do (from, to,
// and each when condition), a rule when one of its matches does, and a match
// when each field it sets matches: one of the values, none of the not_
// values. A caller without identity matches no positive identity value and
// no negated one, which is what makes the static STRICT policy (DENY
// not_principals: presence) refuse it. Source and destination IP matches are
// not decided: a pair that reaches one is not compared.
package proof
