package source

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkFetch compares a poll of an unchanged head, which lists the
// remote refs and clones nothing, with a clone of the same repository of
// 1,000 spec files.
func BenchmarkFetch(b *testing.B) {
	requireGit(b)
	r := newRepo(b)
	files := map[string]string{}
	for i := range 1000 {
		files[fmt.Sprintf("mesh/ns-%04d.yaml", i)] = fmt.Sprintf("apiVersion: meshcd.dev/v1alpha1\nkind: MeshNamespace\nmetadata: {name: ns-%04d}\nspec: {waypoint: {}}\n", i)
	}
	r.commit(files, nil)
	ctx := context.Background()

	b.Run("unchanged-head", func(b *testing.B) {
		s := New(Options{URL: r.url(), Path: "mesh", WorkDir: b.TempDir()})
		if _, _, err := s.Fetch(ctx); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, changed, err := s.Fetch(ctx); err != nil || changed {
				b.Fatalf("poll: changed=%v err=%v", changed, err)
			}
		}
		b.ReportMetric(float64(s.Clones()-1)/float64(b.N), "clones/op")
	})
	b.Run("clone", func(b *testing.B) {
		var clones int64
		for b.Loop() {
			s := New(Options{URL: r.url(), Path: "mesh", WorkDir: b.TempDir()})
			if _, _, err := s.Fetch(ctx); err != nil {
				b.Fatal(err)
			}
			clones += s.Clones()
		}
		b.ReportMetric(float64(clones)/float64(b.N), "clones/op")
	})
}
