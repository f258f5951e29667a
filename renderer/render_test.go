package renderer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/ambient"
)

// tree writes files (path → content) under a new directory holding .git,
// so that it is a repository root.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func renderErr(t *testing.T, dir string, want ...string) {
	t.Helper()
	_, err := Render(dir, DefaultOptions())
	if err == nil {
		t.Fatalf("want an error containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not contain %q", err, w)
		}
	}
}

const configMap = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: x}\n"

func TestRender_KustomizeRemoteBaseIsRefused(t *testing.T) {
	root := tree(t, map[string]string{
		"mesh/kustomization.yaml": "resources:\n- https://github.com/example/mesh//base?ref=main\n",
	})
	renderErr(t, filepath.Join(root, "mesh"), "mesh/kustomization.yaml", "is remote", "vendor it in")
}

func TestRender_KustomizeCannotReadOutsideTheRepository(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "cm.yaml"), []byte(configMap), 0o644); err != nil {
		t.Fatal(err)
	}
	root := tree(t, map[string]string{"mesh/kustomization.yaml": "resources:\n- " + filepath.Join(outside, "cm.yaml") + "\n"})
	renderErr(t, filepath.Join(root, "mesh"), "outside the repository")

	// The same file by a relative path that climbs out of the repository.
	rel, err := filepath.Rel(filepath.Join(root, "mesh"), outside)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "mesh/kustomization.yaml"), []byte("resources:\n- "+rel+"/cm.yaml\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	renderErr(t, filepath.Join(root, "mesh"), "outside the repository")
}

func TestRender_SymlinkLeavingTheSpecDirectoryIsRefused(t *testing.T) {
	outside := t.TempDir()
	target := filepath.Join(outside, "secret.yaml")
	if err := os.WriteFile(target, []byte(configMap), 0o644); err != nil {
		t.Fatal(err)
	}
	root := tree(t, map[string]string{"ok.yaml": configMap})
	if err := os.Symlink(target, filepath.Join(root, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	renderErr(t, root, "link.yaml", "symlink leads out of the spec directory")
}

func TestRender_SpecErrorNamesFileLineAndField(t *testing.T) {
	root := tree(t, map[string]string{"team/orders.yaml": `apiVersion: meshcd.dev/v1alpha1
kind: MeshService
metadata: {name: orders, namespace: shop}
spec:
  port: 8080
  selector: {app: orders}
  versions: {v1: {version: v1}}
  routes:
    - backends: {v1: 90, v3: 10}
`})
	renderErr(t, root, "team/orders.yaml:9:", "spec.routes[0].backends.v3", `version "v3" is not declared`)
}

func TestRender_L7RuleWithoutWaypointIsAnError(t *testing.T) {
	root := tree(t, map[string]string{"s.yaml": `apiVersion: meshcd.dev/v1alpha1
kind: MeshNamespace
metadata: {name: shop}
spec: {}
---
apiVersion: meshcd.dev/v1alpha1
kind: MeshService
metadata: {name: orders, namespace: shop}
spec:
  port: 8080
  selector: {app: orders}
  access:
    - from: {serviceAccounts: [shop/web]}
      methods: [GET]
`})
	renderErr(t, root, "s.yaml:", "spec.access[0]", "needs a waypoint")
}

func TestRender_ObjectRenderedTwiceNamesBothPlaces(t *testing.T) {
	root := tree(t, map[string]string{
		"spec.yaml": "apiVersion: meshcd.dev/v1alpha1\nkind: MeshNamespace\nmetadata: {name: shop}\nspec:\n  waypoint: {}\n",
		"gw.yaml":   "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: waypoint, namespace: shop}\nspec: {gatewayClassName: istio-waypoint}\n",
	})
	renderErr(t, root, "Gateway shop/waypoint is rendered twice", "gw.yaml:1:1", "spec.yaml:1:1")
}

func TestRender_MalformedYAMLIsAnErrorWithFileAndLine(t *testing.T) {
	root := tree(t, map[string]string{"bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [unclosed\n"})
	renderErr(t, root, "bad.yaml:", "malformed YAML")
}

func TestRender_OutputIsSortedOwnedAndJSONTyped(t *testing.T) {
	b, err := Render("../examples/shop-zero-trust", DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Objects) == 0 {
		t.Fatal("no objects")
	}
	for i, o := range b.Objects {
		if o.GetLabels()[ambient.LabelManagedBy] != ambient.ManagedByValue {
			t.Fatalf("%s lacks the ownership label", o.GetName())
		}
		// DeepCopy panics on values that are not JSON types (int, int32, ...).
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("%s %s holds a non-JSON value: %v", o.GetKind(), o.GetName(), r)
				}
			}()
			_ = o.DeepCopy()
		}()
		if b.Origin(o).File == "" {
			t.Fatalf("%s %s has no origin", o.GetKind(), o.GetName())
		}
		if i > 0 && !less(b.Objects[i-1], o) {
			t.Fatalf("objects out of order at %d: %s/%s before %s/%s", i, b.Objects[i-1].GetKind(), b.Objects[i-1].GetName(), o.GetKind(), o.GetName())
		}
	}
	again, err := Render("../examples/shop-zero-trust", DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if string(stream(t, b)) != string(stream(t, again)) {
		t.Fatal("two renders of the same input differ")
	}
}

func less(a, b *unstructured.Unstructured) bool {
	ka := a.GroupVersionKind().Group + "/" + a.GetKind() + "/" + a.GetNamespace() + "/" + a.GetName()
	kb := b.GroupVersionKind().Group + "/" + b.GetKind() + "/" + b.GetNamespace() + "/" + b.GetName()
	return ka < kb
}

func TestRender_NamespacesAreNeverOwnedWhole(t *testing.T) {
	b, err := Render("testdata/plain-manifests-only/in", DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range b.Objects {
		if o.GetKind() != "Namespace" {
			continue
		}
		if o.GetAnnotations()[ambient.AnnotationOwnership] != ambient.OwnershipPartial || o.Object["spec"] != nil {
			t.Fatalf("a Namespace manifest must become label-only: %v", o.Object)
		}
		if o.GetLabels()["team"] != "core" {
			t.Fatal("its labels are kept")
		}
		return
	}
	t.Fatal("no Namespace rendered")
}
