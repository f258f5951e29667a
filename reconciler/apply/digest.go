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
