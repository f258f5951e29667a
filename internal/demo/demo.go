// Package demo runs meshcd's main job end to end on a local cluster: a git
// repository made from an example, the controller reconciling it, a weight
// change planned and applied, a hand-made change reported as drift and
// corrected, istiod's status read back, and a DataplaneRollout added and
// promoted by pull requests and followed stage by stage, ztunnel included.
// `make demo` runs it in full; its test runs it on the test package's
// cluster.
package demo

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/dataplane"
	"github.com/meshcd/meshcd/internal/localcluster"
	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/controller"
	"github.com/meshcd/meshcd/reconciler/lister"
	"github.com/meshcd/meshcd/reconciler/plan"
	"github.com/meshcd/meshcd/reconciler/source"
)

// Options configure a demo run.
type Options struct {
	// Example is the example directory turned into the git repository.
	Example string
	// Config reaches the cluster.
	Config *rest.Config
	// Out receives the narration.
	Out io.Writer
	// Interval is the controller's poll interval.
	Interval time.Duration
	// Name tells this demo's meshcd instance apart from others on the cluster.
	Name string
	// IstiodMonitoringURL serves istiod's /debug/ambientz, asked for its
	// own view of the canary.
	IstiodMonitoringURL string
}

// Result holds what the demo measured, for its test.
type Result struct {
	FirstApply     time.Duration
	WeightApplied  time.Duration
	DriftCorrected time.Duration
	Plan           *plan.Plan
	// RolloutPlan and PromotePlan are the plans of the pull requests that
	// add the DataplaneRollout and promote its manual stage.
	RolloutPlan, PromotePlan *plan.Plan
	// PromoteMerged is when the promote merged.
	PromoteMerged time.Time
	// Rollout is the time from the first merge to Succeeded.
	Rollout time.Duration
	// Istiod is istiod's view of the canary Service at each canary weight.
	Istiod []CanaryView
}

// CanaryView is what istiod resolved for the canary Service at one weight.
type CanaryView struct {
	Weight int32
	Istiod []localcluster.WeightedWaypoint
}

// namespaces are the example's namespaces, which the platform creates.
var namespaces = []string{"hello", "httpbin", "shop", "payments"}

// step prints a numbered heading.
type narrator struct {
	out io.Writer
	n   int
}

func (n *narrator) step(format string, args ...any) {
	n.n++
	fmt.Fprintf(n.out, "\n== %d. %s\n", n.n, fmt.Sprintf(format, args...))
}

func (n *narrator) say(format string, args ...any) { fmt.Fprintf(n.out, "   "+format+"\n", args...) }

// Run runs the demo.
func Run(ctx context.Context, opts Options) (*Result, error) {
	n := &narrator{out: opts.Out}
	res := &Result{}
	c, err := client.New(opts.Config, client.Options{})
	if err != nil {
		return nil, err
	}

	n.step("the platform creates the namespaces and installs ztunnel (meshcd labels namespaces, it never creates them)")
	for _, ns := range namespaces {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
		n.say("namespace %s", ns)
	}
	if err := installZtunnel(ctx, c, n); err != nil {
		return nil, err
	}

	n.step("a git repository from %s, without its %s (a pull request adds it later)", opts.Example, rolloutFile)
	repoDir, err := os.MkdirTemp("", "meshcd-demo-repo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(repoDir)
	repo, first, err := initRepo(repoDir, opts.Example, rolloutFile)
	if err != nil {
		return nil, err
	}
	n.say("main@sha1:%s in file://%s", first, repoDir)

	n.step("meshcd run --repo file://%s --branch main --interval %s", repoDir, opts.Interval)
	work, err := os.MkdirTemp("", "meshcd-demo-work-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	rOpts := reconciler.DefaultOptions()
	rOpts.Name, rOpts.HealthHold = opts.Name, time.Second
	logLevel := &slog.LevelVar{}
	ctrl, stop, err := startController(ctx, opts, c, logLevel, controller.Options{
		Source:     source.Options{URL: "file://" + repoDir, Ref: source.Ref{Branch: "main"}, WorkDir: work},
		Reconciler: rOpts,
		Interval:   opts.Interval,
		// A moving rollout is re-checked this soon, so that each step
		// follows the last within a second.
		RolloutPoll: 500 * time.Millisecond,
	})
	if err != nil {
		return nil, err
	}
	defer stop()
	status := &controller.StatusStore{Client: c, Namespace: rOpts.Namespace, Name: "meshcd-status-" + opts.Name}
	start := time.Now()
	st, err := waitApplied(ctx, status, "main@sha1:"+first, 3*time.Minute)
	if err != nil {
		return nil, err
	}
	res.FirstApply = time.Since(start)
	n.say("Ready: %s (%s)", readyMessage(st), res.FirstApply.Round(time.Millisecond))

	n.step("a pull request moves helloworld to 50/50; the plan posted on it")
	head, err := commit(repo, repoDir, "canary-50", "mesh: helloworld 50/50", "mesh.yaml", func(b []byte) (string, error) {
		const old = "backends: {v1: 95, v2: 5}"
		if !strings.Contains(string(b), old) {
			return "", fmt.Errorf("mesh.yaml does not contain %q", old)
		}
		return strings.Replace(string(b), old, "backends: {v1: 50, v2: 50}", 1), nil
	})
	if err != nil {
		return nil, err
	}
	baseDir, headDir, cleanup, err := checkouts(ctx, repoDir, "main", "canary-50")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	res.Plan, err = plan.Compute("main", baseDir, "canary-50", headDir, plan.DefaultOptions())
	if err != nil {
		return nil, err
	}
	fmt.Fprint(opts.Out, indent(res.Plan.Text()))

	n.step("the pull request merges; meshcd applies it within one interval")
	if err := fastForward(repo, "main", head); err != nil {
		return nil, err
	}
	start = time.Now()
	if _, err := waitApplied(ctx, status, "main@sha1:"+head, 2*time.Minute); err != nil {
		return nil, err
	}
	res.WeightApplied = time.Since(start)
	weights, err := routeWeights(ctx, c)
	if err != nil {
		return nil, err
	}
	n.say("HTTPRoute hello/helloworld weights now %s (applied %s after the merge)", weights, res.WeightApplied.Round(time.Millisecond))

	n.step("someone runs: kubectl label namespace hello istio.io/use-waypoint=none --overwrite")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "hello"}}
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"none"}}}`, ambient.LabelUseWaypoint)
	start = time.Now()
	if err := c.Patch(ctx, ns, client.RawPatch(types.MergePatchType, []byte(patch)), client.FieldOwner("kubectl-label")); err != nil {
		return nil, err
	}
	report, err := ctrl.rec.Drift(ctx, headDir)
	if err == nil && len(report.Objects) > 0 {
		_ = report.Write(indentWriter{opts.Out}, "text")
	} else {
		n.say("(already corrected before the report was read)")
	}
	if err := waitLabel(ctx, c, "hello", ambient.LabelUseWaypoint, "waypoint", time.Minute); err != nil {
		return nil, err
	}
	res.DriftCorrected = time.Since(start)
	n.say("corrected: istio.io/use-waypoint=waypoint again after %s", res.DriftCorrected.Round(time.Millisecond))

	n.step("what istiod says (meshcd status)")
	s, err := ctrl.rec.Status(ctx)
	if err != nil {
		return nil, err
	}
	n.say("meshcd owns %d objects", s.Owned)
	for _, h := range s.Health {
		state := "healthy"
		if !h.Healthy {
			state = "not healthy: " + h.Message
		}
		n.say("%s %s", h.Object, state)
	}
	n.say("clones so far: %d (a poll of an unchanged head clones nothing)", ctrl.source.Clones())

	// From here the narration follows the rollout's state; the
	// controller's log of each reconcile would drown it.
	logLevel.Set(slog.LevelWarn)
	r := &rollout{n: n, opts: opts, c: c, repo: repo, repoDir: repoDir, res: res,
		store: &dataplane.Store{Client: c, Namespace: rOpts.Namespace, Name: "meshcd-rollout-" + opts.Name}}
	if err := r.run(ctx); err != nil {
		return nil, err
	}
	return res, nil
}

// demoController is the running controller and what the demo inspects.
type demoController struct {
	rec    *reconciler.Reconciler
	source *source.Source
}

func startController(ctx context.Context, opts Options, c client.Client, level slog.Leveler, copts controller.Options) (*demoController, func(), error) {
	log := slog.New(slog.NewTextHandler(indentWriter{opts.Out}, &slog.HandlerOptions{Level: level}))
	runCtx, cancel := context.WithCancel(ctx)
	lists, err := lister.Start(runCtx, opts.Config, c)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	ctrl := controller.New(c, lists, nil, log, copts)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ctrl.Run(runCtx)
	}()
	stop := func() { cancel(); <-done }
	return &demoController{rec: reconciler.New(c, copts.Reconciler), source: ctrl.Source()}, stop, nil
}

func waitApplied(ctx context.Context, st *controller.StatusStore, revision string, timeout time.Duration) (*controller.Status, error) {
	deadline := time.Now().Add(timeout)
	for {
		s, _, err := st.Load(ctx)
		if err == nil && s.LastAppliedRevision == revision {
			return s, nil
		}
		if time.Now().After(deadline) {
			msg := ""
			if s != nil {
				msg = readyMessage(s)
			}
			return nil, fmt.Errorf("revision %s not applied within %s: %s", revision, timeout, msg)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func readyMessage(s *controller.Status) string {
	for _, c := range s.Conditions {
		if c.Type == "Ready" {
			return fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
		}
	}
	return "no Ready condition yet"
}

func waitLabel(ctx context.Context, c client.Client, ns, key, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		got := &corev1.Namespace{}
		if err := c.Get(ctx, client.ObjectKey{Name: ns}, got); err == nil && got.Labels[key] == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("namespace %s label %s not back to %q within %s", ns, key, want, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func routeWeights(ctx context.Context, c client.Client) (string, error) {
	r := &unstructured.Unstructured{}
	r.SetAPIVersion(ambient.GatewayAPIVersion)
	r.SetKind("HTTPRoute")
	if err := c.Get(ctx, client.ObjectKey{Namespace: "hello", Name: "helloworld"}, r); err != nil {
		return "", err
	}
	rules, _, _ := unstructured.NestedSlice(r.Object, "spec", "rules")
	var parts []string
	for _, rule := range rules {
		refs, _, _ := unstructured.NestedSlice(rule.(map[string]any), "backendRefs")
		for _, ref := range refs {
			m := ref.(map[string]any)
			parts = append(parts, fmt.Sprintf("%v=%v", m["name"], m["weight"]))
		}
	}
	return strings.Join(parts, " "), nil
}

// initRepo copies the example, but for the files skip names, into a new
// repository and commits it on main.
func initRepo(dir, example string, skip ...string) (*git.Repository, string, error) {
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}})
	if err != nil {
		return nil, "", err
	}
	err = filepath.WalkDir(example, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(example, path)
		if slices.Contains(skip, rel) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		return nil, "", err
	}
	wt, err := repo.Worktree()
	if err != nil {
		return nil, "", err
	}
	if err := wt.AddGlob("."); err != nil {
		return nil, "", err
	}
	h, err := wt.Commit("mesh: initial spec", &git.CommitOptions{Author: author()})
	if err != nil {
		return nil, "", err
	}
	return repo, h.String(), nil
}

func author() *object.Signature {
	return &object.Signature{Name: "platform team", Email: "platform@example.com", When: time.Now()}
}

// commit writes file on a new branch, with what edit makes of its
// content (nil when it does not exist yet), and returns the commit.
func commit(repo *git.Repository, dir, branch, message, file string, edit func(old []byte) (string, error)) (string, error) {
	wt, err := repo.Worktree()
	if err != nil {
		return "", err
	}
	if err := wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName(branch), Create: true}); err != nil {
		return "", err
	}
	p := filepath.Join(dir, file)
	old, err := os.ReadFile(p)
	if err != nil && !os.IsNotExist(err) {
		return "", err
	}
	content, err := edit(old)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		return "", err
	}
	if _, err := wt.Add(file); err != nil {
		return "", err
	}
	h, err := wt.Commit(message, &git.CommitOptions{Author: author()})
	if err != nil {
		return "", err
	}
	return h.String(), wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName("main")})
}

// fastForward moves branch to hash, as merging the pull request does.
func fastForward(repo *git.Repository, branch, hash string) error {
	return repo.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName(branch), plumbing.NewHash(hash)))
}

// checkouts fetches base and head the way meshcd plan does.
func checkouts(ctx context.Context, repoDir, base, head string) (string, string, func(), error) {
	work, err := os.MkdirTemp("", "meshcd-demo-plan-")
	if err != nil {
		return "", "", nil, err
	}
	cleanup := func() { os.RemoveAll(work) }
	get := func(branch string) (string, error) {
		a, _, err := source.New(source.Options{URL: "file://" + repoDir, Ref: source.Ref{Branch: branch}, WorkDir: filepath.Join(work, branch)}).Fetch(ctx)
		if err != nil {
			return "", err
		}
		return a.Dir, nil
	}
	b, err := get(base)
	if err != nil {
		cleanup()
		return "", "", nil, err
	}
	h, err := get(head)
	if err != nil {
		cleanup()
		return "", "", nil, err
	}
	return b, h, cleanup, nil
}

func indent(s string) string {
	return "   " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n   ") + "\n"
}

// indentWriter indents everything written through it.
type indentWriter struct{ w io.Writer }

func (i indentWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(i.w, indent(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
