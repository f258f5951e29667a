// Package apply applies rendered objects to a cluster with server-side
// apply, in stages, and prunes what the inventory says is stale.
//
// It applies only what changed: an object whose live copy carries the digest
// of the desired object and every desired field costs no request at all, and
// where the live copy differs the server's dry-run decides, so a field the
// server defaults never counts as drift. Fields another field manager
// added to an object meshcd owns fully, which server-side apply would keep,
// are read from the listed object's managedFields (package foreign) and
// removed with a patch bound to the listed resourceVersion. Namespaces and
// application-owned Services are applied partially (meshcd's labels only)
// and never created or deleted. Enrollment in a waypoint fails closed: an istio.io/use-waypoint
// label is written only once the waypoint it names is ready.
//
// Prune removes only what it read and judged: deletes carry the UID and
// resourceVersion of that read, label removals its resourceVersion.
//
// It never renders objects and never decides what is stale: the caller
// passes the inventory's verdict.
package apply
