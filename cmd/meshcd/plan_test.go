package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// gitRepo makes a repository whose main branch holds base and whose head
// branch changes it by head's files; an empty content deletes a file.
func gitRepo(t *testing.T, base, head map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}})
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	commit := func(files map[string]string, msg string) {
		for name, content := range files {
			path := filepath.Join(dir, name)
			if content == "" {
				if _, err := wt.Remove(name); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := wt.Add(name); err != nil {
				t.Fatal(err)
			}
		}
		sig := &object.Signature{Name: "test", Email: "test@example.com", When: time.Unix(1_700_000_000, 0)}
		if _, err := wt.Commit(msg, &git.CommitOptions{Author: sig}); err != nil {
			t.Fatal(err)
		}
	}
	commit(base, "base")
	if err := wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName("head"), Create: true}); err != nil {
		t.Fatal(err)
	}
	commit(head, "head")
	return dir
}

const planNS = `apiVersion: meshcd.dev/v1alpha1
kind: MeshNamespace
metadata: {name: hello}
spec:
  waypoint: {}
  useWaypoint: namespace
`

func planService(weights string) string {
	return `apiVersion: meshcd.dev/v1alpha1
kind: MeshService
metadata: {name: hello, namespace: hello}
spec:
  port: 5000
  selector: {app: hello}
  versions: {v1: {version: v1}, v2: {version: v2}}
  routes:
    - match: {headers: {x-canary: always}}
      backends: {v2: 100}
    - backends: ` + weights + `
`
}

func TestPlan_WeightChangeExitsOneWithTrafficShares(t *testing.T) {
	repo := gitRepo(t, map[string]string{"ns.yaml": planNS, "svc.yaml": planService("{v1: 95, v2: 5}")}, map[string]string{"svc.yaml": planService("{v1: 50, v2: 50}")})
	code, out, errOut := meshcd("plan", "--repo", repo, "--head", "head", "-o", "markdown")
	if code != exitChanges {
		t.Fatalf("exit %d, want 1:\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"### Traffic\n\n| route | requests | before | after |",
		"| HTTPRoute hello/hello | every request | hello-v1 95%, hello-v2 5% | hello-v1 50%, hello-v2 50% |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "x-canary") {
		t.Errorf("the unchanged canary rule is listed:\n%s", out)
	}
}

func TestPlan_IntroducedErrorFindingExitsThreeWhateverTheChanges(t *testing.T) {
	repo := gitRepo(t, map[string]string{"ns.yaml": planNS, "svc.yaml": planService("{v1: 95, v2: 5}")}, map[string]string{"policy.yaml": l7AtZtunnel})
	code, out, errOut := meshcd("plan", "--repo", repo, "--head", "head", "-o", "markdown")
	if code != exitFindings {
		t.Fatalf("exit %d, want 3:\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "| AMB020 | error | AuthorizationPolicy shop/orders | policy.yaml:5 |") || !strings.Contains(out, "; 1 finding introduced, 0 fixed") {
		t.Fatalf("markdown lacks the finding with file:line:\n%s", out)
	}
	// A warning introduced is not an error finding: changes only.
	repo = gitRepo(t, map[string]string{"ns.yaml": planNS, "svc.yaml": planService("{v1: 95, v2: 5}")}, map[string]string{"svc.yaml": planService("{v1: 90, v2: 20}")})
	if code, out, _ := meshcd("plan", "--repo", repo, "--head", "head"); code != exitChanges || !strings.Contains(out, "AMB060") {
		t.Fatalf("a warning: exit %d, want 1:\n%s", code, out)
	}
}

func TestPlan_FailureStillWritesTheErrorWithFileAndLineAsMarkdown(t *testing.T) {
	repo := gitRepo(t, map[string]string{"ns.yaml": planNS}, map[string]string{"svc.yaml": planService("{v1: 95, v3: 5}")})
	code, out, errOut := meshcd("plan", "--repo", repo, "--head", "head", "-o", "markdown")
	if code != exitError {
		t.Fatalf("exit %d, want 2:\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"## meshcd plan", "**the plan failed**", "svc.yaml:11:26:", `version "v3" is not declared`} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "svc.yaml:11:26:") {
		t.Errorf("stderr lacks the error: %s", errOut)
	}
}

func TestPlan_FailedLiveDiffKeepsTheGitPlanAndSaysWhy(t *testing.T) {
	repo := gitRepo(t, map[string]string{"ns.yaml": planNS, "svc.yaml": planService("{v1: 95, v2: 5}")}, map[string]string{"svc.yaml": planService("{v1: 50, v2: 50}")})
	server := refusingServer(t)
	kc := kubeconfigFor(t, server)
	code, out, errOut := meshcd("plan", "--repo", repo, "--head", "head", "-o", "markdown", "--kubeconfig", kc, "--request-timeout", "2s")
	if code != exitError {
		t.Fatalf("exit %d, want 2:\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"| HTTPRoute hello/hello | every request | hello-v1 95%, hello-v2 5% | hello-v1 50%, hello-v2 50% |",
		"### Against the live cluster",
		"The live diff is missing: cluster " + server + ` (context "test-ctx") refused the connection`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
}

func TestPlan_ListsTheHeadsSkippedFilesAndPlacesManifestsInTheFlagsNamespace(t *testing.T) {
	repo := gitRepo(t,
		map[string]string{"a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"},
		map[string]string{"b.JSON": `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}`, "NOTES.txt": "later\n"})
	code, out, errOut := meshcd("plan", "--repo", repo, "--head", "head", "-n", "shop")
	if code != 1 || !strings.Contains(out, "ConfigMap shop/b") {
		t.Fatalf("exit %d, want ConfigMap shop/b added:\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "skipped: NOTES.txt: not a manifest") {
		t.Fatalf("stderr lacks the skipped file: %q", errOut)
	}
	code, out, _ = meshcd("plan", "--repo", repo, "--head", "head", "-o", "json")
	var p struct {
		Changes []struct{ Object string }
		Skipped []struct{ Path, Reason string }
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil || code != 1 || len(p.Changes) != 1 || p.Changes[0].Object != "ConfigMap default/b" {
		t.Fatalf("json: exit %d, %v:\n%s", code, err, out)
	}
	var paths []string
	for _, s := range p.Skipped {
		paths = append(paths, s.Path)
	}
	if !strings.Contains(strings.Join(paths, " "), "NOTES.txt") {
		t.Fatalf("json skipped lacks NOTES.txt: %v", paths)
	}
}
