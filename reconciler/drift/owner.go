package drift

import (
	"encoding/json"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/ambient"
)

// changedBy names the field manager, other than meshcd, that owns the field
// at pointer, or that wrote the object last when nobody owns the field any
// more (a removed field), with the time of its write.
//
// A field meshcd itself still owns, and no one else does, was last written
// by meshcd: it is reported as "meshcd", which is no drift at all.
func changedBy(live *unstructured.Unstructured, pointer string) (string, *time.Time) {
	segs := splitPointer(pointer)
	var (
		best      string
		bestTime  *time.Time
		bestDepth = -1
		ours      bool
	)
	for _, mf := range live.GetManagedFields() {
		if mf.FieldsV1 == nil {
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal(mf.FieldsV1.Raw, &fields); err != nil {
			continue
		}
		depth := ownedDepth(fields, segs)
		if mf.Manager == ambient.FieldManager {
			ours = depth == len(segs)
			continue
		}
		var at *time.Time
		if mf.Time != nil {
			t := mf.Time.Time
			at = &t
		}
		if depth > bestDepth || (depth == bestDepth && later(at, bestTime)) {
			best, bestTime, bestDepth = mf.Manager, at, depth
		}
	}
	if ours && bestDepth < len(segs) {
		return ambient.FieldManager, nil
	}
	return best, bestTime
}

// ownedDepth is how many leading segments of the path the fieldsV1 set
// covers, len(segs) when it owns the field itself. Lists keyed by k:/v:/i:
// are not followed: ownership of the list counts.
func ownedDepth(fields map[string]any, segs []string) int {
	cur := fields
	for i, s := range segs {
		next, ok := cur["f:"+s].(map[string]any)
		if !ok {
			return i
		}
		cur = next
	}
	return len(segs)
}

func later(a, b *time.Time) bool {
	if a == nil {
		return false
	}
	return b == nil || a.After(*b)
}
