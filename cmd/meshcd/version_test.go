package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/meshcd/meshcd/internal/version"
)

func TestVersion_TextJSONAndTheRootFlag(t *testing.T) {
	code, out, errOut := meshcd("version")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"meshcd:      ", "commit:      ", "go:          " + runtime.Version(), "tested with: Kubernetes v", "istiod from istio.io/istio@v", "bundles:     1."} {
		if !strings.Contains(out, want) {
			t.Errorf("version lacks %q:\n%s", want, out)
		}
	}
	if code, flagOut, _ := meshcd("--version"); code != 0 || flagOut != out {
		t.Errorf("--version: exit %d, prints\n%s\nnot the same as version:\n%s", code, flagOut, out)
	}
	code, out, _ = meshcd("version", "-o", "json")
	var info version.Info
	if err := json.Unmarshal([]byte(out), &info); err != nil || code != 0 {
		t.Fatalf("json: exit %d, %v:\n%s", code, err, out)
	}
	if info.Go != runtime.Version() || info.TestedWith.Kubernetes == "" || len(info.Bundles) == 0 {
		t.Fatalf("json fields: %+v", info)
	}
	if code, _, errOut := meshcd("version", "-o", "yaml"); code != 2 || !strings.Contains(errOut, `unknown output format "yaml": use text or json`) {
		t.Fatalf("a bad format: exit %d, %q", code, errOut)
	}
}

// A release build sets its version and commit with -ldflags -X; a build in
// a git checkout names its commit by itself.
func TestVersion_ABuiltBinaryNamesItsVersionAndCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds meshcd")
	}
	built := func(t *testing.T, args ...string) version.Info {
		t.Helper()
		bin := filepath.Join(t.TempDir(), "meshcd")
		out, err := exec.Command("go", append(append([]string{"build"}, args...), "-o", bin, ".")...).CombinedOutput()
		if err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		if out, err = exec.Command(bin, "version", "-o", "json").Output(); err != nil {
			t.Fatalf("meshcd version: %v", err)
		}
		var info version.Info
		if err := json.Unmarshal(out, &info); err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		return info
	}
	t.Run("release", func(t *testing.T) {
		const pkg = "github.com/meshcd/meshcd/internal/version"
		info := built(t, "-ldflags", "-X "+pkg+".Version=v9.8.7-test -X "+pkg+".Commit=0123456789abcdef0123456789abcdef01234567")
		if info.Version != "v9.8.7-test" || info.Commit != "0123456789abcdef0123456789abcdef01234567" {
			t.Fatalf("version %q commit %q", info.Version, info.Commit)
		}
	})
	t.Run("checkout", func(t *testing.T) {
		top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
		if err != nil {
			t.Skipf("not in a git checkout (%v): no commit to compare with", err)
		}
		// go build stamps VCS information only where .git is a directory
		// (cmd/go/internal/vcs: vcsGit's root name), not in a git worktree.
		if fi, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); err != nil || !fi.IsDir() {
			t.Skip("a git worktree, whose .git is a file: go build records no commit there")
		}
		head, err := exec.Command("git", "rev-parse", "HEAD").Output()
		if err != nil {
			t.Fatal(err)
		}
		info := built(t, "-buildvcs=true")
		if info.Commit != strings.TrimSpace(string(head)) || info.CommitTime == "" {
			t.Fatalf("commit %q at %q; want %s", info.Commit, info.CommitTime, head)
		}
	})
}
