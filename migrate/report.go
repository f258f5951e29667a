package migrate

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/meshcd/meshcd/access"
)

// WriteReport writes the report in Markdown: what does not carry over,
// the access comparison and the stages.
func (r *Result) WriteReport(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Moving %s to ambient\n\n", filepath.Base(r.Source))
	enrolled := strings.Join(r.Namespaces, ", ")
	if enrolled == "" {
		enrolled = "none (no workload or Service in the source)"
	}
	fmt.Fprintf(&b, "Namespaces enrolled: %s.", enrolled)
	if len(r.Assumed) > 0 {
		fmt.Fprintf(&b, " Taken as sidecar-injected (`istio-injection=enabled`), since the source holds no Namespace object for them: %s.", strings.Join(r.Assumed, ", "))
	}
	b.WriteString("\n\n## What does not carry over\n\n")
	if len(r.Items) == 0 {
		b.WriteString("Everything carries over.\n")
	} else {
		b.WriteString("| object | where | consequence in ambient |\n|---|---|---|\n")
		for _, it := range r.Items {
			pos := it.Position
			pos.File = filepath.ToSlash(pos.File)
			pos.Column = 0
			fmt.Fprintf(&b, "| %s | %s | %s |\n", it.Object, pos, cell(it.Consequence))
		}
	}
	c := r.Access
	b.WriteString("\n## Access\n\n")
	fmt.Fprintf(&b, "The access model of the sidecar configuration (sidecar semantics) against the model of every stage, rendered: "+
		"%d callers × %d Service ports × %d requests × %d stages, %d verdicts.\n\n", c.Callers, c.Services, len(c.Requests), len(r.Stages), c.Checked)
	if len(c.Differences) == 0 {
		b.WriteString("No difference: every stage allows and denies what the sidecars did.\n")
	} else {
		fmt.Fprintf(&b, "%d differences, %d of them widen access:\n\n| stage | caller → service | request | sidecars | this stage |\n|---|---|---|---|---|\n",
			len(c.Differences), c.Widening())
		for _, d := range c.Differences {
			mark := ""
			if d.Widens {
				mark = "**widens** "
			}
			fmt.Fprintf(&b, "| %s | %s%s → %s | %s %s | %s | %s |\n", d.Stage, mark, d.From, d.To, d.Request.Method, d.Request.Path,
				cell(verdict(d.Before)), cell(verdict(d.After)))
		}
	}
	b.WriteString("\nNot compared: callers whose identity the source does not hold (ingress gateways, other clusters) and calls to a pod's own address; the model answers for Service addresses.\n")
	b.WriteString("\n## Rule catalogue\n\n")
	if len(c.Findings) == 0 {
		b.WriteString("No stage has an error finding.\n")
	} else {
		b.WriteString("Error findings on the stages (`meshcd validate STAGE --allow-finding RULE` passes a stage's expected ones):\n\n| stage | finding | why |\n|---|---|---|\n")
		for _, f := range c.Findings {
			why := f.Expected
			if why == "" {
				why = "**unexpected**: fix before merging"
			}
			fmt.Fprintf(&b, "| %s | %s %s | %s |\n", f.Stage, f.Finding.Rule, f.Finding.Object, cell(why))
		}
	}
	b.WriteString("\n## Stages\n\nEach stage is one commit: copy `stages/NAME/` over the repository, open a pull request (`meshcd plan` shows it), merge, then do what the stage says before the next. " +
		"Rolling a stage back is reverting its commit. `spec/` is the repository after the last stage.\n\n")
	for i, s := range r.Stages {
		fmt.Fprintf(&b, "%d. `%s`: %s. Then %s.\n", i+1, s.Name, stepSummary[s.Step], s.Then)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

var stepSummary = map[string]string{
	"adopt":     "meshcd takes over the namespace's Istio objects as they are; nothing changes",
	"waypoint":  "meshcd takes over the namespace's Istio objects as they are, and the waypoint Gateway is deployed; nothing uses it yet",
	"policies":  "the policies the waypoint enforces are added beside the sidecars' own, and the waypoint is admitted at the pods",
	"ambient":   "the spec documents take over: the ambient label and istio.io/use-waypoint on the Namespace, the routes as HTTPRoutes on per-version Services (the VirtualServices and DestinationRules they replace go in the same commit), mTLS",
	"injection": "sidecar injection is turned off (`istio-injection: disabled`)",
	"prune":     "the sidecar-era selector policies are pruned, or cut to what ztunnel enforces",
}

func verdict(v access.Verdict) string {
	s := string(v.Decision)
	if v.EnforcedAt != access.AtNone {
		s += " at " + string(v.EnforcedAt)
	}
	if len(v.Policies) > 0 {
		s += " by " + strings.Join(v.Policies, ", ")
	}
	return s
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
