package renderer

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/meshspec"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func data(t *testing.T, b *Bundle) string {
	t.Helper()
	for _, o := range b.Objects {
		if o.GetKind() == "ConfigMap" {
			v, _, _ := unstructured.NestedString(o.Object, "data", "v")
			return v
		}
	}
	t.Fatal("no ConfigMap rendered")
	return ""
}

func TestCache_RendersAgainOnlyWhenARepositoryFileChanges(t *testing.T) {
	root := tree(t, map[string]string{
		"base/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: x}\ndata: {v: one}\n",
		"base/kustomization.yaml": "resources: [cm.yaml]\n",
		"mesh/kustomization.yaml": "resources: [../base]\n",
	})
	dir := filepath.Join(root, "mesh")
	var c Cache
	// A render done again has a Spec of its own.
	var last *meshspec.Set
	rendered := func(b *Bundle) bool {
		fresh := b.Spec != last
		last = b.Spec
		return fresh
	}
	render := func(wantFresh bool, wantValue string) *Bundle {
		t.Helper()
		b, err := c.Render(dir, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		if fresh := rendered(b); fresh != wantFresh || data(t, b) != wantValue {
			t.Fatalf("got fresh=%v value %q, want fresh=%v value %q", fresh, data(t, b), wantFresh, wantValue)
		}
		return b
	}
	first := render(true, "one")
	first.Objects = first.Objects[:0] // the caller's slice: the cache keeps its own
	render(false, "one")

	// A file outside the spec directory, which kustomize reads, changes.
	write(t, filepath.Join(root, "base/cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: x}\ndata: {v: two}\n")
	render(true, "two")
	render(false, "two")

	// Other options render again.
	opts := DefaultOptions()
	opts.TrustDomain = "example.org"
	b, err := c.Render(dir, opts)
	if err != nil || !rendered(b) {
		t.Fatalf("new options must render again: err=%v", err)
	}

	// A failed render is not kept: fixing the file renders again.
	write(t, filepath.Join(root, "base/cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: x\n")
	if _, err := c.Render(dir, DefaultOptions()); err == nil {
		t.Fatal("want the broken file refused")
	}
	write(t, filepath.Join(root, "base/cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: x}\ndata: {v: three}\n")
	render(true, "three")
}

func TestCache_ABundleChangedInPlaceIsRenderedAgainNotServed(t *testing.T) {
	root := tree(t, map[string]string{
		"cm.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: x}\ndata: {v: one}\n",
		"mesh.yaml": "apiVersion: meshcd.dev/v1alpha1\nkind: MeshNamespace\nmetadata: {name: shop}\nspec: {mtls: STRICT}\n",
	})
	var c Cache
	render := func() *Bundle {
		t.Helper()
		b, err := c.Render(root, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first := render()
	if again := render(); again.Spec != first.Spec {
		t.Fatal("an unchanged render was not served from the cache")
	}
	for name, change := range map[string]func(b *Bundle){
		"an object's field": func(b *Bundle) {
			for _, o := range b.Objects {
				if o.GetKind() == "ConfigMap" {
					_ = unstructured.SetNestedField(o.Object, "changed", "data", "v")
				}
			}
		},
		"an object's label": func(b *Bundle) { b.Objects[0].SetLabels(map[string]string{"x": "y"}) },
		"the spec":          func(b *Bundle) { b.Spec.Namespaces[0].Name = "other" },
	} {
		b := render()
		change(b)
		got := render()
		if got.Spec == b.Spec {
			t.Errorf("%s changed in place: the changed bundle was served again", name)
		}
		if data(t, got) != "one" || got.Spec.Namespaces[0].Name != "shop" {
			t.Errorf("%s changed in place: got value %q and namespace %q, want the render of the files", name, data(t, got), got.Spec.Namespaces[0].Name)
		}
		if got.Objects[0].GetLabels()["x"] != "" {
			t.Errorf("%s changed in place: the changed label was served", name)
		}
	}
}
