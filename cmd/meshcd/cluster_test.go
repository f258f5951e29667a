package main

import (
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
