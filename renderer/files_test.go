package renderer

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// cm is a ConfigMap manifest named name, with no namespace.
func cm(name string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + "}\n"
}

// names returns "Kind namespace/name" of each object.
func names(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName())
	}
	return out
}

func mustRender(t *testing.T, dir string, opts Options) *Bundle {
	t.Helper()
	b, err := Render(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRender_FileNames(t *testing.T) {
	for _, tc := range []struct {
		file    string
		content string
		read    bool
	}{
		{"a.yaml", cm("a"), true},
		{"a.yml", cm("a"), true},
		{"a.YAML", cm("a"), true},
		{"a.Yml", cm("a"), true},
		{"a.yAmL", cm("a"), true},
		{"a.json", `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}`, true},
		{"a.JSON", `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}`, true},
		{".hidden.yaml", cm("a"), true},
		{".config/a.yaml", cm("a"), true},
		{"a.yaml.orig", cm("a"), false},
		{"a.txt", cm("a"), false},
		{"yaml", cm("a"), false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b := mustRender(t, tree(t, map[string]string{tc.file: tc.content}), DefaultOptions())
			wantObjects, wantSkipped := []string{"ConfigMap default/a"}, []Skip{{".git/", skipGit}}
			if !tc.read {
				wantObjects, wantSkipped = nil, append(wantSkipped, Skip{tc.file, skipName})
			}
			if got := names(b.Objects); !reflect.DeepEqual(got, wantObjects) {
				t.Errorf("objects: got %v, want %v", got, wantObjects)
			}
			if !reflect.DeepEqual(b.Notes.Skipped, wantSkipped) {
				t.Errorf("skipped: got %v, want %v", b.Notes.Skipped, wantSkipped)
			}
		})
	}
}

func TestRender_ListsEveryFileItDoesNotRead(t *testing.T) {
	root := tree(t, map[string]string{
		".git/config":              "[core]\n",
		".git/refs/x.yaml":         cm("from-git"),
		".github/workflows/ci.yml": "on: push\njobs: {test: {runs-on: ubuntu-latest}}\n",
		".yamllint.yml":            "extends: default\n",
		"package.json":             `{"name": "site", "version": "1.0.0"}`,
		"README.md":                "# mesh\n",
		"apps/list.json":           `{"apiVersion": "v1", "kind": "List", "items": [` + `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}]}`,
		"apps/b.yaml":              cm("b"),
		"empty.yaml":               "# nothing yet\n",
	})
	b := mustRender(t, root, DefaultOptions())
	if got, want := names(b.Objects), []string{"ConfigMap default/a", "ConfigMap default/b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("objects: got %v, want %v", got, want)
	}
	want := []Skip{
		{".git/", skipGit},
		{".github/workflows/ci.yml", skipNoObject},
		{".yamllint.yml", skipNoObject},
		{"README.md", skipName},
		{"package.json", skipNoObject},
	}
	if !reflect.DeepEqual(b.Notes.Skipped, want) {
		t.Errorf("skipped:\n got %v\nwant %v", b.Notes.Skipped, want)
	}
	if len(b.Notes.Warnings) != 0 {
		t.Errorf("want no warning, got %v", b.Notes.Warnings)
	}
}

func TestRender_FileThatCannotBeParsedIsAnErrorEvenWhenHidden(t *testing.T) {
	for _, tc := range []struct {
		file, content string
		want          []string
	}{
		{".ci/broken.yaml", "on: [push\n", []string{".ci/broken.yaml:1:5: ", "malformed YAML", "this [ is not closed"}},
		{"site/package.json", "{\"name\": \"site\",\n  \"version\" 1}", []string{"site/package.json:2:13: ", "malformed JSON"}},
		{"half.yaml", "apiVersion: v1\nmetadata: {name: a}\n", []string{"half.yaml:1:1: ", "document has no apiVersion or kind"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			renderErr(t, tree(t, map[string]string{tc.file: tc.content}), tc.want...)
		})
	}
}

func TestRender_WarnsOnASpecDirectoryWithoutManifests(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"Empty":          {},
		"OnlyOtherFiles": {"README.md": "# mesh\n", "package.json": `{"name": "site"}`},
		"OnlyComments":   {"a.yaml": "# later\n"},
	} {
		t.Run(name, func(t *testing.T) {
			root := tree(t, files)
			b := mustRender(t, root, DefaultOptions())
			if len(b.Notes.Warnings) != 1 || !strings.Contains(b.Notes.Warnings[0], "spec directory "+root+" holds no manifests") {
				t.Errorf("want the empty-directory warning, got %v", b.Notes.Warnings)
			}
		})
	}
	b := mustRender(t, tree(t, map[string]string{"a.yaml": cm("a")}), DefaultOptions())
	if len(b.Notes.Warnings) != 0 {
		t.Errorf("a directory with a manifest: want no warning, got %v", b.Notes.Warnings)
	}
}

func TestRender_KustomizeListsTheFilesItsBuildDidNotRead(t *testing.T) {
	root := tree(t, map[string]string{
		"kustomization.yaml": "resources: [used.yaml]\n",
		"used.yaml":          cm("used"),
		"forgotten.yaml":     cm("forgotten"),
		"notes.txt":          "todo\n",
	})
	b := mustRender(t, root, DefaultOptions())
	if got, want := names(b.Objects), []string{"ConfigMap default/used"}; !reflect.DeepEqual(got, want) {
		t.Errorf("objects: got %v, want %v", got, want)
	}
	want := []Skip{{".git/", skipGit}, {"forgotten.yaml", skipUnlisted}, {"notes.txt", skipName}}
	if !reflect.DeepEqual(b.Notes.Skipped, want) {
		t.Errorf("skipped:\n got %v\nwant %v", b.Notes.Skipped, want)
	}
}

const crds = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: racks.example.com}
spec:
  group: example.com
  scope: Cluster
  names: {kind: Rack, plural: racks}
`

func TestRender_PlacesManifestsWithoutANamespace(t *testing.T) {
	root := tree(t, map[string]string{
		"crds.yaml": crds,
		"objects.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: plain}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: placed, namespace: shop}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: istio-waypoint}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
---
apiVersion: example.com/v1
kind: Rack
metadata: {name: r}
---
apiVersion: unknown.example.org/v1
kind: Gizmo
metadata: {name: g}
`,
	})
	for _, tc := range []struct {
		name      string
		namespace string
		want      string
	}{{"Default", "", "default"}, {"Flag", "team", "team"}} {
		t.Run(tc.name, func(t *testing.T) {
			opts := DefaultOptions()
			opts.Namespace = tc.namespace
			b := mustRender(t, root, opts)
			ns := tc.want
			want := []string{
				"ConfigMap " + ns + "/plain", "ConfigMap shop/placed", "Namespace /shop",
				"CustomResourceDefinition /racks.example.com", "CustomResourceDefinition /widgets.example.com",
				"Rack /r", "Widget " + ns + "/w", "GatewayClass /istio-waypoint", "VirtualService " + ns + "/vs",
				"ClusterRole /reader", "Gizmo /g",
			}
			got := names(b.Objects)
			sort.Strings(got)
			sort.Strings(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("objects:\n got %v\nwant %v", got, want)
			}
			for _, o := range b.Objects {
				if o.GetName() == "plain" {
					if pos := b.Origin(o); pos.String() != "objects.yaml:1:1" {
						t.Errorf("a placed manifest keeps its origin: got %s", pos)
					}
				}
			}
		})
	}
}

func TestRender_InvalidNamespaceOptionIsRefused(t *testing.T) {
	opts := DefaultOptions()
	opts.Namespace = "Not_A_Namespace"
	if _, err := Render(tree(t, map[string]string{"a.yaml": cm("a")}), opts); err == nil || !strings.Contains(err.Error(), `namespace "Not_A_Namespace" for manifests that name none is not a valid namespace`) {
		t.Fatalf("want the namespace refused, got %v", err)
	}
}

func TestRender_PlacedManifestThatCollidesNamesBothPlaces(t *testing.T) {
	root := tree(t, map[string]string{
		"a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: default}\n",
		"b.yaml": cm("x"),
	})
	renderErr(t, root, "ConfigMap default/x", "declared twice", "a.yaml:1:1", "b.yaml:1:1")
}
