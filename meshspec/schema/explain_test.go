package schema

import (
	"regexp"
	"strings"
	"testing"

	"github.com/meshcd/meshcd/meshspec"
)

func TestExplain_ShowsAKindOrFieldWithTypeDescriptionAndFields(t *testing.T) {
	for _, tc := range []struct {
		path string
		want []string
	}{{
		path: "",
		want: []string{"KINDS of meshcd.dev/v1alpha1:\n", "  MeshNamespace      MeshNamespace enrolls one namespace", "  MeshService ", "  DataplaneRollout ", "`meshcd explain KIND`"},
	}, {
		path: "meshservice",
		want: []string{"KIND:     MeshService\nVERSION:  meshcd.dev/v1alpha1\n\nDESCRIPTION:\n    MeshService states", "\nFIELDS:\n  apiVersion\t<string> -required-\n", "    Value: meshcd.dev/v1alpha1.\n", "  spec\t<MeshServiceSpec> -required-\n    Spec is the service's intent.\n"},
	}, {
		path: "MeshService.spec.routes",
		want: []string{"FIELD:    spec.routes <[]Route>\n", "  backends\t<map[string]integer> -required-\n", "  match\t<Match>\n"},
	}, {
		path: "MeshService.spec.routes.match",
		want: []string{"FIELD:    spec.routes.match <Match>\n", "  headers\t<map[string]string>\n"},
	}, {
		path: "MeshNamespace.spec.waypoint.for",
		want: []string{"FIELD:    spec.waypoint.for <string>\n", "    One of: service, workload, all. Default: service.\n"},
	}, {
		path: "MeshService.spec.versions",
		want: []string{"FIELD:    spec.versions <map[string]map[string]string>\n", "Versions maps a version name"},
	}} {
		t.Run(tc.path, func(t *testing.T) {
			got, err := Explain(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("lacks %q:\n%s", w, got)
				}
			}
			if tc.path != "" && strings.Contains(got, "FIELD:") == !strings.Contains(tc.path, ".") {
				t.Errorf("FIELD line shown for %q: %v", tc.path, strings.Contains(got, "FIELD:"))
			}
		})
	}
}

func TestExplain_RefusesUnknownNamesWithADidYouMean(t *testing.T) {
	for path, want := range map[string]string{
		"MeshServce":                   `unknown kind "MeshServce"; did you mean MeshService? the kinds of meshcd.dev/v1alpha1 are MeshNamespace, MeshService, DataplaneRollout`,
		"Deployment":                   `unknown kind "Deployment"; the kinds of meshcd.dev/v1alpha1 are MeshNamespace, MeshService, DataplaneRollout`,
		"MeshNamespace.spec.wayponit":  "MeshNamespace.spec has no field \"wayponit\"; did you mean waypoint? `meshcd explain MeshNamespace.spec` lists its fields",
		"MeshService.spec.routes.mach": "MeshService.spec.routes has no field \"mach\"; did you mean match? `meshcd explain MeshService.spec.routes` lists its fields",
		"MeshService.spec.port.value":  `MeshService.spec.port has no field "value"; it is of type integer, which has no fields`,
	} {
		if _, err := Explain(path); err == nil || err.Error() != want {
			t.Errorf("Explain(%q):\n got %v\nwant %s", path, err, want)
		}
	}
}

// TestExplain_EveryFieldOfEveryKindIsExplained walks the schema through
// Explain itself: each field listed must explain in turn.
func TestExplain_EveryFieldOfEveryKindIsExplained(t *testing.T) {
	field := regexp.MustCompile(`(?m)^  (\w+)\t<`)
	seen := 0
	var walk func(path string, depth int)
	walk = func(path string, depth int) {
		out, err := Explain(path)
		if err != nil {
			t.Fatalf("Explain(%q): %v", path, err)
		}
		seen++
		if depth > 8 {
			t.Fatalf("%s: the schema nests deeper than any kind does", path)
		}
		for _, m := range field.FindAllStringSubmatch(out, -1) {
			walk(path+"."+m[1], depth+1)
		}
	}
	for _, k := range kinds {
		walk(k.name, 0)
	}
	if seen < 60 {
		t.Errorf("explained %d kinds and fields, want the whole API (more than 60)", seen)
	}
}

// TestExplain_AnswersTheCommandALoadErrorNames checks that the command an
// unknown-field error points to works and lists the field it suggests.
func TestExplain_AnswersTheCommandALoadErrorNames(t *testing.T) {
	_, err := meshspec.Load("t.yaml", []byte("apiVersion: meshcd.dev/v1alpha1\nkind: MeshService\nmetadata: {name: orders, namespace: shop}\n"+
		"spec:\n  port: 8080\n  selector: {app: orders}\n  versions: {v1: {version: v1}}\n  routes:\n    - backends: {v1: 100}\n      match: {methd: GET}\n"))
	if err == nil {
		t.Fatal("want an unknown-field error")
	}
	m := regexp.MustCompile("did you mean (\\w+)\\? `meshcd explain ([\\w.]+)`").FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("no did-you-mean and explain command in: %v", err)
	}
	out, err := Explain(m[2])
	if err != nil {
		t.Fatalf("meshcd explain %s: %v", m[2], err)
	}
	if !strings.Contains(out, "\n  "+m[1]+"\t<") {
		t.Errorf("meshcd explain %s does not list %s:\n%s", m[2], m[1], out)
	}
}
