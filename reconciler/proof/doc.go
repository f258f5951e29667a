// Package proof checks, after an apply, that istiod computed for ztunnel the
// same access decisions as the access model: for every caller identity and
// Service port the model names, it reads the Authorization and Address
// resources istiod serves to ztunnel, decides each pair as ztunnel would,
// and compares that with the model's decision at the destination's ztunnel.
// A pair they decide differently is an unhealthy report that shows both
// views. It never applies anything, and it does not cover the waypoints' own
// configuration (their RBAC filters come through LDS, which it does not
// read): at a waypoint hop it compares where traffic goes (istiod's Service
// waypoint and weighted waypoints) and the decision at the ztunnel behind it.
//
// The istiod interface: istiod's plaintext gRPC xDS port (15010, the local
// cluster's --grpcAddr) with one Delta ADS stream that subscribes, as a
// ztunnel node, to every type.googleapis.com/istio.security.Authorization
// and type.googleapis.com/istio.workload.Address. That port does not
// authenticate callers (pkg/security/authentication.go, pilot/pkg/xds/auth.go
// in the pinned istio module), so on a real cluster the operator reaches it
// through a port-forward; the check is off without an address.
//
// The resources are decoded with the pinned istio module's own generated
// types (pkg/workloadapi, pkg/workloadapi/security), which depend on the
// protobuf runtime only. Istio's xDS client, pkg/adsc, is not used: linking
// it into meshcd, measured on this module, added 925 packages, grew the
// binary from 103 MB to 186 MB and took 9 min 47 s to build cold on 2 cores;
// the workload protos with gRPC and go-control-plane's discovery service add
// 94 packages and 10 MB. The stream itself is a few lines (fetch.go).
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
