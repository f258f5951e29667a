package meshspec

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestLoad_UnpacksListItemsEachWithItsOwnOrigin(t *testing.T) {
	set := loadFile(t, "testdata/list.yaml")
	if len(set.Namespaces) != 1 || len(set.Manifests) != 2 {
		t.Fatalf("want 1 MeshNamespace and 2 manifests, got %d and %d", len(set.Namespaces), len(set.Manifests))
	}
	if w := set.Namespaces[0].Spec.Waypoint; w == nil || w.Name != "waypoint" {
		t.Errorf("the MeshNamespace item was not decoded as a spec: %+v", set.Namespaces[0].Spec)
	}
	for ref, want := range map[Ref]string{
		{Kind: "ConfigMap", Namespace: "shop", Name: "settings"}: "list.yaml:5:5",
		{Group: Group, Kind: KindMeshNamespace, Name: "shop"}:    "list.yaml:9:5",
		{Kind: "ConfigMap", Namespace: "shop", Name: "nested"}:   "list.yaml:17:9",
	} {
		if pos, ok := set.Origin(ref); !ok || pos.String() != want {
			t.Errorf("origin of %s: got %v %v, want %s", ref, pos, ok, want)
		}
	}
	if got := set.FieldOrigin(Ref{Group: Group, Kind: KindMeshNamespace, Name: "shop"}, "spec.waypoint.for").String(); got != "list.yaml:13:34" {
		t.Errorf("field positions inside an item: got %s, want list.yaml:13:34", got)
	}
}

func TestLoad_ListKinds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		data  []byte
		names []string
	}{{
		name:  "KindListWithoutItemsIsEmpty",
		data:  lines("apiVersion: v1", "kind: List"),
		names: nil,
	}, {
		name:  "KindListWithNullItemsIsEmpty",
		data:  lines("apiVersion: v1", "kind: List", "items: null"),
		names: nil,
	}, {
		name:  "TypedListIsUnpacked",
		data:  lines("apiVersion: v1", "kind: ConfigMapList", "items:", "  - {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}", "  - {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}"),
		names: []string{"a", "b"},
	}, {
		name:  "KindEndingInListWithoutItemsStaysOneObject",
		data:  lines("apiVersion: example.com/v1", "kind: IPAllowList", "metadata: {name: office}", "spec: {cidrs: [10.0.0.0/8]}"),
		names: []string{"office"},
	}, {
		name:  "ObjectWithItemsButNoListKindStaysOneObject",
		data:  lines("apiVersion: example.com/v1", "kind: Menu", "metadata: {name: lunch}", "items: [{name: soup}]"),
		names: []string{"lunch"},
	}, {
		name:  "AliasedItemsAreEachRead",
		data:  lines("apiVersion: v1", "kind: List", "items:", "  - &cm {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}", "  - {apiVersion: v1, kind: Secret, metadata: {name: a}}"),
		names: []string{"a", "a"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			set := mustLoad(t, "t.yaml", tc.data)
			var names []string
			for _, m := range set.Manifests {
				names = append(names, m.GetName())
			}
			if !reflect.DeepEqual(names, tc.names) {
				t.Errorf("got objects %v, want %v", names, tc.names)
			}
		})
	}
}

func TestLoad_ListItemErrorsNameFileLineAndItemIndex(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want [][2]string
	}{{
		name: "ItemWithoutKind",
		data: lines("apiVersion: v1", "kind: List", "items:", "  - {apiVersion: v1, kind: ConfigMap, metadata: {name: ok}}", "  - {apiVersion: v1, metadata: {name: no-kind}}"),
		want: [][2]string{{"t.yaml:5:5: items[1]: ", "document has no apiVersion or kind"}},
	}, {
		name: "ItemNotAnObject",
		data: lines("apiVersion: v1", "kind: List", "items:", "  - just text"),
		want: [][2]string{{"t.yaml:4:5: items[0]: ", "a List item must be an object with apiVersion and kind"}},
	}, {
		name: "ItemsNotAList",
		data: lines("apiVersion: v1", "kind: List", "items: {a: b}"),
		want: [][2]string{{"t.yaml:3:8: items: ", "want a list of objects, not a mapping"}},
	}, {
		name: "SpecItemFieldIsCheckedAsAnyDocument",
		data: lines("apiVersion: v1", "kind: List", "items:", "  - apiVersion: meshcd.dev/v1alpha1", "    kind: MeshNamespace", "    metadata: {name: shop}", "    spec: {mtls: NONE}"),
		want: [][2]string{{"t.yaml:7:12: MeshNamespace shop: items[0].spec.mtls: ", `"NONE" is not one of STRICT, PERMISSIVE`}},
	}, {
		name: "NestedListItemNamesBothIndexes",
		data: lines("apiVersion: v1", "kind: List", "items:", "  - apiVersion: v1", "    kind: List", "    items:", "      - {apiVersion: v1, kind: ConfigMap, metadata: {name: ok}}", "      - {apiVersion: v1, kind: ConfigMap, metadata: {name: [x]}}"),
		want: [][2]string{{"t.yaml:8:60: items[0].items[1].metadata.name: ", "want a string, not a list"}},
	}, {
		name: "ItemDeclaredTwice",
		data: lines("apiVersion: v1", "kind: List", "items:", "  - {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}", "  - {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}"),
		want: [][2]string{{"t.yaml:5:5: ConfigMap a: items[1]: ", "declared twice, first at t.yaml:4:5"}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := Load("t.yaml", tc.data)
			if set != nil {
				t.Errorf("want a nil Set on error")
			}
			wantErrors(t, err, tc.want...)
		})
	}
}

func TestLoadJSON_ReadsObjectsListsAndStreamsLikeYAML(t *testing.T) {
	data := mustRead(t, "testdata/list.json")
	set, err := LoadJSON("list.json", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Manifests) != 1 || len(set.Services) != 1 {
		t.Fatalf("want 1 manifest and 1 MeshService, got %d and %d", len(set.Manifests), len(set.Services))
	}
	svc := set.Manifests[0]
	if got := svc.GetAnnotations(); got["path"] != "a/b" || got["smile"] != "\U0001F600" {
		t.Errorf("JSON escapes: got %q", got)
	}
	port := svc.Object["spec"].(map[string]any)["ports"].([]any)[0].(map[string]any)
	if port["port"] != int64(8080) || port["weight"] != 0.5 {
		t.Errorf("JSON numbers: got %#v, want int64 8080 and float64 0.5", port)
	}
	if pos, _ := set.Origin(RefOf(svc)); pos.String() != "list.json:5:3" {
		t.Errorf("item origin: got %s, want list.json:5:3", pos)
	}
	if got := set.FieldOrigin(Ref{Group: Group, Kind: KindMeshService, Namespace: "shop", Name: "orders"}, "spec.selector").String(); got != "list.json:15:27" {
		t.Errorf("field position: got %s, want list.json:15:27", got)
	}
	stream := []byte(`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}` + "\n" + `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}`)
	if set, err := LoadJSON("s.json", stream); err != nil || len(set.Manifests) != 2 {
		t.Errorf("a stream of two objects: %v", err)
	}
	bom := append([]byte("\xef\xbb\xbf"), `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}`...)
	if set, err := LoadJSON("bom.json", bom); err != nil || len(set.Manifests) != 1 {
		t.Errorf("a file with a byte order mark: %v", err)
	} else if pos, _ := set.Origin(RefOf(set.Manifests[0])); pos.String() != "bom.json:1:1" {
		t.Errorf("a byte order mark takes no column: got %s", pos)
	}
}

func TestLoadJSON_RefusesWithFileLineAndColumn(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
		want [2]string
	}{
		{"Malformed", "{\n  \"apiVersion\": \"v1\",\n  \"kind\" \"ConfigMap\"\n}", [2]string{"t.json:3:10: ", "malformed JSON: invalid character '\"' after object key"}},
		{"Truncated", "{\"apiVersion\": \"v1\",\n \"kind\": [", [2]string{"t.json:2:11: ", "malformed JSON: unexpected EOF"}},
		{"NotAnObject", "\n  [1, 2]", [2]string{"t.json:2:3: ", "a document must be a mapping with apiVersion and kind"}},
		{"DuplicateKey", `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "name": "b"}}`, [2]string{"t.json:1:69: ConfigMap a: metadata.name: ", "key is set twice"}},
		{"UnknownSpecField", "{\"apiVersion\": \"meshcd.dev/v1alpha1\", \"kind\": \"MeshNamespace\",\n \"metadata\": {\"name\": \"shop\"}, \"spec\": {\"mtlz\": \"STRICT\"}}", [2]string{"t.json:2:41: MeshNamespace shop: spec.mtlz: ", "unknown field; did you mean mtls? `meshcd explain MeshNamespace.spec` lists the fields"}},
		{"ListItem", `{"apiVersion": "v1", "kind": "List", "items": [{"kind": "ConfigMap"}]}`, [2]string{"t.json:1:48: items[0]: ", "document has no apiVersion or kind"}},
		{"TooDeep", strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1), [2]string{"t.json:1:", "JSON nests deeper than 10000 levels"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := LoadJSON("t.json", []byte(tc.data))
			if set != nil {
				t.Errorf("want a nil Set on error")
			}
			wantErrors(t, err, tc.want)
		})
	}
}

func TestHoldsObjects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		data   string
		isJSON bool
		want   bool
	}{
		{"Manifest", "apiVersion: v1\nkind: ConfigMap\n", false, true},
		{"ManifestMissingKind", "apiVersion: v1\nmetadata: {name: a}\n", false, true},
		{"ManifestMissingAPIVersion", "kind: ConfigMap\n", false, true},
		{"OneManifestAmongOthers", "on: push\n---\nkind: ConfigMap\n", false, true},
		{"MalformedYAML", "a: [\n", false, true},
		{"GitHubWorkflow", "on: push\njobs: {build: {runs-on: ubuntu-latest}}\n", false, false},
		{"PlainText", "just text\n", false, false},
		{"PackageJSON", `{"name": "x", "version": "1.0.0"}`, true, false},
		{"JSONManifest", `{"apiVersion": "v1", "kind": "ConfigMap"}`, true, true},
		{"MalformedJSON", `{"name": `, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := HoldsObjects([]byte(tc.data), tc.isJSON); got != tc.want {
				t.Errorf("HoldsObjects(%q) = %v, want %v", tc.data, got, tc.want)
			}
		})
	}
}

// namespacedKinds stands in for a scope table: ConfigMap and Service are
// namespaced, every other kind is not.
func namespacedKinds(gk schema.GroupKind) bool {
	return gk.Group == "" && (gk.Kind == "ConfigMap" || gk.Kind == "Service")
}

func TestDefaultNamespace_PlacesOnlyNamespacedManifestsThatNameNone(t *testing.T) {
	set := mustLoad(t, "t.yaml", lines(
		"apiVersion: v1", "kind: ConfigMap", "metadata: {name: bare}",
		"---", "apiVersion: v1", "kind: ConfigMap", "metadata: {name: placed, namespace: shop}",
		"---", "apiVersion: v1", "kind: Namespace", "metadata: {name: shop}",
		"---", nsHead, "  mtls: STRICT"))
	if err := set.DefaultNamespace("team", namespacedKinds); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range set.Manifests {
		got[m.GetKind()+" "+m.GetName()] = m.GetNamespace()
	}
	want := map[string]string{"ConfigMap bare": "team", "ConfigMap placed": "shop", "Namespace shop": ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("namespaces: got %v, want %v", got, want)
	}
	if pos, ok := set.Origin(Ref{Kind: "ConfigMap", Namespace: "team", Name: "bare"}); !ok || pos.String() != "t.yaml:1:1" {
		t.Errorf("a placed manifest keeps its origin: got %v %v", pos, ok)
	}
	if _, ok := set.Origin(Ref{Kind: "ConfigMap", Name: "bare"}); ok {
		t.Error("the manifest is still known without its namespace")
	}
}

func TestDefaultNamespace_CollisionNamesBothPlaces(t *testing.T) {
	set := mustLoad(t, "t.yaml", lines(
		"apiVersion: v1", "kind: ConfigMap", "metadata: {name: a, namespace: default}",
		"---", "apiVersion: v1", "kind: ConfigMap", "metadata: {name: a}"))
	err := set.DefaultNamespace("default", namespacedKinds)
	wantErrors(t, err, [2]string{"t.yaml:5:1: ConfigMap default/a: ", "declared twice, first at t.yaml:1:1"})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
