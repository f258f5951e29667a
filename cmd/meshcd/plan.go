package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshcd/meshcd/reconciler/plan"
	"github.com/meshcd/meshcd/reconciler/source"
	"github.com/meshcd/meshcd/renderer"
)

func newPlanCommand(stdout io.Writer) *cobra.Command {
	var (
		flags      sourceFlags
		repo, path string
		base, head string
		output     *outputFormat
	)
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what merging a branch would change: objects added, changed and removed, findings introduced and fixed",
		Long: "plan renders the base and the head of a pull request and compares them. With --kubeconfig it also\n" +
			"diffs the head against the live cluster. Exit codes: 0 no change, 1 changes, 2 error.",
		Example: "  meshcd plan --repo . --base main --head my-change\n" +
			"  meshcd plan --repo https://github.com/acme/mesh --path clusters/prod --head pr-42 -o markdown > plan.md\n" +
			"  meshcd plan --repo . --head my-change --kubeconfig ~/.kube/config --context prod   # also diff the live cluster",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, err := repoURL(repo)
			if err != nil {
				return err
			}
			work, err := os.MkdirTemp("", "meshcd-plan-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(work)
			auth, err := source.AuthFromEnv()
			if err != nil {
				return err
			}
			fetch := func(branch string) (*source.Artifact, error) {
				a, _, err := source.New(source.Options{URL: url, Ref: source.Ref{Branch: branch}, Path: path, Auth: auth, WorkDir: filepath.Join(work, branch)}).Fetch(cmd.Context())
				return a, err
			}
			b, err := fetch(base)
			if err != nil {
				return fmt.Errorf("base: %w", err)
			}
			h, err := fetch(head)
			if err != nil {
				return fmt.Errorf("head: %w", err)
			}
			p, err := plan.Compute(b.Revision, b.Dir, h.Revision, h.Dir, renderer.DefaultOptions())
			if err != nil {
				return err
			}
			if flags.instance.kube.kubeconfig != "" {
				r, _, err := flags.reconciler(cmd.Context())
				if err != nil {
					return err
				}
				live, err := r.Diff(cmd.Context(), h.Dir)
				if err != nil {
					return fmt.Errorf("live diff: %w", err)
				}
				for _, o := range live.Changed {
					state := fmt.Sprintf("%d fields differ", len(o.Fields))
					if o.Missing {
						state = "not in the cluster yet"
					}
					p.Live = append(p.Live, o.Object+": "+state)
				}
				for _, s := range live.Stale {
					p.Live = append(p.Live, s+": would be pruned")
				}
			}
			if done, err := output.encoded(stdout, p); err != nil {
				return err
			} else if !done && output.String() == "markdown" {
				fmt.Fprint(stdout, p.Markdown(plan.MaxComment))
			} else if !done {
				fmt.Fprint(stdout, p.Text())
			}
			if p.HasChanges() {
				return errNotClean
			}
			return nil
		},
	}
	flags.register(cmd)
	cmd.Flags().StringVar(&repo, "repo", ".", "repository: a local path or a URL")
	cmd.Flags().StringVar(&path, "path", ".", "spec directory inside the repository")
	cmd.Flags().StringVar(&base, "base", "main", "base branch")
	cmd.Flags().StringVar(&head, "head", "", "head branch (required)")
	output = addOutput(cmd, "text", "markdown", "json", "yaml")
	_ = cmd.MarkFlagRequired("head")
	return cmd
}

// repoURL turns a local path into a file:// URL and leaves URLs alone.
func repoURL(repo string) (string, error) {
	if strings.Contains(repo, "://") || strings.HasPrefix(repo, "git@") {
		return repo, nil
	}
	abs, err := filepath.Abs(repo)
	if err != nil {
		return "", fmt.Errorf("repository %s: %w", repo, err)
	}
	return "file://" + abs, nil
}
