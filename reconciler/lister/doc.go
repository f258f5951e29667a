// Package lister serves the bulk lists a reconcile reads from informers
// instead of the API server: meshcd's own objects by kind (selected by its
// managed-by label) and istiod's waypoint Deployments and EndpointSlices.
// A reconcile that changes nothing then costs no list request and no JSON
// decoding of thousands of objects. The drift watch adds its handlers to
// the same informers (Informer), so one copy of each object is held.
//
// Only a List whose label selector is exactly an informer's is served from
// it; every Get, and every other List, goes to the API server, so a
// read that must be current (the inventory, a partial object before it is
// labelled) never comes from a cache. Of managedFields the informers keep
// only other managers' entries on the main resource, which the apply reads
// to find fields they added (package foreign); meshcd's own entries and the
// subresources' are dropped. An object meshcd owns that holds, field for
// field, the desired object with its digest is kept slim: its metadata,
// its status encoded as one string (read with apply.Status), and a mark
// that it holds that object (Expect, apply.Desired.Slim). That is what a
// reconcile, the health read-back and the drift watch read of an unchanged
// object, and most of what meshcd owns is unchanged most of the time. Of a
// waypoint's Deployment and EndpointSlices, istiod's, the informers keep
// what the health read-back reads: metadata, status and endpoints.
//
// A process without informers (meshcd apply, diff, status) lists through
// Direct, a client that decodes each list response once instead of the
// four passes of client-go's unstructured decoder.
package lister
