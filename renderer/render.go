package renderer

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"

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
	// Namespace is where a manifest of a namespaced kind that names no
	// namespace is placed, as kubectl places it: "default" unless told
	// otherwise (kubectl's --namespace). Empty means "default".
	Namespace string
}

// DefaultOptions returns the options of a default Istio install.
func DefaultOptions() Options {
	return Options{RootNamespace: meshspec.DefaultRootNamespace, TrustDomain: "cluster.local", Namespace: metav1.NamespaceDefault}
}

// Bundle is the output of a render.
type Bundle struct {
	// Objects are sorted by group, kind, namespace and name.
	Objects []*unstructured.Unstructured
	// Spec is the loaded, completed spec, DataplaneRollouts included.
	Spec *meshspec.Set
	// Notes list the files not read and warn about the input.
	Notes Notes

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
	ns := cmp.Or(opts.Namespace, metav1.NamespaceDefault)
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return nil, fmt.Errorf("namespace %q for manifests that name none is not a valid namespace: %s", ns, strings.Join(errs, "; "))
	}
	var (
		set   *meshspec.Set
		notes Notes
	)
	if hasKustomization(dir) {
		set, notes.Skipped, err = loadKustomization(dir)
	} else {
		set, notes.Skipped, err = loadFiles(dir)
	}
	if err != nil {
		return nil, err
	}
	if err := set.DefaultNamespace(ns, scopesOf(set.Manifests).namespaced); err != nil {
		return nil, err
	}
	if err := set.Complete(opts.RootNamespace); err != nil {
		return nil, err
	}
	b, err := compile(set, opts)
	if err != nil {
		return nil, err
	}
	if set.Len() == 0 {
		notes.Warnings = append(notes.Warnings, fmt.Sprintf("spec directory %s holds no manifests (%d files skipped), so there is nothing to apply; check the path: %s", dir, len(notes.Skipped), manifestsHint))
	}
	b.Notes = notes
	return b, nil
}

func hasKustomization(dir string) bool {
	for _, n := range kustomizationNames {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return true
		}
	}
	return false
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
