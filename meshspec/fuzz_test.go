package meshspec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad checks that Load and LoadJSON never panic, that every object
// they accept encodes to JSON, and that every error they return starts
// with the file name; HoldsObjects must not panic either.
func FuzzLoad(f *testing.F) {
	var seeds []string
	for _, glob := range []string{"testdata/*.yaml", "testdata/*.json", "testdata/invalid/*.yaml"} {
		paths, err := filepath.Glob(glob)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, paths...)
	}
	for _, path := range seeds {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzLoad(t, "fuzz.yaml", data, Load)
		fuzzLoad(t, "fuzz.json", data, LoadJSON)
		HoldsObjects(data, false)
		HoldsObjects(data, true)
	})
}

func fuzzLoad(t *testing.T, file string, data []byte, load func(string, []byte) (*Set, error)) {
	t.Helper()
	set, err := load(file, data)
	if err != nil {
		if set != nil {
			t.Errorf("want a nil Set with the error %v", err)
		}
		if !strings.HasPrefix(err.Error(), file) {
			t.Errorf("error does not start with the file name: %v", err)
		}
		return
	}
	var objects []any
	for _, o := range set.Namespaces {
		objects = append(objects, o)
	}
	for _, o := range set.Services {
		objects = append(objects, o)
	}
	for _, o := range set.Rollouts {
		objects = append(objects, o)
	}
	for _, o := range set.Manifests {
		objects = append(objects, o)
	}
	for _, o := range objects {
		if _, err := json.Marshal(o); err != nil {
			t.Errorf("%T does not encode to JSON: %v", o, err)
		}
	}
	if err := set.Complete(DefaultRootNamespace); err != nil && !strings.HasPrefix(err.Error(), file) {
		t.Errorf("Complete error does not start with the file name: %v", err)
	}
}
