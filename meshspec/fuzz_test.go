package meshspec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad checks that Load never panics, that every object it accepts
// encodes to JSON, and that every error it returns starts with the file name.
func FuzzLoad(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	invalid, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range append(seeds, invalid...) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := Load("fuzz.yaml", data)
		if err != nil {
			if set != nil {
				t.Errorf("want a nil Set with the error %v", err)
			}
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
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
		if err := set.Complete(DefaultRootNamespace); err != nil && !strings.HasPrefix(err.Error(), "fuzz.yaml") {
			t.Errorf("Complete error does not start with the file name: %v", err)
		}
	})
}
