package renderer

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// Stream renders a bundle as a YAML stream, each object preceded by the
// place it came from, and then the files it skipped and its warnings.
func stream(t *testing.T, b *Bundle) []byte {
	t.Helper()
	var out bytes.Buffer
	for _, o := range b.Objects {
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "---\n# from %s\n%s", b.Origin(o), y)
	}
	for _, s := range b.Notes.Skipped {
		fmt.Fprintf(&out, "# skipped %s: %s\n", s.Path, s.Reason)
	}
	for _, w := range b.Notes.Warnings {
		fmt.Fprintf(&out, "# warning: %s\n", w)
	}
	return out.Bytes()
}

// golden compares got with the file, or rewrites it under -update.
func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./renderer -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("render differs from %s (run with -update if the change is intended):\n%s", file, firstDiff(want, got))
	}
}

// firstDiff shows the first differing line.
func firstDiff(want, got []byte) string {
	w, g := bytes.Split(want, []byte("\n")), bytes.Split(got, []byte("\n"))
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl []byte
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if !bytes.Equal(wl, gl) {
			return fmt.Sprintf("line %d:\n want: %s\n  got: %s", i+1, wl, gl)
		}
	}
	return "(equal)"
}

// TestRender_Golden renders every testdata/<case>/in and compares it with
// testdata/<case>/want.yaml.
func TestRender_Golden(t *testing.T) {
	cases, err := filepath.Glob("testdata/*/in")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, in := range cases {
		dir := filepath.Dir(in)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			b, err := Render(in, DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join(dir, "want.yaml"), stream(t, b))
		})
	}
}
