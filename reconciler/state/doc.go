// Package state keeps meshcd's own state — an instance's inventory, its
// status and its rollouts' states — in ConfigMaps of meshcd's namespace.
//
// Every store writes the same way: read, change, and write back with the
// resourceVersion read as a precondition, under its own field manager
// (FieldManager), never the one that applies a repository. A concurrent
// writer (a second process of the same instance, `meshcd suspend` in the
// middle of a reconcile) makes the write conflict; the store reads again
// and applies the change to what the other wrote, so no update is lost.
//
// The package knows nothing of what the state means; it never applies,
// deletes or reads anything but its ConfigMaps.
package state
