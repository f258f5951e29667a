package inventory

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/fluxcd/cli-utils/pkg/object"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/internal/contentkey"
)

// Entry is one object meshcd applied.
type Entry struct {
	// ID is the object's namespace_name_group_kind.
	ID string `json:"id"`
	// Version is the API version it was applied with.
	Version string `json:"v"`
	// Partial is set when meshcd owns only the object's labels; pruning it
	// removes those labels and never deletes the object.
	Partial bool `json:"partial,omitempty"`
}

// Inventory is the set of objects meshcd owns, sorted by id, and the
// state of the mass-prune guard.
type Inventory struct {
	Entries []Entry `json:"entries"`
	// Confirmed is how many entries the inventory held when a reconcile
	// last applied and pruned everything it meant to: the share a prune
	// may take is measured against it, never against old ∪ new, which a
	// held prune would inflate.
	Confirmed int `json:"confirmed,omitempty"`
	// Held is the prune the guard holds, on every reconcile, until an
	// operator allows exactly its entries.
	Held *Held `json:"held,omitempty"`
	// Allowed is the digest of the held prune an operator allowed
	// (meshcd allow-prune); a prune of other entries is not allowed by it.
	Allowed string `json:"allowed,omitempty"`
}

// Held is a prune the mass-prune guard refused.
type Held struct {
	// Digest names exactly the entries held (Digest).
	Digest string `json:"digest"`
	// Count is how many entries are held.
	Count int `json:"count"`
	// Reason says why the guard held them.
	Reason string `json:"reason"`
}

// Digest names a set of entries: equal sets have equal digests, whatever
// their order, and any other set another digest.
func Digest(entries []Entry) string {
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	slices.Sort(ids)
	h := sha256.New()
	for _, id := range ids {
		h.Write([]byte(id))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Without returns inv less the entries with the ids of gone, keeping the
// guard's state.
func (inv *Inventory) Without(gone []Entry) *Inventory {
	out := *inv
	out.Entries = Minus(inv.Entries, gone)
	return &out
}

// Minus returns the entries of entries whose ids drop does not hold, in
// their order.
func Minus(entries, drop []Entry) []Entry {
	ids := make(map[string]bool, len(drop))
	for _, e := range drop {
		ids[e.ID] = true
	}
	var out []Entry
	for _, e := range entries {
		if !ids[e.ID] {
			out = append(out, e)
		}
	}
	return out
}

// New returns the inventory of objs.
func New(objs []*unstructured.Unstructured) (*Inventory, error) {
	inv := &Inventory{Entries: make([]Entry, 0, len(objs))}
	for _, o := range objs {
		id, err := object.RuntimeToObjMeta(o)
		if err != nil {
			return nil, fmt.Errorf("%s %s has no usable identity: %w", o.GetKind(), o.GetName(), err)
		}
		inv.Entries = append(inv.Entries, Entry{
			ID:      id.String(),
			Version: o.GroupVersionKind().Version,
			Partial: o.GetAnnotations()[ambient.AnnotationOwnership] == ambient.OwnershipPartial,
		})
	}
	inv.sort()
	return inv, nil
}

// KeyOf is the key of what New reads off objs: two lists of objects with
// the same identities, in the same order, have the same key.
func KeyOf(objs []*unstructured.Unstructured) contentkey.Key {
	keys := make([]contentkey.Key, 0, 5*len(objs))
	for _, o := range objs {
		meta, _ := o.Object["metadata"].(map[string]any)
		annotations, _ := meta["annotations"].(map[string]any)
		keys = append(keys, contentkey.Of(o.Object["apiVersion"]), contentkey.Of(o.Object["kind"]),
			contentkey.Of(meta["namespace"]), contentkey.Of(meta["name"]), contentkey.Of(annotations[ambient.AnnotationOwnership]))
	}
	return contentkey.Combine(keys...)
}

func (inv *Inventory) sort() {
	sort.Slice(inv.Entries, func(i, j int) bool { return inv.Entries[i].ID < inv.Entries[j].ID })
}

// Len is the number of entries.
func (inv *Inventory) Len() int { return len(inv.Entries) }

// Stale returns the entries of inv that next does not hold: the objects to
// prune when next replaces inv.
func (inv *Inventory) Stale(next *Inventory) []Entry { return Minus(inv.Entries, next.Entries) }

// Union returns every entry of inv and other; other's version wins for an
// object in both, and the guard's state is inv's. It is what meshcd stores
// before applying, so that an apply that fails half way forgets neither
// the old objects nor the new.
func (inv *Inventory) Union(other *Inventory) *Inventory {
	a, b := sorted(inv.Entries), sorted(other.Entries)
	out := &Inventory{Entries: make([]Entry, 0, max(len(a), len(b))), Confirmed: inv.Confirmed, Held: inv.Held, Allowed: inv.Allowed}
	add := func(e Entry) {
		if n := len(out.Entries); n > 0 && out.Entries[n-1].ID == e.ID {
			out.Entries[n-1] = e
			return
		}
		out.Entries = append(out.Entries, e)
	}
	// Both are sorted by id: merge them.
	for len(a) > 0 || len(b) > 0 {
		switch {
		case len(b) == 0 || len(a) > 0 && a[0].ID < b[0].ID:
			add(a[0])
			a = a[1:]
		case len(a) == 0 || b[0].ID < a[0].ID:
			add(b[0])
			b = b[1:]
		default: // the same object: other's entry wins
			add(b[0])
			a, b = a[1:], b[1:]
		}
	}
	return out
}

// sorted returns entries sorted by id: entries itself when they are, else
// a sorted copy.
func sorted(entries []Entry) []Entry {
	less := func(a, b Entry) int { return strings.Compare(a.ID, b.ID) }
	if slices.IsSortedFunc(entries, less) {
		return entries
	}
	return slices.SortedStableFunc(slices.Values(entries), less)
}

// Object returns a stub of the entry's object: its identity and, for a
// partial entry, the ownership annotation. It is enough to get, delete or
// strip the labels of the object.
func (e Entry) Object() (*unstructured.Unstructured, error) {
	id, err := object.ParseObjMetadata(e.ID)
	if err != nil {
		return nil, fmt.Errorf("inventory entry %q is malformed: %w", e.ID, err)
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: id.GroupKind.Group, Version: e.Version, Kind: id.GroupKind.Kind})
	u.SetNamespace(id.Namespace)
	u.SetName(id.Name)
	if e.Partial {
		u.SetAnnotations(map[string]string{ambient.AnnotationOwnership: ambient.OwnershipPartial})
	}
	return u, nil
}

// String renders the entry as "Kind namespace/name".
func (e Entry) String() string {
	id, err := object.ParseObjMetadata(e.ID)
	if err != nil {
		return e.ID
	}
	if id.Namespace == "" {
		return id.GroupKind.Kind + " " + id.Name
	}
	return id.GroupKind.Kind + " " + id.Namespace + "/" + id.Name
}
