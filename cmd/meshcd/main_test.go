package main

import (
	"io"

	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
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
	if !strings.Contains(out, "policy.yaml:5: error AMB020 AuthorizationPolicy shop/orders") || !strings.HasSuffix(out, "\n1 error, 0 warnings\n") {
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

func TestRender_ListsSkippedFilesOnStderrOrInTheJSONList(t *testing.T) {
	d := dir(t, map[string]string{
		"cm.YML":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"README.md": "# mesh\n",
	})
	code, out, errOut := meshcd("render", d)
	if code != 0 || !strings.Contains(out, "namespace: default") {
		t.Fatalf("exit %d, the ConfigMap is not in default:\n%s%s", code, out, errOut)
	}
	if want := "skipped: README.md: not a manifest"; !strings.Contains(errOut, want) || strings.Contains(out, "skipped") {
		t.Fatalf("want %q on stderr only:\nstdout %s\nstderr %s", want, out, errOut)
	}
	code, out, errOut = meshcd("render", "-o", "json", d)
	var list struct {
		Items   []map[string]any `json:"items"`
		Skipped []struct{ Path, Reason string }
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || code != 0 || len(list.Items) != 1 || len(list.Skipped) != 1 || list.Skipped[0].Path != "README.md" || errOut != "" {
		t.Fatalf("json: exit %d, %v, %+v, stderr %q", code, err, list.Skipped, errOut)
	}
}

func TestRender_WarnsOnAnEmptySpecDirectory(t *testing.T) {
	d := dir(t, map[string]string{"notes.txt": "later\n"})
	code, out, errOut := meshcd("render", d)
	if code != 0 || out != "" || !strings.Contains(errOut, "warning: spec directory "+d+" holds no manifests") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// l7AtZtunnelNoNamespace is l7AtZtunnel with the policy in no namespace and
// the ambient label on the Namespace kubectl would place it in.
const l7AtZtunnelNoNamespace = `apiVersion: v1
kind: Namespace
metadata: {name: NS, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: orders}
spec:
  selector: {matchLabels: {app: orders}}
  rules: [{to: [{operation: {methods: [GET]}}]}]
`

func TestValidate_ManifestWithoutANamespaceIsCheckedInDefaultOrTheFlagsNamespace(t *testing.T) {
	for _, tc := range []struct {
		ns   string
		args []string
	}{{"default", nil}, {"shop", []string{"-n", "shop"}}, {"team", []string{"--namespace", "team"}}} {
		t.Run(tc.ns, func(t *testing.T) {
			d := dir(t, map[string]string{"policy.yaml": strings.Replace(l7AtZtunnelNoNamespace, "NS", tc.ns, 1)})
			code, out, errOut := meshcd(append(append([]string{"validate"}, tc.args...), d)...)
			if want := "policy.yaml:5: error AMB020 AuthorizationPolicy " + tc.ns + "/orders"; code != 1 || !strings.Contains(out, want) {
				t.Fatalf("exit %d, want %q:\n%s%s", code, want, out, errOut)
			}
		})
	}
	d := dir(t, map[string]string{"policy.yaml": strings.Replace(l7AtZtunnelNoNamespace, "NS", "shop", 1)})
	if code, out, _ := meshcd("validate", d); code != 0 {
		t.Fatalf("the policy is in default, which is not ambient here: exit %d\n%s", code, out)
	}
	if code, _, errOut := meshcd("validate", "-n", "Bad_NS", d); code != 2 || !strings.Contains(errOut, `namespace "Bad_NS" for manifests that name none is not a valid namespace`) {
		t.Fatalf("a bad --namespace: exit %d, %q", code, errOut)
	}
}

func TestValidate_ReadsListsAndJSONAndReportsSkippedFiles(t *testing.T) {
	list := `{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"istio.io/dataplane-mode": "ambient"}}},
  {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": {"name": "orders", "namespace": "shop"},
   "spec": {"selector": {"matchLabels": {"app": "orders"}}, "rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]}}
]}`
	d := dir(t, map[string]string{"mesh.json": list, "package.json": `{"name": "site"}`})
	code, out, errOut := meshcd("validate", d)
	if code != 1 || !strings.Contains(out, "mesh.json:3: error AMB020 AuthorizationPolicy shop/orders") {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "skipped: package.json: names no Kubernetes object") {
		t.Fatalf("stderr lacks the skipped file: %q", errOut)
	}
	code, out, _ = meshcd("validate", "-o", "json", d)
	var doc struct {
		Findings []map[string]any `json:"findings"`
		Skipped  []struct{ Path, Reason string }
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 1 || len(doc.Findings) != 1 || len(doc.Skipped) != 1 || doc.Skipped[0].Path != "package.json" {
		t.Fatalf("json: exit %d, %v:\n%s", code, err, out)
	}
	code, out, errOut = meshcd("validate", d, d)
	if want := "skipped: " + d + "/package.json:"; code != 1 || !strings.Contains(errOut, want) {
		t.Fatalf("several directories: exit %d, want %q in stderr:\n%s%s", code, want, out, errOut)
	}
}

func TestValidate_ListItemErrorNamesFileLineAndIndex(t *testing.T) {
	d := dir(t, map[string]string{"list.yaml": "apiVersion: v1\nkind: List\nitems:\n  - {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n  - {apiVersion: v1, metadata: {name: b}}\n"})
	code, _, errOut := meshcd("validate", d)
	if code != 2 || !strings.Contains(errOut, "list.yaml:5:5: items[1]: document has no apiVersion or kind") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

// commands walks meshcd's own commands, leaving out cobra's help and
// completion.
func commands(c *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, sub := range c.Commands() {
		if sub.Name() == "help" || sub.Name() == "completion" {
			continue
		}
		out = append(out, sub)
		out = append(out, commands(sub)...)
	}
	return out
}

func TestHelp_EveryCommandHasADescriptionAndExamples(t *testing.T) {
	root := newRootCommand(io.Discard)
	root.InitDefaultCompletionCmd()
	all := append(commands(root), root)
	if len(all) < 20 {
		t.Fatalf("only %d commands found", len(all))
	}
	for _, c := range all {
		if c.Short == "" || strings.Contains(c.Short, "\n") {
			t.Errorf("%s: no one-line description: %q", c.CommandPath(), c.Short)
		}
		if c.Example == "" {
			t.Errorf("%s: no examples", c.CommandPath())
		}
	}
}

func TestHelp_StateCommandsListOnlyTheirOwnFlags(t *testing.T) {
	applyOnly := []string{"allow-finding", "allow-empty", "max-prune", "allow-prune", "force", "timeout", "istiod-version", "allow-kind", "source-namespaces"}
	for _, args := range [][]string{{"status"}, {"suspend"}, {"resume"}, {"allow-prune"}, {"rollout", "status"}, {"rollout", "pause"}, {"rollout", "resume"}, {"rollout", "abort"}, {"rollout", "rollback"}} {
		code, out, _ := meshcd(append(args, "--help")...)
		if code != 0 || !strings.Contains(out, "--request-timeout") || !strings.Contains(out, "--context") || !strings.Contains(out, "Examples:") {
			t.Errorf("%v --help: exit %d:\n%s", args, code, out)
		}
		_, flags, _ := strings.Cut(out, "Flags:")
		for _, f := range applyOnly {
			if strings.Contains(flags, "--"+f+" ") {
				t.Errorf("%v --help lists apply's --%s", args, f)
			}
		}
	}
	_, out, _ := meshcd("apply", "--help")
	for _, f := range applyOnly {
		if !strings.Contains(out, "--"+f+" ") {
			t.Errorf("apply --help lacks --%s", f)
		}
	}
}

func TestOutput_RefusedBeforeConnecting(t *testing.T) {
	// The kubeconfig does not exist: a command that connected first would
	// name it instead of the format.
	for _, args := range [][]string{{"status"}, {"apply", "x"}, {"diff", "x"}, {"drift", "x"}, {"rollout", "status"}, {"validate", "x"}, {"plan", "--head", "x"}} {
		code, _, errOut := meshcd(append(args, "--kubeconfig", "/nonexistent", "-o", "bogus")...)
		if code != exitError || !strings.Contains(errOut, `unknown output format "bogus": use `) || strings.Contains(errOut, "nonexistent") {
			t.Errorf("%v -o bogus: exit %d: %s", args, code, errOut)
		}
	}
	if code, _, errOut := meshcd("bundle", "list", "-o", "bogus"); code != exitError || !strings.Contains(errOut, `unknown output format "bogus": use text, json, yaml`) {
		t.Errorf("bundle list -o bogus: exit %d: %s", code, errOut)
	}
}

func TestOutput_KubectlFormatsOfferedAndCompleted(t *testing.T) {
	for _, args := range [][]string{{"status"}, {"apply"}, {"diff"}, {"drift"}, {"validate"}, {"plan"}, {"bundle", "list"}, {"rollout", "status"}} {
		code, out, _ := meshcd(append([]string{"__complete"}, append(args, "-o", "")...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d", args, code)
		}
		for _, f := range []string{"text", "json", "yaml"} {
			if !strings.Contains(out, f+"\n") {
				t.Errorf("%v -o completion lacks %s:\n%s", args, f, out)
			}
		}
	}
	code, out, _ := meshcd("bundle", "list", "-o", "yaml")
	if code != 0 || !strings.Contains(out, "version: ") {
		t.Fatalf("bundle list -o yaml: exit %d:\n%s", code, out)
	}
}

func TestCompletion_ContextsComeFromTheKubeconfig(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {}}]
contexts: [{name: prod, context: {cluster: c, user: u}}, {name: staging, context: {cluster: c, user: u}}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := meshcd("__complete", "status", "--kubeconfig", kc, "--context", "")
	if code != 0 || !strings.HasPrefix(out, "prod\nstaging\n:4\n") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}
