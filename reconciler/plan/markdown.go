package plan

import (
	"fmt"
	"sort"
	"strings"
)

// MaxComment is the size GitHub accepts for a comment body, with margin.
const MaxComment = 65000

// Markdown renders the plan for a pull-request comment of at most limit
// characters. When the diffs do not fit, the largest are left out first
// and the comment says which.
func (p *Plan) Markdown(limit int) string {
	omitted := map[int]bool{}
	for {
		out := p.markdown(omitted)
		if len(out) <= limit {
			return out
		}
		i := p.largestDiff(omitted)
		if i < 0 {
			return out[:limit-len(cut)] + cut
		}
		omitted[i] = true
	}
}

const cut = "\n\n… (truncated to fit a comment)\n"

// largestDiff returns the index of the largest diff not yet omitted, or -1.
func (p *Plan) largestDiff(omitted map[int]bool) int {
	best, size := -1, 0
	for i, c := range p.Changes {
		if !omitted[i] && len(c.Diff) > size {
			best, size = i, len(c.Diff)
		}
	}
	return best
}

func (p *Plan) markdown(omitted map[int]bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## meshcd plan\n\n`%s` → `%s`: **%s**\n\n", p.Base, p.Head, p.Summary())
	if len(p.Introduced) > 0 {
		b.WriteString("### Findings introduced\n\n| rule | severity | object | where | what to do |\n|---|---|---|---|---|\n")
		for _, f := range p.Introduced {
			where := f.File
			if f.Line > 0 {
				where = fmt.Sprintf("%s:%d", f.File, f.Line)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", f.Rule, f.Severity, cell(f.Object), cell(where), cell(f.Message))
		}
		b.WriteString("\n")
	}
	if len(p.Fixed) > 0 {
		b.WriteString("### Findings fixed\n\n")
		for _, f := range p.Fixed {
			fmt.Fprintf(&b, "- %s %s\n", f.Rule, f.Object)
		}
		b.WriteString("\n")
	}
	if len(p.Order) > 0 {
		b.WriteString("### Waypoint order\n\n")
		for _, l := range p.Order {
			fmt.Fprintf(&b, "- %s\n", cell(l))
		}
		b.WriteString("\n")
	}
	if len(p.Rollouts) > 0 {
		b.WriteString("### Data plane rollouts\n\n")
		for _, l := range p.Rollouts {
			fmt.Fprintf(&b, "- %s\n", cell(l))
		}
		b.WriteString("\n")
	}
	if len(p.Changes) > 0 {
		b.WriteString("### Objects\n\n")
	}
	for i, c := range p.Changes {
		fmt.Fprintf(&b, "<details><summary>%s <code>%s</code></summary>\n\n", c.Action, c.Object)
		if omitted[i] {
			fmt.Fprintf(&b, "diff left out: %d lines, too large for this comment; run `meshcd plan` locally to see it\n", strings.Count(c.Diff, "\n"))
		} else {
			fmt.Fprintf(&b, "```diff\n%s```\n", c.Diff)
		}
		b.WriteString("\n</details>\n\n")
	}
	if len(p.Live) > 0 {
		b.WriteString("### Against the live cluster\n\n")
		for _, l := range p.Live {
			fmt.Fprintf(&b, "- %s\n", cell(l))
		}
	}
	if len(omitted) > 0 {
		var names []string
		for i := range omitted {
			names = append(names, p.Changes[i].Object)
		}
		sort.Strings(names)
		fmt.Fprintf(&b, "\n_%d diffs were left out to fit the comment, largest first: %s._\n", len(omitted), strings.Join(names, ", "))
	}
	return b.String()
}

func cell(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }
