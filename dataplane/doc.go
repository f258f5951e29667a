// Package dataplane owns the bundled, pinned ztunnel and waypoint proxy
// versions and their staged rollout: waypoints namespace by namespace,
// each stage behind gates, then ztunnel node by node.
//
// The catalogue (bundles.yaml, embedded) pins the images of each supported
// Istio release. Preflight resolves a DataplaneRollout's stages against the
// live namespaces and the rendered waypoints and checks the version skew.
// Runner.Step moves a rollout by one transition per reconcile — Pending →
// Progressing (stage N) → Paused | Succeeded | Failed → RolledBack — and
// stores its State in a ConfigMap before acting, so a restarted meshcd
// resumes in the same stage. A "replace" stage moves its namespaces by
// pinning the waypoint Gateways' sidecar.istio.io/proxyImage annotation,
// which istiod renders into the waypoint Deployments. A "canary" stage runs
// a second, pinned waypoint beside each one and moves new connections to it
// step by step with the istio.io/use-waypoint-canary label and weight
// annotation, then promotes. Overlay writes what the states say into every
// render, and the reconcile applies and prunes it like the rest, so that a
// reconcile never undoes a rollout and a removed canary is pruned only once
// its label is gone. After the waypoint stages, the ztunnel stage sets the
// ztunnel DaemonSet's image and, with updateStrategy OnDelete, replaces its
// pods one node at a time; a ztunnel stage that fails or is aborted goes
// back the same way, node by node, to the previous image.
//
// It never renders routes or policies.
package dataplane
