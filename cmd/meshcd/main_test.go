package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func dir(t *testing.T, files map[string]string) string {
	t.Helper()
	d := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func meshcd(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

const l7AtZtunnel = `apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: orders, namespace: shop}
spec:
  selector: {matchLabels: {app: orders}}
  rules: [{to: [{operation: {methods: [GET]}}]}]
`

func TestValidate_PlainYAMLWithAnErrorExitsOneAndNamesTheLine(t *testing.T) {
	d := dir(t, map[string]string{"policy.yaml": l7AtZtunnel})
	code, out, _ := meshcd("validate", d)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	if !strings.Contains(out, "policy.yaml:5: error AMB020 AuthorizationPolicy shop/orders") {
		t.Fatalf("output lacks file:line, rule and object:\n%s", out)
	}
	code, out, _ = meshcd("validate", "-o", "json", d)
	var doc struct {
		Findings []map[string]any `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 1 || len(doc.Findings) != 1 {
		t.Fatalf("json: exit %d, %v, %s", code, err, out)
	}
	f := doc.Findings[0]
	if f["rule"] != "AMB020" || f["severity"] != "error" || f["object"] != "AuthorizationPolicy shop/orders" || f["file"] != "policy.yaml" || f["line"] != float64(5) || f["message"] == "" {
		t.Fatalf("finding fields: %v", f)
	}
	if code, _, _ := meshcd("validate", "--allow-finding", "AMB020", d); code != 0 {
		t.Fatalf("an allowed rule exits 0, got %d", code)
	}
}

func TestValidate_BadInputExitsTwoWithFileAndLine(t *testing.T) {
	d := dir(t, map[string]string{"broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [\n"})
	code, _, errOut := meshcd("validate", d)
	if code != 2 || !strings.Contains(errOut, "broken.yaml:") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := meshcd("validate", filepath.Join(d, "missing")); code != 2 {
		t.Fatalf("a missing directory exits 2, got %d", code)
	}
}

func TestValidate_ExamplesAreClean(t *testing.T) {
	code, out, errOut := meshcd("validate", "../../examples/shop-zero-trust", "../../examples/helloworld-canary", "../../examples/payments-workload-waypoint", "../../examples/kustomize-overlays/overlays/prod")
	if code != 0 || !strings.Contains(out, "0 errors, 0 warnings") {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
}

func TestRender_WritesYAMLOrJSON(t *testing.T) {
	code, out, _ := meshcd("render", "../../examples/helloworld-canary")
	if code != 0 || !strings.Contains(out, "kind: HTTPRoute") || !strings.Contains(out, "weight: 95") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	code, out, _ = meshcd("render", "-o", "json", "../../examples/helloworld-canary")
	var list struct {
		Kind  string           `json:"kind"`
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || code != 0 || list.Kind != "List" || len(list.Items) == 0 {
		t.Fatalf("json render: exit %d, %v", code, err)
	}
	if code, _, errOut := meshcd("render", "-o", "toml", "../../examples/helloworld-canary"); code != 2 || !strings.Contains(errOut, "unknown output format") {
		t.Fatalf("bad format: exit %d, %q", code, errOut)
	}
}
