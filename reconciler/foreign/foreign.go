package foreign

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/value"

	"github.com/meshcd/meshcd/ambient"
)

// Field is a field another field manager added to an object meshcd owns.
type Field struct {
	// Pointer is the field's JSON pointer in the live object, such as
	// /spec/rules or /spec/ports/1.
	Pointer string
	// Value is the field's live value.
	Value any
	// Manager is the field manager that owns it, such as kubectl-patch.
	Manager string
	// Time is when that manager last wrote the object.
	Time *time.Time
}

// String reads like "/spec/rules (kubectl-patch)".
func (f Field) String() string { return fmt.Sprintf("%s (%s)", f.Pointer, f.Manager) }

// Added returns the fields of live that other field managers added and
// desired does not set, sorted by pointer; none for an object meshcd owns
// only partly. See the package documentation for what counts.
func Added(desired, live *unstructured.Unstructured) ([]Field, error) {
	if live == nil || partial(desired) {
		return nil, nil
	}
	byPath := map[string]*Field{}
	for _, e := range live.GetManagedFields() {
		if !Other(e) {
			continue
		}
		set := &fieldpath.Set{}
		if err := set.FromJSON(bytes.NewReader(e.FieldsV1.Raw)); err != nil {
			return nil, fmt.Errorf("managedFields of field manager %q unreadable: %w", e.Manager, err)
		}
		for p := range set.All() {
			top := addedPrefix(desired.Object, p)
			if top == nil {
				continue
			}
			k := top.String()
			if f, ok := byPath[k]; ok && !later(e.Time, f.Time) {
				continue
			}
			f := &Field{Manager: e.Manager}
			if e.Time != nil {
				t := e.Time.Time
				f.Time = &t
			}
			f.Pointer, f.Value = resolve(live.Object, top)
			byPath[k] = f
		}
	}
	out := make([]Field, 0, len(byPath))
	for _, f := range byPath {
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pointer < out[j].Pointer })
	return out, nil
}

// Removal returns a JSON patch that removes the added fields from live. It
// carries live's resourceVersion, so it fails with a conflict when the
// object changed since it was read and the pointers may name other fields.
//
// Moving the fields' ownership to meshcd so that its next apply drops them
// (what fluxcd/pkg/ssa's PatchReplaceFieldsManagers and kustomize-controller's
// Cleanup.FieldManagers do) was tried first: on an AuthorizationPolicy with
// an empty spec, the apply that drops the last rule leaves spec null, which
// the CRD refuses, and the move needs every managedFields entry, which the
// informer cache does not keep. A removal does neither and is one write.
func Removal(live *unstructured.Unstructured, added []Field) ([]byte, error) {
	pointers := make([]string, len(added))
	for i, f := range added {
		pointers[i] = f.Pointer
	}
	// Entries of one list go from the last, so that the indices of the
	// others still hold.
	sort.Slice(pointers, func(i, j int) bool { return after(pointers[i], pointers[j]) })
	type op struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value,omitempty"`
	}
	ops := []op{{"replace", "/metadata/resourceVersion", live.GetResourceVersion()}}
	for _, p := range pointers {
		ops = append(ops, op{Op: "remove", Path: p})
	}
	return json.Marshal(ops)
}

// after orders JSON pointers so that of two entries of one list the later
// comes first.
func after(a, b string) bool {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for k := 0; k < len(as) && k < len(bs); k++ {
		if as[k] == bs[k] {
			continue
		}
		ai, aerr := strconv.Atoi(as[k])
		bi, berr := strconv.Atoi(bs[k])
		if aerr == nil && berr == nil {
			return ai > bi
		}
		return as[k] < bs[k]
	}
	return len(as) < len(bs)
}

// Other reports whether e is another manager's entry on the main resource:
// the only entries Added reads. A cache of live objects may drop the rest.
func Other(e metav1.ManagedFieldsEntry) bool {
	return e.Manager != ambient.FieldManager && e.Subresource == "" && e.FieldsV1 != nil
}

func partial(o *unstructured.Unstructured) bool {
	v, _, _ := unstructured.NestedFieldNoCopy(o.Object, "metadata", "annotations", ambient.AnnotationOwnership)
	return v == ambient.OwnershipPartial
}

// addedPrefix returns the shortest prefix of p that desired does not set,
// nil when p does not count or desired sets it. A label or annotation
// counts from its key on, so that another manager's other keys are never
// part of it.
func addedPrefix(desired map[string]any, p fieldpath.Path) fieldpath.Path {
	if len(p) == 0 || p[0].FieldName == nil {
		return nil
	}
	least := 1
	switch *p[0].FieldName {
	case "status":
		return nil
	case "metadata":
		if len(p) < 3 || p[1].FieldName == nil || p[2].FieldName == nil || !istioKey(*p[2].FieldName) {
			return nil
		}
		if n := *p[1].FieldName; n != "labels" && n != "annotations" {
			return nil
		}
		least = 3
	}
	var cur any = desired
	for i, pe := range p {
		next, ok := child(cur, pe)
		if !ok {
			return p[:max(i+1, least)].Copy()
		}
		cur = next
	}
	return nil
}

// istioKey reports whether a label or annotation key is in one of Istio's
// domains.
func istioKey(k string) bool {
	domain, _, ok := strings.Cut(k, "/")
	return ok && (domain == "istio.io" || strings.HasSuffix(domain, ".istio.io"))
}

// child steps from v, a desired value, to its part pe. A list entry is
// matched by the key fields the desired entry sets: a key field it leaves
// to the server's defaults matches any value.
func child(v any, pe fieldpath.PathElement) (any, bool) {
	if pe.FieldName != nil {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		c, ok := m[*pe.FieldName]
		return c, ok && c != nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, false
	}
	i := index(l, pe, true)
	if i < 0 {
		return nil, false
	}
	return l[i], true
}

// index finds pe in l, -1 when it is not there. lenient lets a key field
// missing from an entry match.
func index(l []any, pe fieldpath.PathElement, lenient bool) int {
	switch {
	case pe.Index != nil:
		if *pe.Index < len(l) {
			return *pe.Index
		}
	case pe.Value != nil:
		for i, e := range l {
			if value.Equals(value.NewValueInterface(e), *pe.Value) {
				return i
			}
		}
	case pe.Key != nil:
	entries:
		for i, e := range l {
			m, ok := e.(map[string]any)
			if !ok {
				continue
			}
			for _, f := range *pe.Key {
				v, ok := m[f.Name]
				if !ok && lenient {
					continue
				}
				if !ok || !value.Equals(value.NewValueInterface(v), f.Value) {
					continue entries
				}
			}
			return i
		}
	}
	return -1
}

// resolve returns the JSON pointer of p in live and the value there.
func resolve(live map[string]any, p fieldpath.Path) (string, any) {
	var (
		b   strings.Builder
		cur any = live
	)
	for _, pe := range p {
		b.WriteByte('/')
		if pe.FieldName != nil {
			b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(*pe.FieldName))
			m, _ := cur.(map[string]any)
			cur = m[*pe.FieldName]
			continue
		}
		l, _ := cur.([]any)
		i := index(l, pe, false)
		if i < 0 {
			// Not in the live object as read: name it as the server does.
			b.WriteString(pe.String())
			cur = nil
			continue
		}
		b.WriteString(strconv.Itoa(i))
		cur = l[i]
	}
	return b.String(), cur
}

func later(a *metav1.Time, b *time.Time) bool {
	return a != nil && (b == nil || a.After(*b))
}
