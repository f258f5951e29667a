package meshspec

import (
	"fmt"
	"strings"
	"testing"
)

// largeSpec is one file of namespaces MeshNamespaces and services
// MeshServices, five services to a namespace.
func largeSpec(namespaces, services int) []byte {
	var b strings.Builder
	for i := range namespaces {
		fmt.Fprintf(&b, "apiVersion: meshcd.dev/v1alpha1\nkind: MeshNamespace\nmetadata: {name: ns-%d}\nspec:\n  waypoint: {name: waypoint, for: service}\n  mtls: STRICT\n  defaultDeny: true\n---\n", i)
	}
	for i := range services {
		fmt.Fprintf(&b, `apiVersion: meshcd.dev/v1alpha1
kind: MeshService
metadata: {name: svc-%d, namespace: ns-%d}
spec:
  port: 8080
  selector: {app: svc-%d}
  versions: {v1: {version: v1}, v2: {version: v2}}
  routes:
    - match: {headers: {x-canary: always}}
      backends: {v2: 100}
    - backends: {v1: 90, v2: 10}
  resilience: {timeout: 2s, retries: {attempts: 3, perTryTimeout: 500ms}}
  access:
    - from: {serviceAccounts: [ns-%d/web]}
      methods: [GET, POST]
      paths: [/api/*]
---
`, i, i%namespaces, i, i%namespaces)
	}
	return []byte(b.String())
}

func BenchmarkLoad(b *testing.B) {
	data := largeSpec(1000, 5000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		set, err := Load("large.yaml", data)
		if err != nil {
			b.Fatal(err)
		}
		if len(set.Namespaces) != 1000 || len(set.Services) != 5000 {
			b.Fatalf("got %d namespaces and %d services", len(set.Namespaces), len(set.Services))
		}
	}
}
