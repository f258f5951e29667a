// Package health reads what the cluster says about applied objects: whether
// a waypoint really serves traffic, and what istiod wrote back in status
// conditions (Gateway Programmed, Service istio.io/WaypointBound,
// AuthorizationPolicy ZtunnelAccepted and WaypointAccepted, HTTPRoute parent
// conditions).
//
// A condition's reason and message count as much as its status: a True
// condition with reason UnsupportedValue or PartiallyInvalid is unhealthy.
// Gateway Programmed and Service WaypointBound stay True after a waypoint has
// lost its pods, so a waypoint is ready only when its Deployment has
// available replicas and its Service has ready endpoints.
//
// It reads every status through apply.Status, which decodes the status a
// slim informer copy keeps encoded. It never applies or deletes anything.
package health
