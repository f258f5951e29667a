// Package foreign finds the fields that field managers other than meshcd
// added to an object meshcd owns fully, and writes the patch that removes
// them.
//
// Server-side apply keeps a field another manager owns, and a server
// dry-run keeps it too, so a comparison of values never shows such a
// field: a rule added with `kubectl patch` to an empty default-deny
// AuthorizationPolicy opens the namespace and no diff would say so. The
// live object's metadata.managedFields does: it is read from the object
// already listed, with no request of its own.
//
// What counts as added, precisely: a field owned by a managedFields entry
// of another manager on the main resource (no subresource), that the
// desired object does not set, and that is
//   - outside status and metadata, or
//   - a label or annotation whose key is Istio's (`istio.io/…` or
//     `<x>.istio.io/…`), since istiod reads them: `istio.io/dry-run` turns
//     an AuthorizationPolicy off, `istio.io/use-waypoint` moves a Service's
//     traffic, `sidecar.istio.io/proxyImage` repins a waypoint.
//
// What does not count: status and every subresource entry (istiod's
// conditions, a scale written through /scale); other metadata (finalizers
// and owner references written by controllers, other teams' labels and
// annotations, which Istio ignores); fields the desired object sets, whose
// changed values the server dry-run shows and, when another manager took
// them, are an apply conflict; fields meshcd's own field manager wrote with
// an update (the dataplane's patches). Server-allocated fields, such as a
// Service's clusterIP, belong to no manager. A list entry is matched to a
// desired entry by the key fields the desired entry sets, so an entry that
// differs only in a key field the server defaults (a Service port's
// protocol) is not told apart.
//
// It never sends a request: the caller sends the patch.
package foreign
