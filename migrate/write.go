package migrate

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/meshspec"
)

// typed turns a spec document into an object.
func typed(v any) *unstructured.Unstructured {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(v)
	if err != nil {
		panic(fmt.Sprintf("migrate: spec types do not convert: %v", err)) // a build defect: the spec types are plain structs
	}
	unstructured.RemoveNestedField(m, "metadata", "creationTimestamp")
	return &unstructured.Unstructured{Object: m}
}

// isSpec reports whether a document is one of meshcd's spec kinds.
func (d *Document) isSpec() bool {
	return strings.HasPrefix(d.Object.GetAPIVersion(), meshspec.Group+"/")
}

// writeDir writes docs as a spec directory: per namespace, mesh.yaml for
// the spec documents and istio.yaml for the plain manifests, each with a
// comment saying why it is plain.
func writeDir(dir string, docs []*Document) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string][]*Document{}
	for _, d := range docs {
		name := "istio.yaml"
		if d.isSpec() {
			name = "mesh.yaml"
		}
		path := filepath.Join(dir, d.Namespace, name)
		files[path] = append(files[path], d)
	}
	for _, path := range slices.Sorted(maps.Keys(files)) {
		ds := files[path]
		sort.SliceStable(ds, func(i, j int) bool { return docKey(ds[i]).Less(docKey(ds[j])) })
		var b bytes.Buffer
		for i, d := range ds {
			if i > 0 {
				b.WriteString("---\n")
			}
			if d.Why != "" {
				fmt.Fprintf(&b, "# meshcd migrate: plain YAML: %s\n", d.Why)
			}
			out, err := yaml.Marshal(d.Object.Object)
			if err != nil {
				return fmt.Errorf("%s cannot be written: %w", refOf(d.Object), err)
			}
			b.Write(out)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// docKey orders documents: spec kinds by kind, then the rest by group and
// kind, then namespace and name.
func docKey(d *Document) meshspec.Ref { return meshspec.RefOf(d.Object) }

// plainCopy is a rendered object written back as plain YAML: without the
// labels meshcd puts on what it renders.
func plainCopy(o *unstructured.Unstructured) *unstructured.Unstructured {
	c := o.DeepCopy()
	labels := c.GetLabels()
	for _, l := range []string{ambient.LabelManagedBy, ambient.LabelSpecKind, ambient.LabelSpecName, ambient.LabelInstance} {
		delete(labels, l)
	}
	if len(labels) == 0 {
		labels = nil
	}
	c.SetLabels(labels)
	return c
}
