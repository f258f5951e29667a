package main

import (
	"strings"
	"testing"
)

func TestExplain_ListsKindsAndShowsAField(t *testing.T) {
	code, out, errOut := meshcd("explain")
	if code != 0 || !strings.HasPrefix(out, "KINDS of meshcd.dev/v1alpha1:\n") || !strings.Contains(out, "  MeshService ") || errOut != "" {
		t.Fatalf("explain: exit %d, stdout:\n%s\nstderr: %s", code, out, errOut)
	}
	code, out, errOut = meshcd("explain", "MeshService.spec.routes.backends")
	if code != 0 || errOut != "" {
		t.Fatalf("explain a field: exit %d, %s", code, errOut)
	}
	for _, want := range []string{"KIND:     MeshService\n", "FIELD:    spec.routes.backends <map[string]integer>\n", "DESCRIPTION:\n    Backends maps a version name to its weight."} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
}

func TestExplain_UnknownFieldExitsTwoWithADidYouMean(t *testing.T) {
	code, out, errOut := meshcd("explain", "MeshNamespace.spec.wayponit")
	want := "meshcd: MeshNamespace.spec has no field \"wayponit\"; did you mean waypoint? `meshcd explain MeshNamespace.spec` lists its fields\n"
	if code != 2 || out != "" || errOut != want {
		t.Fatalf("exit %d, stdout %q, stderr:\n got %q\nwant %q", code, out, errOut, want)
	}
	if code, _, errOut := meshcd("explain", "MeshService", "MeshNamespace"); code != 2 || !strings.Contains(errOut, "accepts at most 1 arg") {
		t.Fatalf("two arguments: exit %d, %q", code, errOut)
	}
}

// TestValidate_UnknownFieldPointsToExplain checks the message a user with
// only the binary gets: the did-you-mean and a command that answers it.
func TestValidate_UnknownFieldPointsToExplain(t *testing.T) {
	d := dir(t, map[string]string{"ns.yaml": "apiVersion: meshcd.dev/v1alpha1\nkind: MeshNamespace\nmetadata: {name: shop}\nspec:\n  wayponit: {for: service}\n"})
	code, _, errOut := meshcd("validate", d)
	want := "ns.yaml:5:3: MeshNamespace shop: spec.wayponit: unknown field; did you mean waypoint? `meshcd explain MeshNamespace.spec` lists the fields"
	if code != 2 || !strings.Contains(errOut, want) || strings.Contains(errOut, "meshspec/schema") {
		t.Fatalf("exit %d, stderr:\n%s\nwant it to contain %s", code, errOut, want)
	}
	if code, out, _ := meshcd("explain", "MeshNamespace.spec"); code != 0 || !strings.Contains(out, "\n  waypoint\t<Waypoint>\n") {
		t.Fatalf("the command named: exit %d:\n%s", code, out)
	}
}
