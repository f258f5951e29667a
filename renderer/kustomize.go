package renderer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/meshcd/meshcd/meshspec"
)

// loadKustomization builds dir with kustomize: plugins off, no remote
// bases, nothing read from outside the repository dir belongs to, and a
// panic inside kustomize turned into an error.
func loadKustomization(dir string) (set *meshspec.Set, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("spec directory %s: %w", dir, err)
	}
	root := repositoryRoot(abs)
	if err := refuseRemote(abs, root); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			set, err = nil, fmt.Errorf("kustomize build of %s failed: %v", dir, r)
		}
	}()
	opts := krusty.MakeDefaultOptions()
	resources, err := krusty.MakeKustomizer(opts).Run(confinedFS{FileSystem: filesys.MakeFsOnDisk(), root: root}, abs)
	if err != nil {
		return nil, fmt.Errorf("kustomize build of %s failed: %w", dir, err)
	}
	out, err := resources.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("kustomize build of %s failed: %w", dir, err)
	}
	return meshspec.Load(filepath.ToSlash(dir)+" (kustomize build)", out)
}

// repositoryRoot is the nearest parent of dir holding .git, or dir itself:
// kustomize may read bases anywhere inside it and nowhere else.
func repositoryRoot(dir string) string {
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, ".git")); err == nil {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return dir
		}
		d = parent
	}
}

// kustomizationRefs are the fields of a kustomization that name other
// files or directories.
var kustomizationRefs = []string{"resources", "bases", "components", "crds"}

// refuseRemote reads every kustomization under root and refuses remote
// references, which would make the build depend on the network.
func refuseRemote(dir, root string) error {
	return filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			if d != nil && d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != root {
				return filepath.SkipDir
			}
			return err
		}
		isK := false
		for _, n := range kustomizationNames {
			isK = isK || d.Name() == n
		}
		if !isK {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var k map[string]any
		if err := yaml.Unmarshal(data, &k); err != nil {
			return fmt.Errorf("%s: malformed kustomization: %w", rel(root, path), err)
		}
		for _, field := range kustomizationRefs {
			list, _ := k[field].([]any)
			for _, item := range list {
				s, _ := item.(string)
				if remote(s) {
					return fmt.Errorf("%s: %s entry %q is remote; meshcd builds only from the repository: vendor it in", rel(root, path), field, s)
				}
			}
		}
		return nil
	})
}

func remote(ref string) bool {
	return strings.Contains(ref, "://") || strings.HasPrefix(ref, "git@") || strings.HasPrefix(ref, "github.com/") ||
		strings.HasPrefix(ref, "gitlab.com/") || strings.HasPrefix(ref, "bitbucket.org/") || strings.Contains(ref, "?ref=")
}

func rel(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil {
		return r
	}
	return path
}

// confinedFS is the disk, limited to root: a path that leaves it, through
// ".." or a symlink, is an error naming it.
type confinedFS struct {
	filesys.FileSystem
	root string
}

var errOutside = errors.New("is outside the repository; kustomize may only read files inside it")

func (c confinedFS) check(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	real := abs
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		real = r
	}
	for _, p := range []string{abs, real} {
		if r, err := filepath.Rel(c.root, p); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			return fmt.Errorf("%s %w", path, errOutside)
		}
	}
	return nil
}

func (c confinedFS) Open(path string) (filesys.File, error) {
	if err := c.check(path); err != nil {
		return nil, err
	}
	return c.FileSystem.Open(path)
}

func (c confinedFS) IsDir(path string) bool { return c.check(path) == nil && c.FileSystem.IsDir(path) }

func (c confinedFS) Exists(path string) bool {
	return c.check(path) == nil && c.FileSystem.Exists(path)
}

func (c confinedFS) ReadDir(path string) ([]string, error) {
	if err := c.check(path); err != nil {
		return nil, err
	}
	return c.FileSystem.ReadDir(path)
}

func (c confinedFS) CleanedAbs(path string) (filesys.ConfirmedDir, string, error) {
	if err := c.check(path); err != nil {
		return "", "", err
	}
	return c.FileSystem.CleanedAbs(path)
}

func (c confinedFS) ReadFile(path string) ([]byte, error) {
	if err := c.check(path); err != nil {
		return nil, err
	}
	return c.FileSystem.ReadFile(path)
}

func (c confinedFS) Glob(pattern string) ([]string, error) {
	matches, err := c.FileSystem.Glob(pattern)
	if err != nil {
		return nil, err
	}
	out := matches[:0]
	for _, m := range matches {
		if c.check(m) == nil {
			out = append(out, m)
		}
	}
	return out, nil
}

func (c confinedFS) Walk(path string, fn filepath.WalkFunc) error {
	if err := c.check(path); err != nil {
		return err
	}
	return c.FileSystem.Walk(path, fn)
}
