// Package localcluster runs a real Kubernetes control plane on loopback for
// meshcd's tests and demo: etcd, kube-apiserver with authentication and
// RBAC, kube-controller-manager, kube-scheduler, kwok simulating nodes so
// that Deployments get ready pods and endpoints, the Gateway API and Istio
// CRDs, and istiod itself writing status back. All of it is built from Go
// modules by hack/tools/build.sh.
//
// Every port is free-picked, so two clusters run side by side; every
// process runs in its own process group and Stop leaves none behind.
//
// It is test and development tooling; the product never imports it.
package localcluster
