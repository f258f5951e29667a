package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// gitRepo makes a repository whose main branch holds base and whose
// branch head adds the files of head; it returns the repository's path.
func gitRepo(t *testing.T, base, head map[string]string) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed: go-git's file transport runs git-upload-pack")
	}
	dir := t.TempDir()
	r, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}})
	if err != nil {
		t.Fatal(err)
	}
	wt, err := r.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	commit := func(files map[string]string) {
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := wt.Add(name); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := wt.Commit("change", &git.CommitOptions{Author: &object.Signature{Name: "dev", Email: "dev@example.com", When: time.Now()}}); err != nil {
			t.Fatal(err)
		}
	}
	commit(base)
	if err := wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName("head"), Create: true}); err != nil {
		t.Fatal(err)
	}
	commit(head)
	return dir
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
