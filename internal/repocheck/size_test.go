package repocheck

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// maxTrackedSize is the largest file git may track outside testdata.
const maxTrackedSize = 1 << 20

// largeFiles returns the files of paths (relative to root) larger than
// limit, each with its size, except those under a testdata directory;
// symbolic links and files missing from the work tree are skipped.
func largeFiles(root string, paths []string, limit int64) ([]string, error) {
	var large []string
	for _, p := range paths {
		if slices.Contains(strings.Split(p, "/"), "testdata") {
			continue
		}
		fi, err := os.Lstat(filepath.Join(root, filepath.FromSlash(p)))
		switch {
		case os.IsNotExist(err):
			continue // deleted in the work tree, not yet committed
		case err != nil:
			return nil, err
		case fi.Mode().IsRegular() && fi.Size() > limit:
			large = append(large, fmt.Sprintf("%s (%.1f MiB)", p, float64(fi.Size())/(1<<20)))
		}
	}
	return large, nil
}

func TestTrackedFiles_NoneOver1MiBOutsideTestdata(t *testing.T) {
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not a git checkout (git rev-parse --show-toplevel: %v): no tracked files to check", err)
	}
	root := strings.TrimSpace(string(top))
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	paths := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if len(paths) < 10 {
		t.Fatalf("git ls-files listed %d files: the check would show nothing", len(paths))
	}
	large, err := largeFiles(root, paths, maxTrackedSize)
	if err != nil {
		t.Fatal(err)
	}
	if len(large) > 0 {
		t.Fatalf("tracked files over 1 MiB outside testdata: %s; every clone downloads them: remove them with git rm --cached (built binaries belong in .gitignore), or move test inputs under a testdata directory", strings.Join(large, ", "))
	}
}

func TestLargeFiles_NamesTheLargeOnesOutsideTestdata(t *testing.T) {
	root := t.TempDir()
	for name, size := range map[string]int{"meshcd": 2 << 20, "small.go": 100, "pkg/testdata/big.bin": 2 << 20, "docs/exactly.bin": 1 << 20} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, bytes.Repeat([]byte{'x'}, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(root, "meshcd"), filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	large, err := largeFiles(root, []string{"meshcd", "small.go", "pkg/testdata/big.bin", "docs/exactly.bin", "link", "deleted.bin"}, maxTrackedSize)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(large, []string{"meshcd (2.0 MiB)"}) {
		t.Fatalf("large files %v, want the 2 MiB binary alone", large)
	}
}
