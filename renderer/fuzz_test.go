package renderer

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/meshspec"
)

// fuzzSeeds returns the spec files of the examples and of the renderer's
// test cases, each file alone and each directory's files as one stream.
func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, glob := range []string{"../examples/*", "../examples/kustomize-overlays/base", "testdata/*/in"} {
		dirs, err := filepath.Glob(glob)
		if err != nil {
			f.Fatal(err)
		}
		for _, dir := range dirs {
			files, err := filepath.Glob(filepath.Join(dir, "*"))
			if err != nil {
				f.Fatal(err)
			}
			var stream [][]byte
			for _, file := range files {
				if filepath.Base(file) == "kustomization.yaml" || formatOf(file) == notManifest {
					continue
				}
				data, err := os.ReadFile(file)
				if err != nil {
					f.Fatal(err)
				}
				seeds = append(seeds, data)
				if formatOf(file) == yamlFormat {
					stream = append(stream, data)
				}
			}
			if len(stream) > 1 {
				seeds = append(seeds, bytes.Join(stream, []byte("\n---\n")))
			}
		}
	}
	if len(seeds) == 0 {
		f.Fatal("no seed spec files found")
	}
	return seeds
}

// FuzzRender writes the input as the one file of a spec directory, named
// spec.json when it starts with "{" and spec.yaml otherwise, and renders
// it. A render never panics and fails with an error naming the file; a render that succeeds gives objects that each have an apiVersion,
// a kind, a name, meshcd's ownership label and an origin in the file,
// sorted by group, kind, namespace and name without a duplicate, and the
// same objects in the same order when the input is rendered again.
func FuzzRender(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		name, other := "spec.yaml", "spec.json"
		if bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
			name, other = other, name
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(dir, other)); err != nil {
			t.Fatal(err)
		}
		b, err := Render(dir, DefaultOptions())
		if err != nil {
			if b != nil {
				t.Errorf("want a nil Bundle with the error %v", err)
			}
			if msg := err.Error(); strings.TrimSpace(msg) == "" {
				t.Errorf("empty error message (%T)", err)
			} else if !strings.HasPrefix(msg, name) {
				t.Errorf("error does not start with the file name: %v", err)
			}
			return
		}
		if b.Spec == nil {
			t.Fatal("a Bundle without its Spec")
		}
		first := stream(t, b)
		var prev meshspec.Ref
		for i, o := range b.Objects {
			ref := meshspec.RefOf(o)
			if o.GetAPIVersion() == "" || o.GetKind() == "" || o.GetName() == "" {
				t.Errorf("object %d lacks an apiVersion, kind or name: %v", i, o.Object)
			}
			if o.GetLabels()[ambient.LabelManagedBy] != ambient.ManagedByValue {
				t.Errorf("%s lacks %s=%s", ref, ambient.LabelManagedBy, ambient.ManagedByValue)
			}
			if pos := b.Origin(o); pos.File != name || pos.Line <= 0 {
				t.Errorf("%s has origin %q, not a line of %s", ref, pos, name)
			}
			if i > 0 && !prev.Less(ref) {
				t.Errorf("objects out of order or twice: %s then %s", prev, ref)
			}
			prev = ref
		}
		again, err := Render(dir, DefaultOptions())
		if err != nil {
			t.Fatalf("rendered once, then failed: %v", err)
		}
		if second := stream(t, again); !bytes.Equal(first, second) {
			t.Fatalf("two renders of one input differ:\n%s", firstDiff(first, second))
		}
	})
}
