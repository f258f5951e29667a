package health

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/ambient"
)

// Condition is one status condition as istiod or a controller wrote it.
type Condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// conditions reads a list of conditions at path, skipping malformed entries.
func conditions(obj map[string]any, path ...string) []Condition {
	// Read in place: NestedSlice would deep-copy every condition.
	field, _, _ := unstructured.NestedFieldNoCopy(obj, path...)
	raw, _ := field.([]any)
	out := make([]Condition, 0, len(raw))
	for _, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		s := func(k string) string { v, _ := m[k].(string); return v }
		out = append(out, Condition{Type: s("type"), Status: s("status"), Reason: s("reason"), Message: s("message")})
	}
	return out
}

func findCondition(conds []Condition, t string) *Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// detail renders " (Status, Reason: Message)" for a message, or "" for nil.
func (c *Condition) detail() string {
	if c == nil {
		return " (no condition yet)"
	}
	s := " (" + c.Status
	if c.Reason != "" {
		s += ", " + c.Reason
	}
	if c.Message != "" {
		s += ": " + c.Message
	}
	return s + ")"
}

// ignoredPhrases mark a True condition whose message says part of the
// intent is not used: istiod reports a route on a Service without a waypoint
// as ResolvedWaypoints=True with "...in ambient mode, route will not be
// respected", and a canary waypoint it refused (missing or not ready, an
// invalid weight, the primary itself, a workload-only waypoint) as
// WaypointBound=True, reason WaypointAccepted, with "Canary waypoint not
// attached: ..." in the message only.
var ignoredPhrases = []string{"will not be respected", "parent not found", "canary waypoint not attached"}

// Healthy reports whether a condition is good news: status True, a reason
// that is not UnsupportedValue or PartiallyInvalid, and a message that does
// not say the object is ignored.
func (c Condition) Healthy() bool {
	if c.Status != "True" {
		return false
	}
	if c.Reason == ambient.ReasonUnsupportedValue || c.Reason == ambient.ReasonPartiallyInvalid {
		return false
	}
	msg := strings.ToLower(c.Message)
	for _, p := range ignoredPhrases {
		if strings.Contains(msg, p) {
			return false
		}
	}
	return true
}
