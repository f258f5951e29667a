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
// resumes in the same stage. A stage moves its namespaces by pinning the
// waypoint Gateways' sidecar.istio.io/proxyImage annotation, which istiod
// renders into the waypoint Deployments; Pinned writes the pins into every
// render so that a reconcile never undoes a rollout. After the waypoint
// stages, the ztunnel stage sets the ztunnel DaemonSet's image and, with
// updateStrategy OnDelete, replaces its pods one node at a time.
//
// It never renders routes or policies.
package dataplane
