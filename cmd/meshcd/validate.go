package main

import (
	"fmt"
	"io"
	"path"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/renderer"
	"github.com/meshcd/meshcd/renderer/rules"
)

func newValidateCommand(stdout io.Writer) *cobra.Command {
	var (
		output *outputFormat
		allow  []string
		live   bool
		kube   kubeFlags
		render renderFlags
	)
	cmd := &cobra.Command{
		Use:   "validate DIR...",
		Short: "Check spec directories or plain manifests against the rules ambient enforces",
		Long: "validate renders each directory and runs the ambient rule catalogue over the result.\n" +
			"Exit codes: 0 no error finding, 1 error findings, 2 bad input.",
		Example: "  meshcd validate ./mesh\n" +
			"  meshcd validate ./mesh ./manifests -o json\n" +
			"  meshcd validate ./mesh --live --context prod   # resolve references against the cluster",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var context []*unstructured.Unstructured
			if live {
				cl, err := kube.connect(cmd.Context())
				if err != nil {
					return err
				}
				if context, err = reconciler.LiveContext(cmd.Context(), cl.client); err != nil {
					return err
				}
			}
			findings := []rules.Finding{}
			var notes renderer.Notes
			for _, dir := range args {
				b, err := renderer.Render(dir, render.options())
				if err != nil {
					return err
				}
				findings = append(findings, rules.Check(b.Objects, rules.Options{Origin: b.Origin, Allow: allow, Context: context})...)
				for _, s := range b.Notes.Skipped {
					if len(args) > 1 {
						s.Path = path.Join(filepath.ToSlash(dir), s.Path)
					}
					notes.Skipped = append(notes.Skipped, s)
				}
				notes.Warnings = append(notes.Warnings, b.Notes.Warnings...)
			}
			if output.String() == "text" {
				printNotes(cmd.ErrOrStderr(), notes)
			}
			if err := printFindings(stdout, findings, notes, output); err != nil {
				return err
			}
			if rules.HasErrors(findings) {
				return errNotClean
			}
			return nil
		},
	}
	output = addOutput(cmd, "text", "json", "yaml")
	cmd.Flags().StringSliceVar(&allow, "allow-finding", nil, "rule id whose findings are ignored, such as AMB013 (repeatable)")
	cmd.Flags().BoolVar(&live, "live", false, "resolve references (Services, waypoints, namespace labels) against the cluster's live objects")
	kube.register(cmd)
	render.register(cmd)
	return cmd
}

// printFindings writes findings as lines for a terminal or as the
// document {"findings": [...]} in JSON or YAML, with the render's notes
// beside them.
func printFindings(w io.Writer, findings []rules.Finding, notes renderer.Notes, output *outputFormat) error {
	if done, err := output.encoded(w, struct {
		Findings []rules.Finding `json:"findings"`
		renderer.Notes
	}{findings, notes}); done {
		return err
	}
	return writeFindingLines(w, findings)
}

// writeFindingLines writes one line per finding, file:line first, and the
// counts of errors and warnings.
func writeFindingLines(w io.Writer, findings []rules.Finding) error {
	counts := map[rules.Severity]int{}
	for _, f := range findings {
		counts[f.Severity]++
		where := f.File
		if f.Line > 0 {
			where = fmt.Sprintf("%s:%d", f.File, f.Line)
		}
		if where != "" {
			where += ": "
		}
		if _, err := fmt.Fprintf(w, "%s%s %s %s: %s\n", where, f.Severity, f.Rule, f.Object, f.Message); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "%s, %s\n", count(counts["error"], "error"), count(counts["warning"], "warning"))
	return err
}

// count writes "1 error", "2 errors", "0 errors".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
