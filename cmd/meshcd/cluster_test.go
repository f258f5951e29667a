package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meshcd/meshcd/internal/clustertest"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

func TestClusterCheck_PassesAgainstARealAPIServer(t *testing.T) {
	kc := clustertest.Cluster(t).Kubeconfig()
	start := time.Now()
	code, out, errOut := meshcd("status", "--kubeconfig", kc, "--name", "check", "--request-timeout", "5s")
	if code != exitOK || !strings.Contains(out, "owned objects: 0") || errOut != "" {
		t.Fatalf("status: exit %d in %s:\n%s%s", code, time.Since(start), out, errOut)
	}
	ns := clustertest.Namespace(t, nil)
	d := dir(t, map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: " + ns + "}\ndata: {a: b}\n"})
	code, out, errOut = meshcd("diff", d, "--kubeconfig", kc, "--name", "check")
	if code != exitChanges || !strings.Contains(out, "+ ConfigMap "+ns+"/settings (created)") {
		t.Fatalf("diff: exit %d:\n%s%s", code, out, errOut)
	}
}

// manyServices is a spec of n MeshServices in namespace ns, each with its
// application Service and an access rule that ztunnel enforces.
func manyServices(ns string, n int) map[string]string {
	var mesh, apps strings.Builder
	mesh.WriteString("apiVersion: meshcd.dev/v1alpha1\nkind: MeshNamespace\nmetadata: {name: " + ns + "}\nspec:\n  waypoint: {}\n  mtls: STRICT\n")
	for i := range n {
		name := fmt.Sprintf("svc%02d", i)
		fmt.Fprintf(&mesh, "---\napiVersion: meshcd.dev/v1alpha1\nkind: MeshService\nmetadata: {name: %s, namespace: %s}\nspec:\n  port: 8080\n  selector: {app: %s}\n  access:\n    - from: {serviceAccounts: [%s/web]}\n", name, ns, name, ns)
		fmt.Fprintf(&apps, "---\napiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: %s}\nspec:\n  selector: {app: %s}\n  ports: [{name: http, port: 8080}]\n", name, ns, name)
	}
	return map[string]string{"mesh.yaml": mesh.String(), "apps.yaml": apps.String()}
}

func TestApply_NoOpPrintsASummaryNotALinePerObject(t *testing.T) {
	kc := clustertest.Cluster(t).Kubeconfig()
	ns := clustertest.Namespace(t, nil)
	d := dir(t, manyServices(ns, 40))
	args := []string{"apply", d, "--kubeconfig", kc, "--name", ns, "--timeout", "90s"}
	code, out, errOut := meshcd(args...)
	if code != exitOK {
		t.Fatalf("first apply: exit %d:\n%s%s", code, out, errOut)
	}
	t.Logf("first apply:\n%s%s", out, errOut)

	code, out, errOut = meshcd(args...)
	if code != exitOK {
		t.Fatalf("second apply: exit %d:\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "applied: ") || !strings.Contains(lines[0], " unchanged") ||
		!strings.HasPrefix(lines[1], "health: ") || !strings.Contains(lines[1], " healthy, 0 pending, 0 unhealthy") || !strings.HasPrefix(lines[2], "result: ReconciliationSucceeded") {
		t.Fatalf("a no-op apply prints %d lines, want the 3 of a summary:\n%s", len(lines), out)
	}
	var healthy int
	if _, err := fmt.Sscanf(lines[1], "health: %d healthy", &healthy); err != nil || healthy < 80 {
		t.Fatalf("health summary %q: %v", lines[1], err)
	}
	// Not a terminal: a plain line per stage, none per object.
	progress := strings.Split(strings.TrimSpace(errOut), "\n")
	want := []string{"applying " + d, "render", "apply: 0/", "apply: ", "prune", "health"}
	if len(progress) != len(want) {
		t.Fatalf("stderr has %d lines, want %d:\n%s", len(progress), len(want), errOut)
	}
	for i, w := range want {
		if !strings.HasPrefix(progress[i], w) {
			t.Errorf("stderr line %d is %q, want %q...", i, progress[i], w)
		}
	}

	code, out, _ = meshcd(append(args, "-v")...)
	if n := strings.Count(out, "\n"); code != exitOK || n < 2*healthy || !strings.Contains(out, "  AuthorizationPolicy "+ns+"/svc07-l4 healthy") || !strings.Contains(out, "unchanged\n") {
		t.Fatalf("-v: exit %d, %d lines:\n%s", code, n, out)
	}
	code, out, _ = meshcd("status", "--kubeconfig", kc, "--name", ns)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != exitOK || len(lines) != 2 || !strings.HasPrefix(lines[1], "health: ") {
		t.Fatalf("status: exit %d:\n%s", code, out)
	}
}
