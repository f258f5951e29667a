// Package inventory records which objects meshcd applied, so that what was
// removed from the spec can be pruned and nothing it owned is forgotten.
//
// An inventory is a list of object ids (namespace_name_group_kind, as
// cli-utils spells them) with their API version and whether meshcd owns the
// whole object or only its labels. It is kept in a ConfigMap in meshcd's
// namespace. The package computes stale entries (old − new) and reads and
// writes the ConfigMap; it never applies or deletes the objects themselves.
package inventory
