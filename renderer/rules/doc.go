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
// An object referenced but absent from the input counts as missing, and the
// message says it may exist in the cluster. A namespace absent from the
// input is unknown, so rules that depend on it stay silent.
//
// It never talks to a cluster and never changes an object.
package rules
