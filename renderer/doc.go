// Package renderer turns a spec directory into the Kubernetes objects meshcd
// applies: a pure function of a filesystem.
//
// A directory with a kustomization is built with kustomize (plugins off,
// nothing loaded from outside the directory, panics recovered into errors);
// any other directory is read file by file. Files may hold meshcd's spec
// kinds, plain manifests, or both. The spec compiles to enrollment labels,
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
