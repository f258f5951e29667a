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
