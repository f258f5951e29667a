// Package rules is the ambient rule catalogue: the checks that tell, before
// anything reaches a cluster, where rendered objects break the rules ambient
// really enforces — L7 policy at ztunnel, routes without a waypoint, a
// waypoint that does not fit its consumer, two routing APIs for one host.
//
// It runs on rendered objects, so hand-written Istio and Gateway API YAML is
// checked as well as what meshcd renders. Each finding has a stable id from
// catalogue.yaml, a level, the object and, where known, its file and line,
// and one line that says what to do. Ids are never reused.
//
// Whether a pod is ambient, sidecar-injected or mesh-neutral is decided in
// one place, PodMode, the way the pinned Istio decides it. An object
// referenced but absent from the input is an error only when its namespace is
// wholly in the input (or the cluster was read); otherwise it is a warning
// (AMB050) that names what to check in the cluster. A namespace absent from
// the input is unknown, so rules that depend on its mode stay silent. A
// manifest without a namespace is in "default", as kubectl places it.
//
// AMB051-AMB054 ask the access model (package access; this package imports
// it, never the reverse) where each policy is enforced and what its rules
// can match. AMB055 judges a change rather than an input: CheckChange
// compares a base and a head render, and the plan, which has both, calls
// it; its id and template live in the catalogue with the others.
//
// It never talks to a cluster and never changes an object.
package rules
