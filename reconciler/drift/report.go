package drift

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Report is the drift of a set of objects.
type Report struct {
	DetectedAt time.Time `json:"detectedAt"`
	Objects    []Object  `json:"objects"`
}

// Write renders the report as "text", "json" or "markdown".
func (r *Report) Write(w io.Writer, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "text":
		return r.text(w)
	case "markdown":
		return r.markdown(w)
	}
	return fmt.Errorf("unknown report format %q: use text, json or markdown", format)
}

func (r *Report) text(w io.Writer) error {
	if len(r.Objects) == 0 {
		_, err := fmt.Fprintln(w, "no drift")
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "drift in %d objects (detected %s)\n", len(r.Objects), r.DetectedAt.UTC().Format(time.RFC3339))
	for _, o := range r.Objects {
		if o.Missing {
			fmt.Fprintf(&b, "%s: deleted from the cluster\n", o.Object)
			continue
		}
		fmt.Fprintf(&b, "%s:\n", o.Object)
		for _, f := range o.Fields {
			fmt.Fprintf(&b, "  %s: desired %s, live %s%s\n", f.Path, Show(f.Desired), Show(f.Live), by(f))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) markdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "### Drift report\n\n")
	if len(r.Objects) == 0 {
		b.WriteString("No drift.\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "%d objects drifted (detected %s).\n\n", len(r.Objects), r.DetectedAt.UTC().Format(time.RFC3339))
	b.WriteString("| object | field | desired | live | changed by | when |\n|---|---|---|---|---|---|\n")
	for _, o := range r.Objects {
		if o.Missing {
			fmt.Fprintf(&b, "| %s | — | present | deleted | | |\n", cell(o.Object))
			continue
		}
		for _, f := range o.Fields {
			when := ""
			if f.Time != nil {
				when = f.Time.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s | %s |\n", cell(o.Object), f.Path, cell(Show(f.Desired)), cell(Show(f.Live)), cell(f.Manager), when)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Show renders a field value as JSON, or "(absent)" for nil.
func Show(v any) string {
	if v == nil {
		return "(absent)"
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(raw)
}

func by(f Field) string {
	if f.Manager == "" {
		return ""
	}
	s := " (changed by " + f.Manager
	if f.Time != nil {
		s += " at " + f.Time.UTC().Format(time.RFC3339)
	}
	return s + ")"
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
