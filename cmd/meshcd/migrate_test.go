package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// migrate exits 0 for a clean move, 1 when the report lists access
// differences (here a policy on part of a Service's pods), and 2 without
// -o; the spec it writes validates.
func TestMigrate_WritesSpecStagesAndReport(t *testing.T) {
	d := dir(t, map[string]string{"app.yaml": `apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec: {selector: {app: api}, ports: [{name: http, port: 8080}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  template:
    metadata: {labels: {app: api}}
    spec: {serviceAccountName: api, containers: [{name: api, image: api}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  rules: [{from: [{source: {namespaces: [shop]}}], to: [{operation: {methods: [GET]}}]}]
`})
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := meshcd("migrate", d, "-o", out)
	if code != 0 || !strings.Contains(stdout, "0 access differences") {
		t.Fatalf("exit %d:\n%s%s", code, stdout, stderr)
	}
	report, err := os.ReadFile(filepath.Join(out, "MIGRATION.md"))
	if err != nil || !strings.Contains(string(report), "No difference") {
		t.Fatalf("report: %v\n%s", err, report)
	}
	if code, vout, verr := meshcd("validate", filepath.Join(out, "spec")); code != 0 {
		t.Fatalf("the spec does not validate: exit %d\n%s%s", code, vout, verr)
	}
	if code, _, stderr := meshcd("migrate", d); code != 2 || !strings.Contains(stderr, "-o DIR is required") {
		t.Fatalf("without -o: exit %d, %s", code, stderr)
	}
	if code, _, stderr := meshcd("migrate", d, "-o", out); code != 2 || !strings.Contains(stderr, "already holds") {
		t.Fatalf("into a written directory: exit %d, %s", code, stderr)
	}
	code, stdout, _ = meshcd("migrate", "../../migrate/testdata/features", "-o", filepath.Join(t.TempDir(), "features"))
	if code != 1 || !strings.Contains(stdout, "(0 widen)") {
		t.Fatalf("the features case lists differences, none widening: exit %d\n%s", code, stdout)
	}
}
