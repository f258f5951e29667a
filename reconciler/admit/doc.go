// Package admit decides which objects a spec repository may have meshcd
// write. A mesh repository has no business granting permissions, so by
// default it refuses RBAC objects, Secrets, admission webhook
// configurations, CustomResourceDefinitions and every cluster-scoped kind
// other than Namespace (of which meshcd owns only labels); the mesh kinds
// and ordinary namespaced kinds pass. An allowlist in meshcd's own
// configuration, never in the repository, admits more, and a set of
// namespaces can bound what a source may touch.
//
// It never reads the cluster itself: the caller says which kinds are
// namespaced.
package admit
