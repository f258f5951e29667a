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
// labelled) never comes from a cache.
//
// Of meshcd's own objects the informers keep what is read while an object
// is unchanged: apiVersion, kind, metadata and status. The apply compares
// an object only when its resourceVersion moved, and reads it whole from
// the API server then (apply.Complete); health reads status. Of
// managedFields they keep only other managers' entries on the main
// resource, which the apply reads to find fields they added (package
// foreign). Field names and values are shared between the cached objects.
package lister
