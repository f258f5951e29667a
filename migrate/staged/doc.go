// Package staged holds the cluster test of meshcd migrate's staged plan: a
// sidecar-mode namespace on the local cluster, moved to ambient one stage
// at a time with the reconciler, and checked at each stage against
// istiod's own ztunnel configuration and the access model. It has no code
// of its own.
package staged
