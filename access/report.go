package access

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Formats WriteVerdict and WriteMatrix accept.
var Formats = []string{"text", "json", "markdown"}

// WriteVerdict prints one verdict as text, JSON or Markdown.
func WriteVerdict(w io.Writer, v Verdict, req Request, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "text", "markdown":
		bullet := "  "
		if format == "markdown" {
			bullet = "- "
		}
		if _, err := fmt.Fprintf(w, "%s → %s%s: %s\n", v.From, v.To, describe(req), summary(v)); err != nil {
			return err
		}
		for _, h := range v.Hops {
			caller := h.Caller
			if caller == "" {
				caller = "no identity"
			}
			if _, err := fmt.Fprintf(w, "%s%s %s (caller %s): %s: %s\n", bullet, h.At, h.Proxy, caller, h.Decision, h.Reason); err != nil {
				return err
			}
		}
		if len(v.Hops) == 0 {
			_, err := fmt.Fprintf(w, "%s%s\n", bullet, v.Reason)
			return err
		}
		return nil
	}
	return fmt.Errorf("unknown output format %q: use %s", format, strings.Join(Formats, ", "))
}

// summary is a verdict in one phrase.
func summary(v Verdict) string {
	s := string(v.Decision)
	if v.EnforcedAt != AtNone {
		s += " at " + string(v.EnforcedAt)
	}
	if len(v.Policies) > 0 {
		s += " by " + strings.Join(v.Policies, ", ")
	}
	return s
}

// describe spells the request attributes a question fixed.
func describe(req Request) string {
	var parts []string
	for _, p := range []string{req.Method, req.Host, req.Path} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if req.RequestPrincipal != "" {
		parts = append(parts, "JWT "+req.RequestPrincipal)
	}
	if req.NoJWT {
		parts = append(parts, "no JWT")
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, " ") + ")"
}

// WriteMatrix prints every cell as text, JSON or Markdown.
func WriteMatrix(w io.Writer, mx *Matrix, format string) error {
	switch format {
	case "json":
		cells := []Verdict{}
		mx.each(func(v Verdict) {
			v.Hops = nil
			cells = append(cells, v)
		})
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Request Request   `json:"request"`
			Cells   []Verdict `json:"cells"`
		}{mx.Request, cells})
	case "markdown":
		var b strings.Builder
		b.WriteString("| caller | service | decision | enforced at | policies | reason |\n|---|---|---|---|---|---|\n")
		mx.each(func(v Verdict) {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", v.From, v.To, v.Decision, v.EnforcedAt,
				strings.Join(v.Policies, ", "), strings.ReplaceAll(v.Reason, "|", `\|`))
		})
		_, err := io.WriteString(w, b.String())
		return err
	case "text":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CALLER\tSERVICE\tDECISION\tAT\tPOLICIES")
		mx.each(func(v Verdict) {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.From, v.To, v.Decision, v.EnforcedAt, strings.Join(v.Policies, ","))
		})
		return tw.Flush()
	}
	return fmt.Errorf("unknown output format %q: use %s", format, strings.Join(Formats, ", "))
}

// each visits every cell, Service port by Service port.
func (mx *Matrix) each(f func(Verdict)) {
	for j := range mx.Destinations {
		for _, id := range mx.Identities {
			f(mx.Cell(id, j))
		}
	}
}

// Undecided counts the cells the model could not answer.
func (mx *Matrix) Undecided() int {
	n := 0
	mx.each(func(v Verdict) {
		if v.Decision == Undecided {
			n++
		}
	})
	return n
}
