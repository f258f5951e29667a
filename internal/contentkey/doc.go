// Package contentkey digests decoded JSON content — the maps, slices and
// scalars of an unstructured object — into keys for caches that live in
// one process: equal content gets an equal key whatever its pointers, and
// a changed, added or removed field a different one. A cache keyed this
// way cannot serve a stale answer for an object changed in place.
//
// Keys are seeded at random per process (hash/maphash), so they are never
// stored or compared across processes, and no input can be crafted to
// collide with another.
package contentkey
