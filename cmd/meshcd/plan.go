package main

import (
	"context"
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

// planFlags are the flags of meshcd plan.
type planFlags struct {
	source     sourceFlags
	repo, path string
	base, head string
	output     *outputFormat
}

func newPlanCommand(stdout io.Writer) *cobra.Command {
	var f planFlags
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what merging a branch would change: objects added, changed and removed, findings introduced and fixed",
		Long: "plan renders the base and the head of a pull request and compares them: objects, route traffic\n" +
			"shares, findings introduced and fixed, waypoint order, rollouts. With --kubeconfig it also diffs\n" +
			"the head against the live cluster; when that fails, the plan of the branches is still printed\n" +
			"and says why the live part is missing.\n\n" +
			"Exit codes, for CI:\n" +
			"  0  no change\n" +
			"  1  changes, and no error finding introduced\n" +
			"  2  error: the plan or its live part could not be made; with -o markdown the output still\n" +
			"     carries the error (file:line first), and the plan of the branches when only the live part failed\n" +
			"  3  the head introduces an error finding (whether or not it also changes objects)",
		Example: "  meshcd plan --repo . --base main --head my-change\n" +
			"  meshcd plan --repo https://github.com/acme/mesh --path clusters/prod --head pr-42 -o markdown > plan.md\n" +
			"  meshcd plan --repo . --head my-change --kubeconfig ~/.kube/config --context prod   # also diff the live cluster",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			work, err := os.MkdirTemp("", "meshcd-plan-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(work)
			p, headDir, err := f.plan(cmd.Context(), work)
			if err != nil {
				if f.output.String() == "markdown" {
					fmt.Fprint(stdout, plan.FailureMarkdown(f.base, f.head, err))
				}
				return err
			}
			liveErr := f.live(cmd.Context(), p, headDir)
			if done, err := f.output.encoded(stdout, p); err != nil {
				return err
			} else if !done {
				printNotes(cmd.ErrOrStderr(), p.Notes)
			}
			if f.output.String() == "markdown" {
				fmt.Fprint(stdout, p.Markdown(plan.MaxComment))
			} else if f.output.String() == "text" {
				fmt.Fprint(stdout, p.Text())
			}
			switch {
			case liveErr != nil:
				return liveErr
			case p.IntroducesErrors():
				return errFindingsIntroduced
			case p.HasChanges():
				return errNotClean
			}
			return nil
		},
	}
	f.source.register(cmd)
	cmd.Flags().StringVar(&f.repo, "repo", ".", "repository: a local path or a URL")
	cmd.Flags().StringVar(&f.path, "path", ".", "spec directory inside the repository")
	cmd.Flags().StringVar(&f.base, "base", "main", "base branch")
	cmd.Flags().StringVar(&f.head, "head", "", "head branch (required)")
	f.output = addOutput(cmd, "text", "markdown", "json", "yaml")
	_ = cmd.MarkFlagRequired("head")
	return cmd
}

// plan fetches both branches into work and compares their renders; it
// returns the head's directory too.
func (f *planFlags) plan(ctx context.Context, work string) (*plan.Plan, string, error) {
	url, err := repoURL(f.repo)
	if err != nil {
		return nil, "", err
	}
	auth, err := source.AuthFromEnv()
	if err != nil {
		return nil, "", err
	}
	fetch := func(branch string) (*source.Artifact, error) {
		a, _, err := source.New(source.Options{URL: url, Ref: source.Ref{Branch: branch}, Path: f.path, Auth: auth, WorkDir: filepath.Join(work, branch)}).Fetch(ctx)
		return a, err
	}
	b, err := fetch(f.base)
	if err != nil {
		return nil, "", fmt.Errorf("base: %w", err)
	}
	h, err := fetch(f.head)
	if err != nil {
		return nil, "", fmt.Errorf("head: %w", err)
	}
	opts := plan.DefaultOptions()
	opts.Render = f.source.render.options()
	opts.ZtunnelNodes = f.ztunnelNodes(ctx)
	p, err := plan.Compute(b.Revision, b.Dir, h.Revision, h.Dir, opts)
	return p, h.Dir, err
}

// ztunnelNodes are the nodes the live ztunnel runs on, for a rollout's
// ztunnel stage; nil (the plan then says "every node") without
// --kubeconfig or when the cluster cannot tell, in which case the live
// part of the plan says why.
func (f *planFlags) ztunnelNodes(ctx context.Context) []string {
	if f.source.instance.kube.kubeconfig == "" {
		return nil
	}
	cl, err := f.source.instance.kube.connect(ctx)
	if err != nil {
		return nil
	}
	nodes, err := dataplane.ZtunnelNodes(ctx, cl.client, "")
	if err != nil {
		return nil
	}
	return nodes
}

// live adds the head's diff against the cluster to p when --kubeconfig
// asks for it. When it fails, p says why the live part is missing and the
// error is returned.
func (f *planFlags) live(ctx context.Context, p *plan.Plan, headDir string) error {
	if f.source.instance.kube.kubeconfig == "" {
		return nil
	}
	d, err := f.liveDiff(ctx, headDir)
	if err != nil {
		p.LiveMissing = err.Error()
		return fmt.Errorf("live diff: %w", err)
	}
	for _, o := range d.Changed {
		state := fmt.Sprintf("%d fields differ", len(o.Fields))
		if o.Missing {
			state = "not in the cluster yet"
		}
		p.Live = append(p.Live, o.Object+": "+state)
	}
	for _, s := range d.Stale {
		p.Live = append(p.Live, s+": would be pruned")
	}
	return nil
}

func (f *planFlags) liveDiff(ctx context.Context, headDir string) (*reconciler.Diff, error) {
	r, _, err := f.source.reconciler(ctx)
	if err != nil {
		return nil, err
	}
	return r.Diff(ctx, headDir)
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
