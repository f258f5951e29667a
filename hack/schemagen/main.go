// Command schemagen writes the JSON Schema of meshcd's spec API, generated
// from the Go types of meshspec, one file per kind and one for all kinds.
// It runs from meshspec's go:generate line: go generate ./meshspec.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/meshcd/meshcd/meshspec/schema"
)

func main() {
	src := flag.String("src", "meshspec", "directory of the meshspec sources")
	out := flag.String("out", "meshspec/schema", "directory the schema files are written to")
	flag.Parse()
	if err := run(*src, *out); err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
}

func run(src, out string) error {
	files, err := schema.Generate(src)
	if err != nil {
		return err
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(out, name), data, 0o644); err != nil {
			return fmt.Errorf("writing the schema: %w", err)
		}
	}
	return nil
}
