package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshcd/meshcd/dataplane"
	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/plan"
	"github.com/meshcd/meshcd/reconciler/source"
)

func newPlanCommand(stdout io.Writer) *cobra.Command {
	var (
		flags      reconcileFlags
		repo, path string
		base, head string
		output     string
	)
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what merging a branch would change: objects added, changed and removed, findings introduced and fixed",
		Long: "plan renders the base and the head of a pull request and compares them. With --kubeconfig it also\n" +
			"diffs the head against the live cluster and names the nodes a DataplaneRollout's ztunnel stage replaces.\n" +
			"Exit codes: 0 no change, 1 changes, 2 error.",
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
			popts := plan.DefaultOptions()
			popts.Render = flags.render.options()
			var r *reconciler.Reconciler
			if flags.kube.kubeconfig != "" {
				var cl *clients
				if r, cl, err = flags.reconciler(); err != nil {
					return err
				}
				if popts.ZtunnelNodes, err = dataplane.ZtunnelNodes(cmd.Context(), cl.client, ""); err != nil {
					return err
				}
			}
			p, err := plan.Compute(b.Revision, b.Dir, h.Revision, h.Dir, popts)
			if err != nil {
				return err
			}
			if r != nil {
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
			if output != "json" {
				printNotes(cmd.ErrOrStderr(), p.Notes)
			}
			switch output {
			case "markdown":
				fmt.Fprint(stdout, p.Markdown(plan.MaxComment))
			case "text":
				fmt.Fprint(stdout, p.Text())
			case "json":
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(p); err != nil {
					return err
				}
			default:
				return fmt.Errorf("unknown output format %q: use markdown, text or json", output)
			}
			if p.HasChanges() {
				return errNotClean
			}
			return nil
		},
	}
	flags.register(cmd)
	flags.render.register(cmd)
	cmd.Flags().StringVar(&repo, "repo", ".", "repository: a local path or a URL")
	cmd.Flags().StringVar(&path, "path", ".", "spec directory inside the repository")
	cmd.Flags().StringVar(&base, "base", "main", "base branch")
	cmd.Flags().StringVar(&head, "head", "", "head branch (required)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: markdown, text or json")
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
