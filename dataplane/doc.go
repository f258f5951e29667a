// Package dataplane owns the bundled, pinned ztunnel and waypoint proxy
// versions and their staged rollout: waypoints namespace by namespace,
// ztunnel node by node, each stage behind gates.
//
// It never renders routes or policies.
package dataplane
