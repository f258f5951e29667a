package apply

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/meshspec"
)

// Stamp sets the digest annotation of obj to a digest of everything else in
// it. Equal desired objects get equal digests: encoding/json sorts map keys.
func Stamp(obj *unstructured.Unstructured) error {
	annotations := obj.GetAnnotations()
	delete(annotations, ambient.AnnotationDigest)
	if len(annotations) == 0 {
		annotations = nil // an empty map would encode as {} and change the digest
	}
	obj.SetAnnotations(annotations)
	raw, err := json.Marshal(obj.Object)
	if err != nil {
		return fmt.Errorf("%s digest failed: %w", meshspec.RefOf(obj), err)
	}
	sum := sha256.Sum256(raw)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[ambient.AnnotationDigest] = hex.EncodeToString(sum[:12])
	obj.SetAnnotations(annotations)
	return nil
}

// Current reports whether live already is desired: it carries desired's
// digest and every desired field with the same value, or it is a slim copy
// that did when it was made (Slim). Fields the server added (defaults,
// status, other managers' fields) do not matter.
func Current(desired, live *unstructured.Unstructured) bool {
	if live == nil || DigestOf(live) != DigestOf(desired) {
		return false
	}
	if held, _ := live.Object[bodyHeld].(bool); held {
		return true
	}
	return subset(desired.Object, live.Object)
}

// bodyHeld marks a slim copy: its top-level key cannot be a field of any
// Kubernetes object.
const bodyHeld = "meshcd.dev/body-held"

// Slim drops from live, in place, every top-level field but apiVersion,
// kind, metadata and status, and marks it as holding desired, when it
// does: when it carries desired's digest and every desired field with the
// same value. It reports whether it did. A digest is of a desired object's
// whole content, so the mark holds for every desired object with live's
// digest and for no other: Current then needs no body. A cache keeps what
// meshcd owns this way at a fraction of its size.
func Slim(desired, live *unstructured.Unstructured) bool {
	if !Current(desired, live) {
		return false
	}
	for k := range live.Object {
		switch k {
		case "apiVersion", "kind", "metadata", "status":
		default:
			delete(live.Object, k)
		}
	}
	live.Object[bodyHeld] = true
	return true
}

// DigestOf reads the digest annotation without copying the annotations,
// as GetAnnotations does.
func DigestOf(u *unstructured.Unstructured) string {
	meta, _ := u.Object["metadata"].(map[string]any)
	annotations, _ := meta["annotations"].(map[string]any)
	d, _ := annotations[ambient.AnnotationDigest].(string)
	return d
}

// subset reports whether every field of want is in have with an equal value.
func subset(want, have any) bool {
	switch w := want.(type) {
	case nil:
		return true
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			hv, ok := h[k]
			if !ok && wv != nil {
				return false
			}
			if !subset(wv, hv) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for i := range w {
			if !subset(w[i], h[i]) {
				return false
			}
		}
		return true
	}
	if wf, ok := number(want); ok {
		hf, ok := number(have)
		return ok && wf == hf
	}
	return want == have
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}
