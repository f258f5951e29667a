package meshspec_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/meshcd/meshcd/meshspec/schema"
)

func TestSchema_CommittedFilesAreUpToDate(t *testing.T) {
	files, err := schema.Generate(".")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join("schema", name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("schema/%s is stale or missing; run go generate ./meshspec", name)
		}
	}
	committed, err := filepath.Glob("schema/*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range committed {
		if _, ok := files[filepath.Base(path)]; !ok {
			t.Errorf("%s is no longer generated; remove it", path)
		}
	}
}

// documents decodes every YAML document of a file for a schema validator.
func documents(t *testing.T, path string) []any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs []any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

func compileSchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	s, err := jsonschema.NewCompiler().Compile(filepath.Join("schema", name))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSchema_AcceptsEveryValidExample(t *testing.T) {
	combined := compileSchema(t, schema.CombinedFile)
	perKind := map[string]*jsonschema.Schema{}
	for _, k := range []string{"MeshNamespace", "MeshService", "DataplaneRollout"} {
		perKind[k] = compileSchema(t, strings.ToLower(k)+".json")
	}
	paths, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, path := range paths {
		for i, doc := range documents(t, path) {
			if err := combined.Validate(doc); err != nil {
				t.Errorf("%s document %d: %v", path, i, err)
			}
			kind, _ := doc.(map[string]any)["kind"].(string)
			if s, ok := perKind[kind]; ok {
				if err := s.Validate(doc); err != nil {
					t.Errorf("%s document %d against %s schema: %v", path, i, kind, err)
				}
			}
		}
	}
}

func TestSchema_RefusesUnknownAndMistypedFields(t *testing.T) {
	combined := compileSchema(t, schema.CombinedFile)
	for _, name := range []string{"unknown-field.yaml", "wrong-types.yaml"} {
		for i, doc := range documents(t, filepath.Join("testdata/invalid", name)) {
			if err := combined.Validate(doc); err == nil {
				t.Errorf("%s document %d: want a schema error", name, i)
			}
		}
	}
}
