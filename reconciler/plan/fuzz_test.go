package plan

import (
	"fmt"
	"html"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/meshcd/meshcd/renderer/rules"
)

// FuzzMarkdown builds a plan whose revisions, object names, diffs, findings
// and access, waypoint, rollout and live lines are fuzzed strings, and
// renders it as a pull-request comment. Whatever the strings hold (pipes,
// line endings, backticks, HTML, invalid UTF-8), the comment is valid UTF-8
// and within its limit, and its structure is the plan's: one fenced line
// per access change shown, one table row of five cells per introduced
// finding, one list item per line, one <details> per change whose code
// fence nothing in the diff closes, and each string reading back as
// written (on one line outside the diff; invalid UTF-8 as U+FFFD).
func FuzzMarkdown(f *testing.F) {
	f.Add("main@sha1:aaa", "canary@sha1:bbb", "HTTPRoute hello/hello", "-      weight: 95\n+      weight: 50\n", "AMB030", "route has no waypoint; add one", "Namespace hello: istio.io/use-waypoint=waypoint", 12, uint16(300))
	f.Add("", "a`b", "ConfigMap a|b/c", " ```\n+```js\n-    ```` \n", "AMB|001", "one\ntwo | three\r\nfour\rfive", "<details><summary>x</summary>", 0, uint16(40))
	f.Add("``", "` x `", "Kind <b>&amp;</b>", "no newline at the end", "", "\xff\xfe|`", "- item\n- another", -1, uint16(0))
	f.Add(" a ", "  ", `C:\path\|x\`, "\r```\r\n   ````\t\n", `\|`, "a\\|b", "`", 1, uint16(37))
	f.Fuzz(func(t *testing.T, base, head, object, diff, rule, message, line string, n int, limit uint16) {
		p := &Plan{Base: base, Head: head,
			Access: []string{"+ " + object + " → shop/orders: " + line + " (waypoint)", message, diff},
			Changes: []Change{
				{Object: object, Action: Changed, Diff: diff},
				{Object: "ConfigMap shop/cfg", Action: Added, Diff: "+data:\n+  line: " + line + "\n"},
				{Object: line, Action: Removed, Diff: diff + message},
			},
			Introduced: []rules.Finding{
				{Rule: rule, Severity: rules.SeverityError, Object: object, File: line, Line: n, Message: message},
				{Rule: "AMB030", Severity: rules.Severity(rule), Object: message, File: "spec.yaml", Line: 3, Message: line},
			},
			Fixed:    []rules.Finding{{Rule: rule, Object: object}, {Rule: line, Object: message}},
			Order:    []string{line, message},
			Rollouts: []string{message},
			Live:     []string{line, object},
		}
		md := p.Markdown(MaxComment)
		if len(md) > MaxComment {
			t.Fatalf("comment is %d bytes, over %d", len(md), MaxComment)
		}
		if !strings.HasSuffix(md, cut) {
			checkMarkdown(t, p, md)
		}
		// One byte less leaves the largest diff out, or truncates.
		if smaller := p.Markdown(len(md) - 1); len(smaller) > len(md)-1 || !utf8.ValidString(smaller) {
			t.Fatalf("limit %d gave %d bytes, valid UTF-8 %v", len(md)-1, len(smaller), utf8.ValidString(smaller))
		} else if !strings.HasSuffix(smaller, cut) {
			checkMarkdown(t, p, smaller)
		}
		if tiny := p.Markdown(int(limit)); len(tiny) > int(limit) || !utf8.ValidString(tiny) {
			t.Fatalf("limit %d gave %d bytes, valid UTF-8 %v", limit, len(tiny), utf8.ValidString(tiny))
		}
	})
}

// flat is s as one line of valid UTF-8, as the comment shows it.
func flat(s string) string {
	return strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(strings.ToValidUTF8(s, "\uFFFD"))
}

// mdLines splits Markdown at its line endings: \n, \r\n and \r.
func mdLines(s string) []string {
	return strings.Split(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n"), "\n")
}

// unescapeCell reads a table cell or list item back: a backslash escapes
// the character after it, and HTML entities are decoded.
func unescapeCell(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return html.UnescapeString(b.String())
}

// unescapedPipes returns where GFM splits a table row: at each pipe not
// right after a backslash.
func unescapedPipes(row string) []int {
	var at []int
	for i := 0; i < len(row); i++ {
		if row[i] == '|' && (i == 0 || row[i-1] != '\\') {
			at = append(at, i)
		}
	}
	return at
}

// codeSpan reads the CommonMark code span s starts with and returns its
// content and what follows it.
func codeSpan(s string) (content, rest string, ok bool) {
	n := len(s) - len(strings.TrimLeft(s, "`"))
	if n == 0 {
		return "", s, false
	}
	for i := n; i < len(s); {
		if s[i] != '`' {
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] == '`' {
			j++
		}
		if j-i == n {
			c := s[n:i]
			if len(c) >= 2 && c[0] == ' ' && c[len(c)-1] == ' ' && strings.Trim(c, " ") != "" {
				c = c[1 : len(c)-1]
			}
			return c, s[j:], true
		}
		i = j
	}
	return "", s, false
}

// spanOf is what a code span of s reads back as: an empty string is shown
// as one space.
func spanOf(s string) string {
	if s = flat(s); s == "" {
		return " "
	}
	return s
}

var (
	openFence = regexp.MustCompile("^(`{3,})diff$")
	anyFence  = regexp.MustCompile("^ {0,3}(`{3,})[ \t]*$")
)

// checkMarkdown walks the comment line by line against the plan.
func checkMarkdown(t *testing.T, p *Plan, md string) {
	t.Helper()
	if !utf8.ValidString(md) {
		t.Fatalf("comment is not valid UTF-8: %q", md)
	}
	lines := mdLines(md)
	i := 0
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("line %d: %s\ncomment:\n%s", i+1, fmt.Sprintf(format, args...), md)
	}
	next := func() string {
		t.Helper()
		if i >= len(lines) {
			fail("the comment ends early")
		}
		i++
		return lines[i-1]
	}
	expect := func(want string) {
		t.Helper()
		if got := next(); got != want {
			i--
			fail("got %q, want %q", got, want)
		}
	}
	list := func(items []string) {
		t.Helper()
		for _, want := range items {
			l := next()
			if !strings.HasPrefix(l, "- ") || strings.Contains(l, "<") {
				fail("want a list item without raw HTML, got %q", l)
			}
			if got := unescapeCell(l[2:]); got != want {
				fail("list item reads %q, want %q", got, want)
			}
		}
	}

	expect("## meshcd plan")
	expect("")
	header := next()
	b, rest, ok := codeSpan(header)
	h, rest2, ok2 := codeSpan(strings.TrimPrefix(rest, " → "))
	if !ok || !ok2 || !strings.HasPrefix(rest, " → ") || b != spanOf(p.Base) || h != spanOf(p.Head) || rest2 != ": **"+p.Summary()+"**" {
		fail("header %q does not read back as %q → %q", header, p.Base, p.Head)
	}
	expect("")
	if len(p.Access) > 0 {
		expect("### Access changes")
		expect("")
		open := next()
		m := openFence.FindStringSubmatch(open)
		if m == nil {
			fail("want the access changes' fence, got %q", open)
		}
		shown := 0
		for {
			l := next()
			if f := anyFence.FindStringSubmatch(l); f != nil && len(f[1]) >= len(m[1]) {
				if l != m[1] {
					fail("the access line %q closes its fence %s", l, m[1])
				}
				break
			}
			if shown >= len(p.Access) || l != flat(p.Access[shown]) {
				fail("access line %d reads %q", shown, l)
			}
			shown++
		}
		expect("")
		if shown < len(p.Access) {
			expect(fmt.Sprintf("_%d of %d access changes were left out to fit the comment; run `meshcd plan` locally to see them._", len(p.Access)-shown, len(p.Access)))
			expect("")
		}
	}
	if len(p.Introduced) > 0 {
		expect("### Findings introduced")
		expect("")
		expect("| rule | severity | object | where | what to do |")
		expect("|---|---|---|---|---|")
		for _, f := range p.Introduced {
			row := next()
			pipes := unescapedPipes(row)
			if len(pipes) != 6 || pipes[0] != 0 || pipes[5] != len(row)-1 || strings.Contains(row, "<") {
				fail("want a row of five cells without raw HTML, got %q", row)
			}
			where := f.File
			if f.Line > 0 {
				where = fmt.Sprintf("%s:%d", f.File, f.Line)
			}
			for k, want := range []string{f.Rule, string(f.Severity), f.Object, where, f.Message} {
				c := row[pipes[k]+1 : pipes[k+1]]
				if len(c) < 2 || c[0] != ' ' || c[len(c)-1] != ' ' {
					fail("cell %d of %q is not padded", k, row)
				}
				if got := unescapeCell(c[1 : len(c)-1]); got != flat(want) {
					fail("cell %d reads %q, want %q", k, got, flat(want))
				}
			}
		}
		expect("")
	}
	if len(p.Fixed) > 0 {
		expect("### Findings fixed")
		expect("")
		var items []string
		for _, f := range p.Fixed {
			items = append(items, flat(f.Rule)+" "+flat(f.Object))
		}
		list(items)
		expect("")
	}
	flatAll := func(ls []string) []string {
		out := make([]string, len(ls))
		for k, l := range ls {
			out[k] = flat(l)
		}
		return out
	}
	if len(p.Order) > 0 {
		expect("### Waypoint order")
		expect("")
		list(flatAll(p.Order))
		expect("")
	}
	if len(p.Rollouts) > 0 {
		expect("### Data plane rollouts")
		expect("")
		list(flatAll(p.Rollouts))
		expect("")
	}
	if len(p.Changes) > 0 {
		expect("### Objects")
		expect("")
	}
	var omitted []string
	for _, c := range p.Changes {
		s := next()
		inner, ok := strings.CutPrefix(s, "<details><summary>"+string(c.Action)+" <code>")
		inner, ok2 := strings.CutSuffix(inner, "</code></summary>")
		if !ok || !ok2 || strings.ContainsAny(inner, "<>") || html.UnescapeString(inner) != flat(c.Object) {
			fail("summary %q does not read back as %s %q", s, c.Action, c.Object)
		}
		expect("")
		open := next()
		if strings.HasPrefix(open, "diff left out: ") {
			omitted = append(omitted, c.Object)
		} else {
			m := openFence.FindStringSubmatch(open)
			if m == nil {
				fail("want a diff fence, got %q", open)
			}
			var body strings.Builder
			for {
				l := next()
				if f := anyFence.FindStringSubmatch(l); f != nil && len(f[1]) >= len(m[1]) {
					if l != m[1] {
						fail("the diff's line %q closes its fence %s", l, m[1])
					}
					break
				}
				body.WriteString(l + "\n")
			}
			want := strings.Join(mdLines(strings.ToValidUTF8(c.Diff, "\uFFFD")), "\n")
			if want != "" && !strings.HasSuffix(want, "\n") {
				want += "\n"
			}
			if body.String() != want {
				fail("the fenced diff reads %q, want %q", body.String(), want)
			}
		}
		expect("")
		expect("</details>")
		expect("")
	}
	if len(p.Live) > 0 {
		expect("### Against the live cluster")
		expect("")
		list(flatAll(p.Live))
	}
	if len(omitted) > 0 {
		for i < len(lines) && lines[i] == "" {
			i++
		}
		note := next()
		rest, ok := strings.CutPrefix(note, fmt.Sprintf("_%d diffs were left out to fit the comment, largest first: ", len(omitted)))
		if !ok {
			fail("want the note on the %d diffs left out, got %q", len(omitted), note)
		}
		var names []string
		for {
			name, r, ok := codeSpan(rest)
			if !ok {
				fail("the note %q does not name the diffs left out", note)
			}
			names = append(names, name)
			if r == "._" {
				break
			}
			if rest, ok = strings.CutPrefix(r, ", "); !ok {
				fail("the note %q does not name the diffs left out", note)
			}
		}
		want := make([]string, len(omitted))
		for k, o := range omitted {
			want[k] = spanOf(o)
		}
		sort.Strings(want)
		sort.Strings(names)
		if strings.Join(names, "\x00") != strings.Join(want, "\x00") {
			fail("the note names %q, want %q", names, want)
		}
	}
	if rest := lines[i:]; len(rest) != 1 || rest[0] != "" {
		fail("unexpected lines at the end: %q", rest)
	}
}
