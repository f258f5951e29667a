// Package drift finds where the cluster differs from what meshcd applied,
// says who changed it and when, and watches the objects meshcd owns so a
// manual change is noticed as it happens.
//
// Drift is judged against the server's dry-run of the desired object, so a
// field the server defaults is never drift. Who changed a field comes from
// the live object's managedFields, and so are the fields another manager
// added to an object meshcd owns fully, which a dry-run keeps (package
// foreign says which fields count). Reports are rendered as text, JSON and
// Markdown.
//
// It judges the objects the spec renders. A stale object whose label
// another tool removed is prune's to report, not drift's.
//
// It never corrects drift itself: the caller decides, by mode, whether to
// re-apply. Fights tells the caller when its corrections keep being
// reverted by another manager, so that it stops instead of looping.
package drift
