package main

import (
	"encoding/json"
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
		output string
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
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("unknown output format %q: use text or json", output)
			}
			var context []*unstructured.Unstructured
			if live {
				cl, err := kube.connect()
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
			if output == "text" {
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
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().StringSliceVar(&allow, "allow-finding", nil, "rule id whose findings are ignored, such as AMB013 (repeatable)")
	cmd.Flags().BoolVar(&live, "live", false, "resolve references (Services, waypoints, namespace labels) against the cluster's live objects")
	kube.register(cmd)
	render.register(cmd)
	return cmd
}

// printFindings writes findings as lines for a terminal, or as the JSON
// document {"findings": [...]} with the render's notes beside them.
func printFindings(w io.Writer, findings []rules.Finding, notes renderer.Notes, output string) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Findings []rules.Finding `json:"findings"`
			renderer.Notes
		}{findings, notes})
	}
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
	_, err := fmt.Fprintf(w, "%d errors, %d warnings\n", counts["error"], counts["warning"])
	return err
}
