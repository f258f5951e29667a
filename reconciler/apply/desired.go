package apply

import (
	"encoding/json"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/internal/contentkey"
)

// Desired is an object meshcd wants and the digest Stamp gives it, held
// without a stamped copy: Stamped makes one for a write. It keeps Object's
// content key from when the digest was taken, so an Object changed since
// is never taken for what the digest names: Current and Slim then vouch
// for nothing, and Stamped stamps it afresh.
type Desired struct {
	// Object is the object as rendered: shared, not copied.
	Object *unstructured.Unstructured
	// Digest is what Stamp writes into Object's digest annotation.
	Digest  string
	content contentkey.Key
}

// NewDesired returns obj with its digest.
func NewDesired(obj *unstructured.Unstructured) (Desired, error) {
	return newDesired(obj, contentkey.Of(obj.Object))
}

// newDesired returns obj, whose content key is key, with its digest. An
// object that carries a digest annotation of its own (copied from a live
// object, say) is held as its stamped copy, so that Object holds exactly
// the fields an apply sends.
func newDesired(obj *unstructured.Unstructured, key contentkey.Key) (Desired, error) {
	stamped, err := stampedCopy(obj)
	if err != nil {
		return Desired{}, err
	}
	d := Desired{Object: obj, Digest: DigestOf(stamped), content: key}
	if DigestOf(obj) != "" {
		d.Object, d.content = stamped, contentkey.Of(stamped.Object)
	}
	return d, nil
}

// Unchanged reports whether Object still is what Digest names.
func (d Desired) Unchanged() bool {
	return contentkey.Of(d.Object.Object) == d.content
}

// Stamped returns a deep copy of Object stamped with its digest, the
// object an apply sends; it is the caller's to change.
func (d Desired) Stamped() (*unstructured.Unstructured, error) {
	out := d.Object.DeepCopy()
	if !d.Unchanged() {
		return out, Stamp(out)
	}
	annotations := out.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[ambient.AnnotationDigest] = d.Digest
	out.SetAnnotations(annotations)
	return out, nil
}

// Current reports whether live already is d: it carries d's digest and
// every field of d with the same value, or it is a slim copy that did when
// it was made (Slim). Fields the server added (defaults, status, other
// managers' fields) do not matter. An Object changed since its digest was
// taken is current nowhere.
func (d Desired) Current(live *unstructured.Unstructured) bool {
	return d.Unchanged() && d.current(live)
}

// current is Current for an Object known to be unchanged.
func (d Desired) current(live *unstructured.Unstructured) bool {
	if live == nil || DigestOf(live) != d.Digest {
		return false
	}
	if held, _ := live.Object[bodyHeld].(bool); held {
		return true
	}
	return subset(d.Object.Object, live.Object)
}

// bodyHeld marks a slim copy: its top-level key cannot be a field of any
// Kubernetes object.
const bodyHeld = "meshcd.dev/body-held"

// StatusHeld is the top-level key under which a slim copy keeps its status,
// JSON-encoded (Slim): one string in place of a map per condition, route
// parent and address. Status reads it.
const StatusHeld = "meshcd.dev/status"

// Slim drops from live, in place, every top-level field but apiVersion,
// kind and metadata, keeps its status encoded under StatusHeld, and marks it
// as holding d, when it is current (Current). It reports whether it did. A
// digest is of a desired object's whole content, so the mark holds for
// every desired object with live's digest and for no other: Current then
// needs no body. A cache keeps what meshcd owns this way at a fraction of
// its size. Slimming a slim copy again leaves it as it is: an informer's
// transform must be idempotent, since a reflector that streams its initial
// list transforms each object into a temporary store and again when it
// replaces the FIFO's contents with them (client-go tools/cache/reflector.go,
// watchList).
func (d Desired) Slim(live *unstructured.Unstructured) bool {
	if !d.Current(live) {
		return false
	}
	if held, _ := live.Object[bodyHeld].(bool); held {
		return true
	}
	var status []byte
	if s, ok := live.Object["status"]; ok {
		var err error
		if status, err = json.Marshal(s); err != nil {
			return false
		}
	}
	for k := range live.Object {
		switch k {
		case "apiVersion", "kind", "metadata":
		default:
			delete(live.Object, k)
		}
	}
	if status != nil {
		live.Object[StatusHeld] = string(status)
	}
	live.Object[bodyHeld] = true
	return true
}

// Status returns live's status, whether live is whole or slim (Slim): a
// slim copy's is decoded afresh, a whole object's is its own map, to read
// only. An object without a status, or with one that does not decode, has
// none.
func Status(live *unstructured.Unstructured) map[string]any {
	if s, ok := live.Object["status"].(map[string]any); ok {
		return s
	}
	enc, ok := live.Object[StatusHeld].(string)
	if !ok {
		return nil
	}
	var s map[string]any
	if err := utiljson.Unmarshal([]byte(enc), &s); err != nil {
		return nil
	}
	return s
}

// Objects returns the objects of ds, as rendered.
func Objects(ds []Desired) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, len(ds))
	for i, d := range ds {
		out[i] = d.Object
	}
	return out
}
