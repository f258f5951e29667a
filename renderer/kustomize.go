package renderer

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/meshcd/meshcd/meshspec"
)

// loadKustomization builds dir with kustomize: plugins off, no remote
// bases, nothing read from outside the repository dir belongs to, and a
// panic inside kustomize turned into an error.
//
// The files under dir that the build did not read are returned as skipped:
// kustomize reads only what a kustomization names.
func loadKustomization(dir string) (set *meshspec.Set, skipped []Skip, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("spec directory %s: %w", dir, err)
	}
	root := repositoryRoot(abs)
	if err := refuseRemote(abs, root); err != nil {
		return nil, nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			set, skipped, err = nil, nil, fmt.Errorf("kustomize build of %s failed: %v", dir, r)
		}
	}()
	opts := krusty.MakeDefaultOptions()
	fsys := confinedFS{FileSystem: filesys.MakeFsOnDisk(), root: root, read: &readLog{paths: map[string]bool{}}}
	resources, err := krusty.MakeKustomizer(opts).Run(fsys, abs)
	if err != nil {
		return nil, nil, fmt.Errorf("kustomize build of %s failed: %w", dir, err)
	}
	out, err := resources.AsYaml()
	if err != nil {
		return nil, nil, fmt.Errorf("kustomize build of %s failed: %w", dir, err)
	}
	if set, err = meshspec.Load(filepath.ToSlash(dir)+" (kustomize build)", out); err != nil {
		return nil, nil, err
	}
	files, skipped, err := specFiles(abs)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range files {
		if !fsys.read.has(filepath.Join(abs, f)) {
			skipped = append(skipped, Skip{Path: filepath.ToSlash(f), Reason: skipUnlisted})
		}
	}
	sortSkips(skipped)
	return set, skipped, nil
}

// readLog records the files kustomize read, by absolute path.
type readLog struct {
	mu    sync.Mutex
	paths map[string]bool
}

func (l *readLog) add(path string) {
	if abs, err := filepath.Abs(path); err == nil {
		l.mu.Lock()
		l.paths[abs] = true
		l.mu.Unlock()
	}
}

func (l *readLog) has(abs string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.paths[abs]
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

// kustomizationRefs are the fields of a kustomization that list other
// files or directories. kustomize fetches an http(s) URL in any of them,
// and in the fields of kustomizationObjectRefs, from the network.
var kustomizationRefs = []string{"resources", "bases", "components", "crds", "configurations", "generators", "transformers", "validators", "patchesStrategicMerge"}

// kustomizationObjectRefs are the lists of objects with fields that name
// a file, in the order they are checked.
var kustomizationObjectRefs = []struct {
	list   string
	fields []string
}{
	{"patches", []string{"path"}},
	{"patchesJson6902", []string{"path"}},
	{"replacements", []string{"path"}},
	{"configMapGenerator", []string{"files", "envs", "env"}},
	{"secretGenerator", []string{"files", "envs", "env"}},
}

// ref is one file reference of a kustomization: the field and its value.
type ref struct{ field, value string }

// refs returns the file references of a kustomization: single-line strings
// only, as a multi-line entry is inline content.
func refs(k map[string]any) []ref {
	var out []ref
	add := func(field string, v any) {
		items, _ := v.([]any)
		if s, ok := v.(string); ok {
			items = []any{s}
		}
		for _, item := range items {
			if s, ok := item.(string); ok && !strings.Contains(s, "\n") {
				out = append(out, ref{field, s})
			}
		}
	}
	for _, field := range kustomizationRefs {
		add(field, k[field])
	}
	for _, o := range kustomizationObjectRefs {
		items, _ := k[o.list].([]any)
		for _, item := range items {
			m, _ := item.(map[string]any)
			for _, f := range o.fields {
				add(o.list+"."+f, m[f])
			}
		}
	}
	if o, ok := k["openapi"].(map[string]any); ok {
		add("openapi.path", o["path"])
	}
	return out
}

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
		data, err := readBoundedYAML(path)
		if err != nil {
			return fmt.Errorf("%s: %w", rel(root, path), err)
		}
		var k map[string]any
		if err := yaml.Unmarshal(data, &k); err != nil {
			return fmt.Errorf("%s: malformed kustomization: %w", rel(root, path), err)
		}
		for _, r := range refs(k) {
			if remote(r.value) {
				return fmt.Errorf("%s: %s entry %q is remote; meshcd builds only from the repository: vendor it in", rel(root, path), r.field, r.value)
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
	read *readLog
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

// ReadFile reads a file inside the repository within the loader's bounds:
// kustomize (kyaml) would read a file of any size and expand every YAML
// alias in it, so a large file or an alias bomb would exhaust memory.
func (c confinedFS) ReadFile(path string) ([]byte, error) {
	if err := c.check(path); err != nil {
		return nil, err
	}
	data, err := readBoundedYAML(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.read.add(path)
	return data, nil
}

// readBoundedYAML reads a file within meshspec's size bound and refuses it
// when its aliases expand past meshspec's node bound.
func readBoundedYAML(path string) ([]byte, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	return data, boundedYAML(data)
}

// boundedYAML refuses YAML whose aliases expand to more than
// meshspec.MaxNodes nodes (or into themselves). Data that is not YAML is
// left to kustomize to report.
func boundedYAML(data []byte) error {
	if !bytes.Contains(data, []byte("*")) {
		return nil // no alias
	}
	dec := yamlv3.NewDecoder(bytes.NewReader(data))
	seen := map[*yamlv3.Node]int{}
	total := 0
	for {
		var doc yamlv3.Node
		if dec.Decode(&doc) != nil {
			return nil // the end, or not YAML
		}
		if total += expandedNodes(&doc, seen); total > meshspec.MaxNodes {
			return fmt.Errorf("file expands to more than %d YAML nodes through aliases (an alias bomb?); meshcd refuses it", meshspec.MaxNodes)
		}
	}
}

// expandedNodes counts n's nodes with every alias expanded, each node
// counted once in seen; an alias to a node being counted (a cycle) counts
// as over the bound.
func expandedNodes(n *yamlv3.Node, seen map[*yamlv3.Node]int) int {
	if n.Kind == yamlv3.AliasNode && n.Alias != nil {
		return 1 + expandedNodes(n.Alias, seen)
	}
	if c, ok := seen[n]; ok {
		return c
	}
	seen[n] = meshspec.MaxNodes + 1
	c := 1
	for _, child := range n.Content {
		if c += expandedNodes(child, seen); c > meshspec.MaxNodes {
			c = meshspec.MaxNodes + 1
			break
		}
	}
	seen[n] = c
	return c
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
