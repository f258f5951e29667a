package repocheck

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// module writes a small module: package a (with a test) imports b, which
// embeds data.txt; c is imported by nothing.
func module(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range map[string]string{
		"go.mod":         "module example.com/m\n\ngo 1.26\n",
		"a/a.go":         "package a\n\nimport _ \"example.com/m/b\"\n",
		"a/a_test.go":    "package a\n\nimport (\n\t\"testing\"\n\n\t_ \"example.com/m/d\"\n)\n\nfunc TestA(t *testing.T) {}\n",
		"b/b.go":         "package b\n\nimport _ \"embed\"\n\n//go:embed data.txt\nvar data string\n",
		"b/b_windows.go": "package b\n",
		"b/b_test.go":    "package b\n",
		"b/data.txt":     "one\n",
		"c/c.go":         "package c\n",
		"d/d.go":         "package d\n",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func digest(t *testing.T, root string) string {
	t.Helper()
	files, err := Sources(root, "a")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Digest(root, files)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSources_ThePackageItsTestsAndWhatTheyImportFromTheModule(t *testing.T) {
	root := module(t)
	files, err := Sources(root, "a")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a/a.go", "a/a_test.go", "b/b.go", "b/b_windows.go", "b/data.txt", "d/d.go"}
	if !slices.Equal(files, want) {
		t.Fatalf("sources %v, want %v", files, want)
	}
}

func TestDigest_ChangesWithAnInputAndOnlyWithAnInput(t *testing.T) {
	root := module(t)
	before := digest(t, root)
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(name)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("c/c.go", "package c\n\n// not imported\n")
	write("b/b_test.go", "package b\n\n// a dependency's test\n")
	if got := digest(t, root); got != before {
		t.Fatalf("a package nothing imports and a dependency's test changed the digest: %s → %s", before, got)
	}
	for _, change := range []struct{ file, content string }{
		{"b/data.txt", "two\n"},
		{"b/b.go", "package b\n\nimport _ \"embed\"\n\n//go:embed data.txt\nvar data string // changed\n"},
		{"a/a_test.go", "package a\n\nimport (\n\t\"testing\"\n\n\t_ \"example.com/m/d\"\n)\n\nfunc TestA(t *testing.T) { t.Log() }\n"},
		{"d/d.go", "package d\n\nconst D = 1\n"},
	} {
		write(change.file, change.content)
		after := digest(t, root)
		if after == before {
			t.Fatalf("a change of %s left the digest as it was", change.file)
		}
		before = after
	}
}
