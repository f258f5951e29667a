// Package version says which meshcd a binary is: its version and commit,
// from Go's build information or, for a release, from -ldflags -X; the Go
// it was built with; the Kubernetes, Istio and Gateway API versions its
// tests run against (hack/tools/versions.env, embedded); and the proxy
// versions it bundles. It never contacts a cluster.
package version
