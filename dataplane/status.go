package dataplane

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// WriteStatus writes each rollout's phase, stage and message, the running
// canary, the image pinned on each namespace's waypoints and the ztunnel
// nodes replaced, sorted by rollout name: what `meshcd rollout status`
// prints.
func WriteStatus(w io.Writer, states map[string]*State) error {
	if len(states) == 0 {
		_, err := fmt.Fprintln(w, "no rollout has started")
		return err
	}
	var b strings.Builder
	for _, n := range sortedKeys(states) {
		st := states[n]
		fmt.Fprintf(&b, "%s: %s, bundle %s, stage %s\n  %s\n", n, st.Phase, st.Bundle, st.StageName, st.Message)
		if c := st.Canary; c != nil {
			fmt.Fprintf(&b, "  canary %s: weight %d in %s\n", c.Image, c.Weight, strings.Join(c.Namespaces, ", "))
		}
		for _, ns := range sortedKeys(st.Pins) {
			fmt.Fprintf(&b, "  waypoints of %s pinned to %s\n", ns, st.Pins[ns])
		}
		if z := st.Ztunnel; z != nil && len(z.Replaced) > 0 {
			fmt.Fprintf(&b, "  ztunnel replaced on %s, in that order (before: %s)\n", strings.Join(z.Replaced, ", "), z.Previous)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
