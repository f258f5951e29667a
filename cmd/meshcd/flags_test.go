package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingCluster is a kubeconfig whose server only counts the requests
// it gets and answers each with 500.
type countingCluster struct {
	kubeconfig string
	requests   atomic.Int64
}

func newCountingCluster(t *testing.T) *countingCluster {
	t.Helper()
	c := &countingCluster{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		c.requests.Add(1)
		http.Error(w, "counting server", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	c.kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	cfg := "apiVersion: v1\nkind: Config\n" +
		"clusters: [{name: counting, cluster: {server: " + srv.URL + "}}]\n" +
		"users: [{name: counting, user: {}}]\n" +
		"contexts: [{name: counting, context: {cluster: counting, user: counting}}]\n" +
		"current-context: counting\n"
	if err := os.WriteFile(c.kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRun_BadFlagsExitTwoNamingTheFlagBeforeTouchingTheCluster(t *testing.T) {
	cluster := newCountingCluster(t)
	spec := dir(t, map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: default}\n"})
	runArgs := func(extra ...string) []string {
		return append([]string{"run", "--kubeconfig", cluster.kubeconfig, "--repo", "file:///nonexistent", "--listen", "127.0.0.1:0"}, extra...)
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string // in stderr
	}{
		{"a schedule that is not cron", runArgs("--schedule", "every five minutes"),
			[]string{`invalid --schedule: cron schedule "every five minutes"`, "'*/5 * * * *'", "@hourly"}},
		{"a schedule with a field out of range", runArgs("--schedule", "61 * * * *"),
			[]string{`invalid --schedule: cron schedule "61 * * * *"`, "five fields"}},
		{"a negative interval", runArgs("--interval", "-1m"),
			[]string{"invalid --interval -1m0s", "positive duration"}},
		{"an unknown drift mode", runArgs("--drift-mode", "fix"),
			[]string{`invalid --drift-mode "fix": use correct or report`}},
		{"a listen address without a port", runArgs("--listen", "8080"),
			[]string{`invalid --listen "8080"`, ":8080"}},
		{"a listen port out of range", runArgs("--listen", ":99999"),
			[]string{`invalid --listen ":99999"`, "0 to 65535"}},
		{"max-prune NaN", runArgs("--max-prune", "NaN"),
			[]string{"invalid --max-prune NaN", "from 0 (hold every prune) to 1"}},
		{"max-prune above 1", runArgs("--max-prune", "1.5"),
			[]string{"invalid --max-prune 1.5", "the default is 0.5"}},
		{"max-prune below 0", runArgs("--max-prune", "-0.1"),
			[]string{"invalid --max-prune -0.1"}},
		{"a missing webhook secret file", runArgs("--webhook-secret-file", filepath.Join(t.TempDir(), "missing")),
			[]string{"--webhook-secret-file: open "}},
		{"apply with max-prune NaN", []string{"apply", "--kubeconfig", cluster.kubeconfig, "--max-prune", "NaN", spec},
			[]string{"invalid --max-prune NaN"}},
		{"apply with max-prune above 1", []string{"apply", "--kubeconfig", cluster.kubeconfig, "--max-prune", "2", spec},
			[]string{"invalid --max-prune 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out, errOut strings.Builder
			code := runContext(ctx, tc.args, &out, &errOut)
			if code != exitError {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitError, errOut.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut.String())
				}
			}
			if ctx.Err() != nil {
				t.Error("the command ran until the test's deadline")
			}
		})
	}
	if n := cluster.requests.Load(); n != 0 {
		t.Fatalf("the cluster got %d requests from commands with bad flags", n)
	}

	// The same run with good flags does reach the cluster: the count above
	// would have seen it.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var out, errOut strings.Builder
	code := runContext(ctx, runArgs("--schedule", "*/5 * * * *", "--max-prune", "1"), &out, &errOut)
	t.Logf("run with good flags: exit %d after %d requests: %s", code, cluster.requests.Load(), strings.TrimSpace(errOut.String()))
	if code != exitError || cluster.requests.Load() == 0 {
		t.Fatalf("run with good flags against the counting server: exit %d, %d requests; stderr:\n%s", code, cluster.requests.Load(), errOut.String())
	}
}
