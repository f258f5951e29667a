// Package renderer turns a spec directory into the Kubernetes objects meshcd
// applies: a pure function of a filesystem.
//
// A directory with a kustomization is built with kustomize (plugins off,
// nothing loaded from outside the directory, panics recovered into errors);
// any other directory is read file by file, as kubectl apply -R reads it:
// every file ending in .yaml, .yml or .json in any letter case, hidden files
// and directories included; only .git is passed over. A file none of whose
// documents names an apiVersion or a kind (a CI workflow, package.json) is
// not a manifest and is passed over too. Every file not read is listed,
// with why, in the Bundle's Notes, and an input with no manifest at all
// gets a warning there. Files may hold meshcd's spec kinds, plain
// manifests, Lists of them, or all of these.
//
// A plain manifest of a namespaced kind that names no namespace is placed
// in Options.Namespace ("default"), as kubectl places it, before anything
// reads it. Scope is decided offline, from a table of the kinds meshcd
// knows and the CustomResourceDefinitions of the input itself; a kind in
// neither is left as written. The spec compiles to enrollment labels,
// waypoint Gateways, per-version Services, HTTPRoutes, the VirtualService and
// DestinationRule escape hatches, and Istio policies, each placed where
// ambient enforces it: an access rule with only L4 attributes becomes a
// ztunnel selector policy; one with an L7 attribute a waypoint targetRefs
// policy, plus a ztunnel rule admitting the waypoint. Plain manifests pass
// through. The output is sorted and carries meshcd's ownership labels.
//
// It never talks to a cluster and never validates against the rule
// catalogue: that is renderer/rules' job.
package renderer
