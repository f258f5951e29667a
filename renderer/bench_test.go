package renderer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshcd/meshcd/renderer/rules"
)

// writeLargeSpec writes namespaces × services MeshServices, one file per
// namespace, each namespace with a waypoint, mTLS and default deny, each
// service with two versions, a canary route, L4 and L7 access.
func writeLargeSpec(b testing.TB, namespaces, servicesPerNamespace int) string {
	dir := b.TempDir()
	for n := 0; n < namespaces; n++ {
		var f strings.Builder
		ns := fmt.Sprintf("team-%04d", n)
		fmt.Fprintf(&f, "apiVersion: meshcd.dev/v1alpha1\nkind: MeshNamespace\nmetadata: {name: %s}\nspec:\n  waypoint: {}\n  mtls: STRICT\n  defaultDeny: true\n", ns)
		for s := 0; s < servicesPerNamespace; s++ {
			fmt.Fprintf(&f, `---
apiVersion: meshcd.dev/v1alpha1
kind: MeshService
metadata: {name: svc-%d, namespace: %s}
spec:
  port: 8080
  selector: {app: svc-%d}
  versions: {v1: {version: v1}, v2: {version: v2}}
  routes:
    - match: {headers: {x-canary: always}}
      backends: {v2: 100}
    - backends: {v1: 90, v2: 10}
  resilience: {timeout: 2s}
  access:
    - from: {serviceAccounts: [%s/web]}
    - from: {serviceAccounts: [%s/web]}
      methods: [GET]
      paths: [/api/*]
`, s, ns, s, ns, ns)
		}
		if err := os.WriteFile(filepath.Join(dir, ns+".yaml"), []byte(f.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// BenchmarkRender renders 1,000 namespaces and 5,000 services.
func BenchmarkRender(b *testing.B) {
	dir := writeLargeSpec(b, 1000, 5)
	b.ReportAllocs()
	b.ResetTimer()
	var objects int
	for b.Loop() {
		bundle, err := Render(dir, DefaultOptions())
		if err != nil {
			b.Fatal(err)
		}
		objects = len(bundle.Objects)
	}
	b.ReportMetric(float64(objects), "objects")
}

// BenchmarkRenderAndValidate renders 1,000 namespaces and 5,000 services
// and runs the rule catalogue over the result: what `meshcd validate` does.
func BenchmarkRenderAndValidate(b *testing.B) {
	dir := writeLargeSpec(b, 1000, 5)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		bundle, err := Render(dir, DefaultOptions())
		if err != nil {
			b.Fatal(err)
		}
		if f := rules.Check(bundle.Objects, rules.Options{Origin: bundle.Origin}); rules.HasErrors(f) {
			b.Fatalf("generated spec has error findings: %v", f[0])
		}
	}
}
