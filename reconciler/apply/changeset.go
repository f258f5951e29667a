package apply

import (
	"fmt"
	"sort"
	"strings"
)

// Action is what an apply or prune did to one object.
type Action string

// Actions recorded in a change set.
const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
	Pruned     Action = "pruned"
	// Skipped objects were left alone on purpose; Reason says why.
	Skipped Action = "skipped"
	// Waiting objects are held back until something else is ready, such as
	// a waypoint label until its waypoint serves traffic.
	Waiting Action = "waiting"
)

// Change is the outcome for one object.
type Change struct {
	// Object is "Kind namespace/name" or "Kind name".
	Object string `json:"object"`
	Action Action `json:"action"`
	// Reason explains skipped, waiting and partial outcomes.
	Reason string `json:"reason,omitempty"`
}

// ChangeSet lists the outcome for every object of an apply or prune.
type ChangeSet struct {
	Changes []Change `json:"changes"`
}

func (cs *ChangeSet) add(c ...Change) { cs.Changes = append(cs.Changes, c...) }

// Merge returns the outcomes of cs then later: an object in both keeps its
// later outcome, unless that is unchanged, which does not undo an earlier
// change. Either may be nil.
func (cs *ChangeSet) Merge(later *ChangeSet) *ChangeSet {
	if cs == nil {
		return later
	}
	if later == nil {
		return cs
	}
	out := &ChangeSet{Changes: append([]Change(nil), cs.Changes...)}
	at := make(map[string]int, len(out.Changes))
	for i, c := range out.Changes {
		at[c.Object] = i
	}
	for _, c := range later.Changes {
		i, seen := at[c.Object]
		switch {
		case !seen:
			at[c.Object] = len(out.Changes)
			out.Changes = append(out.Changes, c)
		case c.Action != Unchanged:
			out.Changes[i] = c
		}
	}
	return out
}

// Count returns how many objects had the action; a nil ChangeSet, from a
// reconcile that stopped before applying, has none.
func (cs *ChangeSet) Count(a Action) int {
	if cs == nil {
		return 0
	}
	n := 0
	for _, c := range cs.Changes {
		if c.Action == a {
			n++
		}
	}
	return n
}

// Writes is the number of objects the server changed.
func (cs *ChangeSet) Writes() int { return cs.Count(Created) + cs.Count(Configured) + cs.Count(Pruned) }

// Summary is one line such as "3 created, 1 configured, 40 unchanged".
func (cs *ChangeSet) Summary() string {
	if cs == nil {
		return "nothing applied"
	}
	var parts []string
	for _, a := range []Action{Created, Configured, Unchanged, Pruned, Skipped, Waiting} {
		if n := cs.Count(a); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, a))
		}
	}
	if len(parts) == 0 {
		return "nothing to do"
	}
	return strings.Join(parts, ", ")
}

// String lists the changes other than unchanged, one a line, sorted.
func (cs *ChangeSet) String() string {
	lines := []string{}
	for _, c := range cs.Changes {
		if c.Action == Unchanged {
			continue
		}
		l := c.Object + " " + string(c.Action)
		if c.Reason != "" {
			l += ": " + c.Reason
		}
		lines = append(lines, l)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
