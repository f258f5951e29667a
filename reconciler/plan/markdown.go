package plan

import (
	"fmt"
	"html"
	"sort"
	"strings"
	"unicode/utf8"
)

// MaxComment is the size GitHub accepts for a comment body, with margin.
const MaxComment = 65000

// Markdown renders the plan for a pull-request comment of at most limit
// bytes. When it does not fit, the largest diffs are left out first, then
// the last access changes, and the comment says which. The strings in the
// plan are escaped where they land: a pipe, a line break, a backtick or
// HTML in a name, a finding or a diff cannot add or break a table row or
// list item, end a code span or close a code fence, and the comment is
// valid UTF-8.
func (p *Plan) Markdown(limit int) string {
	omitted := map[int]bool{}
	for {
		out := p.markdown(omitted, len(p.Access))
		if len(out) <= limit {
			return out
		}
		i := p.largestDiff(omitted)
		if i >= 0 {
			omitted[i] = true
			continue
		}
		// Keep the most access changes that fit: the fewer shown, the
		// shorter the comment.
		shown := sort.Search(len(p.Access), func(n int) bool { return len(p.markdown(omitted, n+1)) > limit })
		if out = p.markdown(omitted, shown); len(out) <= limit {
			return out
		}
		if limit < len(cut) {
			return out[:runeStart(out, max(limit, 0))]
		}
		return out[:runeStart(out, limit-len(cut))] + cut
	}
}

const cut = "\n\n… (truncated to fit a comment)\n"

// runeStart returns the largest index at most n that starts a rune of s,
// so that s[:i] does not end in half a character.
func runeStart(s string, n int) int {
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return n
}

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

// markdown renders the plan with the diffs omitted left out and the first
// shown access changes.
func (p *Plan) markdown(omitted map[int]bool, shown int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## meshcd plan\n\n%s → %s: **%s**\n\n", code(p.Base), code(p.Head), p.Summary())
	if len(p.Access) > 0 {
		b.WriteString("### Access changes\n\n")
		lines := make([]string, shown)
		for i, l := range p.Access[:shown] {
			lines[i] = oneLine(l)
		}
		body := strings.Join(lines, "\n")
		fence := strings.Repeat("`", max(3, longestRun(body, '`')+1))
		fmt.Fprintf(&b, "%sdiff\n", fence)
		if shown > 0 {
			b.WriteString(body + "\n")
		}
		fmt.Fprintf(&b, "%s\n\n", fence)
		if shown < len(p.Access) {
			fmt.Fprintf(&b, "_%d of %d access changes were left out to fit the comment; run `meshcd plan` locally to see them._\n\n", len(p.Access)-shown, len(p.Access))
		}
	}
	if len(p.Introduced) > 0 {
		b.WriteString("### Findings introduced\n\n| rule | severity | object | where | what to do |\n|---|---|---|---|---|\n")
		for _, f := range p.Introduced {
			where := f.File
			if f.Line > 0 {
				where = fmt.Sprintf("%s:%d", f.File, f.Line)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", cell(f.Rule), cell(string(f.Severity)), cell(f.Object), cell(where), cell(f.Message))
		}
		b.WriteString("\n")
	}
	if len(p.Fixed) > 0 {
		b.WriteString("### Findings fixed\n\n")
		for _, f := range p.Fixed {
			fmt.Fprintf(&b, "- %s %s\n", cell(f.Rule), cell(f.Object))
		}
		b.WriteString("\n")
	}
	if len(p.Traffic) > 0 {
		b.WriteString("### Traffic\n\n| route | requests | before | after |\n|---|---|---|---|\n")
		for _, s := range p.Traffic {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", cell(s.Route), cell(s.Match), cell(s.Before), cell(s.After))
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
		fmt.Fprintf(&b, "<details><summary>%s <code>%s</code></summary>\n\n", html.EscapeString(oneLine(string(c.Action))), html.EscapeString(oneLine(c.Object)))
		if omitted[i] {
			fmt.Fprintf(&b, "diff left out: %d lines, too large for this comment; run `meshcd plan` locally to see it\n", strings.Count(c.Diff, "\n"))
		} else {
			diff := strings.ToValidUTF8(c.Diff, "\uFFFD")
			if diff != "" && !strings.HasSuffix(diff, "\n") {
				diff += "\n"
			}
			fence := strings.Repeat("`", max(3, longestRun(diff, '`')+1))
			fmt.Fprintf(&b, "%sdiff\n%s%s\n", fence, diff, fence)
		}
		b.WriteString("\n</details>\n\n")
	}
	if len(p.Live) > 0 || p.LiveMissing != "" {
		b.WriteString("### Against the live cluster\n\n")
		for _, l := range p.Live {
			fmt.Fprintf(&b, "- %s\n", cell(l))
		}
		if p.LiveMissing != "" {
			fmt.Fprintf(&b, "The live diff is missing: %s. The plan above compares the branches only.\n", cell(p.LiveMissing))
		}
	}
	if len(omitted) > 0 {
		var names []string
		for i := range omitted {
			names = append(names, code(p.Changes[i].Object))
		}
		sort.Strings(names)
		fmt.Fprintf(&b, "\n_%d diffs were left out to fit the comment, largest first: %s._\n", len(omitted), strings.Join(names, ", "))
	}
	return b.String()
}

// FailureMarkdown is the comment for a plan that could not be made: the
// error as meshcd printed it, file:line first, so that the pull request
// shows what to fix rather than "see the log".
func FailureMarkdown(base, head string, err error) string {
	msg := strings.ToValidUTF8(err.Error(), "\uFFFD")
	fence := strings.Repeat("`", max(3, longestRun(msg, '`')+1))
	return fmt.Sprintf("## meshcd plan\n\n%s → %s: **the plan failed**\n\n%s\n%s\n%s\n\nFix it and push again; `meshcd plan` shows the same locally.\n",
		code(base), code(head), fence, msg, fence)
}

// oneLine returns s as valid UTF-8 on one line: each line ending Markdown
// knows (\n, \r\n, \r) becomes a space.
func oneLine(s string) string {
	return lineEndings.Replace(strings.ToValidUTF8(s, "\uFFFD"))
}

var lineEndings = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ")

// cell returns s as the text of a table cell or a list item: one line, its
// pipes and backslashes escaped so that a pipe does not split the row, and
// & and < written as entities so that it carries no HTML.
func cell(s string) string { return cellEscapes.Replace(oneLine(s)) }

var cellEscapes = strings.NewReplacer(`\`, `\\`, "|", `\|`, "&", "&amp;", "<", "&lt;")

// code returns s as an inline code span: one line, between backtick runs
// longer than any in s, padded with a space when s starts or ends with a
// backtick or with spaces that would otherwise be stripped. An empty s is
// a span of one space.
func code(s string) string {
	s = oneLine(s)
	if s == "" {
		return "` `"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") ||
		(strings.HasPrefix(s, " ") && strings.HasSuffix(s, " ") && strings.Trim(s, " ") != "") {
		s = " " + s + " "
	}
	ticks := strings.Repeat("`", longestRun(s, '`')+1)
	return ticks + s + ticks
}

// longestRun returns the length of the longest run of c in s.
func longestRun(s string, c byte) int {
	longest, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] != c {
			run = 0
			continue
		}
		run++
		longest = max(longest, run)
	}
	return longest
}
