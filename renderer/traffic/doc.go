// Package traffic reads how a route splits requests: for each rule of an
// HTTPRoute or a VirtualService, what it matches and the share of its
// requests each backend gets, computed the way istiod hands the weights to
// Envoy. It is a pure function of one object; it never talks to a cluster
// and never judges a split (the rule catalogue does).
package traffic
