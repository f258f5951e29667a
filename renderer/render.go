package renderer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/meshspec"
)

// Options tune a render.
type Options struct {
	// RootNamespace is the mesh root namespace: policies there are mesh-wide.
	RootNamespace string
	// TrustDomain spells workload identities in policies.
	TrustDomain string
	// Instance, when set, names the meshcd instance that owns every object
	// rendered (label meshcd.dev/instance).
	Instance string `json:",omitempty"`
}

// DefaultOptions returns the options of a default Istio install.
func DefaultOptions() Options {
	return Options{RootNamespace: meshspec.DefaultRootNamespace, TrustDomain: "cluster.local"}
}

// Bundle is the output of a render.
type Bundle struct {
	// Objects are sorted by group, kind, namespace and name.
	Objects []*unstructured.Unstructured
	// Spec is the loaded, completed spec, DataplaneRollouts included.
	Spec *meshspec.Set

	origins map[meshspec.Ref]meshspec.Position
}

// Origin returns the file and line of the spec document or manifest an
// object came from; zero when unknown.
func (b *Bundle) Origin(obj *unstructured.Unstructured) meshspec.Position {
	return b.origins[meshspec.RefOf(obj)]
}

// kustomizationNames are the file names kustomize recognises.
var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// Render reads dir and returns the objects it describes.
func Render(dir string, opts Options) (*Bundle, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("spec directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("spec directory %s is not a directory", dir)
	}
	var set *meshspec.Set
	if hasKustomization(dir) {
		set, err = loadKustomization(dir)
	} else {
		set, err = loadFiles(dir)
	}
	if err != nil {
		return nil, err
	}
	if err := set.Complete(opts.RootNamespace); err != nil {
		return nil, err
	}
	return compile(set, opts)
}

func hasKustomization(dir string) bool {
	for _, n := range kustomizationNames {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return true
		}
	}
	return false
}

// loadFiles reads every YAML file under dir, skipping hidden entries, and
// refuses symlinks that lead out of dir. Files are decoded in parallel and
// merged in path order, so the result does not depend on scheduling.
func loadFiles(dir string) (*meshspec.Set, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("spec directory %s: %w", dir, err)
	}
	var paths []string
	walkErr := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if rel != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !isYAML(d.Name()) {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := filepath.EvalSymlinks(path)
			if err != nil {
				return fmt.Errorf("%s: broken symlink: %w", rel, err)
			}
			if r, err := filepath.Rel(root, target); err != nil || strings.HasPrefix(r, "..") {
				return fmt.Errorf("%s: symlink leads out of the spec directory (to %s); copy the file in instead", rel, target)
			}
		}
		paths = append(paths, rel)
		return nil
	})
	if walkErr != nil {
		return nil, walkErr
	}
	sets := make([]*meshspec.Set, len(paths))
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(runtime.GOMAXPROCS(0), len(paths)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				data, err := readBounded(filepath.Join(root, paths[i]))
				if err != nil {
					errs[i] = fmt.Errorf("%s: %w", paths[i], err)
					continue
				}
				sets[i], errs[i] = meshspec.Load(filepath.ToSlash(paths[i]), data)
			}
		}()
	}
	for i := range paths {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	set := meshspec.NewSet()
	for _, s := range sets {
		if err := set.Merge(s); err != nil {
			return nil, err
		}
	}
	return set, nil
}

func isYAML(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

// readBounded reads a file, refusing one larger than the loader accepts
// before reading it into memory.
func readBounded(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > meshspec.MaxFileSize {
		return nil, fmt.Errorf("file is %d bytes, more than the %d meshcd reads; split it", fi.Size(), meshspec.MaxFileSize)
	}
	return os.ReadFile(path)
}

// sortObjects orders objects by group, kind, namespace and name.
func sortObjects(objs []*unstructured.Unstructured) {
	keys := make(map[*unstructured.Unstructured]meshspec.Ref, len(objs))
	for _, o := range objs {
		keys[o] = meshspec.RefOf(o)
	}
	sort.Slice(objs, func(i, j int) bool {
		return keys[objs[i]].Less(keys[objs[j]])
	})
}

// own marks an object as meshcd's, naming the spec document it came from.
func own(obj *unstructured.Unstructured, specKind, specName string) {
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[ambient.LabelManagedBy] = ambient.ManagedByValue
	if specKind != "" {
		labels[ambient.LabelSpecKind] = specKind
		labels[ambient.LabelSpecName] = specName
	}
	obj.SetLabels(labels)
}
