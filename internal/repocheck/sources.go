package repocheck

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"go/build"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// ModulePath reads the module path from root's go.mod.
func ModulePath(root string) (string, error) {
	f, err := os.Open(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(p), `"`), nil
		}
	}
	return "", fmt.Errorf("%s: no module line", filepath.Join(root, "go.mod"))
}

// Sources returns the files, relative to the module root and sorted, that
// the tests of the package in dir (relative to root) build from within the
// module: every .go file of dir, test files included, and, for each package
// of the module those files import (transitively, test files excluded),
// its .go files and embedded files. Files of every platform are listed;
// imports are followed for the running one.
func Sources(root, dir string) ([]string, error) {
	module, err := ModulePath(root)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var files []string
	var visit func(dir string, tests bool) error
	visit = func(dir string, tests bool) error {
		if seen[dir] {
			return nil
		}
		seen[dir] = true
		abs := filepath.Join(root, filepath.FromSlash(dir))
		pkg, err := build.Default.ImportDir(abs, 0)
		if err != nil {
			return fmt.Errorf("package %s: %w", dir, err)
		}
		names := slices.Concat(pkg.GoFiles, pkg.CgoFiles, pkg.IgnoredGoFiles)
		imports, embeds := pkg.Imports, pkg.EmbedPatterns
		if tests {
			names = slices.Concat(names, pkg.TestGoFiles, pkg.XTestGoFiles)
			imports = slices.Concat(imports, pkg.TestImports, pkg.XTestImports)
			embeds = slices.Concat(embeds, pkg.TestEmbedPatterns, pkg.XTestEmbedPatterns)
		}
		for _, n := range names {
			if tests || !strings.HasSuffix(n, "_test.go") {
				files = append(files, path.Join(dir, n))
			}
		}
		for _, pattern := range embeds {
			matched, err := embedded(abs, pattern)
			if err != nil {
				return fmt.Errorf("package %s: //go:embed %s: %w", dir, pattern, err)
			}
			for _, m := range matched {
				files = append(files, path.Join(dir, m))
			}
		}
		for _, imp := range imports {
			if rel, ok := strings.CutPrefix(imp, module+"/"); ok {
				if err := visit(rel, false); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := visit(filepath.ToSlash(filepath.Clean(dir)), true); err != nil {
		return nil, err
	}
	slices.Sort(files)
	return slices.Compact(files), nil
}

// embedded returns the files, relative to dir, that an embed pattern names:
// a glob whose matched directories count with every file below them.
func embedded(dir, pattern string) ([]string, error) {
	pattern = strings.TrimPrefix(pattern, "all:")
	matches, err := filepath.Glob(filepath.Join(dir, filepath.FromSlash(pattern)))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range matches {
		err := filepath.WalkDir(m, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// InputsDigest is the Digest of the Sources of the package in dir.
func InputsDigest(root, dir string) (string, error) {
	files, err := Sources(root, dir)
	if err != nil {
		return "", err
	}
	return Digest(root, files)
}

// Digest returns "sha256:<hex>" over files (relative to root): each file's
// path and content, in the order given.
func Digest(root string, files []string) (string, error) {
	h := sha256.New()
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(data))
		h.Write(data)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
