package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// kubeconfigFor writes a kubeconfig whose context "test-ctx" points at
// server and returns its path.
func kubeconfigFor(t *testing.T, server string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {token: s3cr3t-token}}]
contexts: [{name: test-ctx, context: {cluster: c, user: u}}]
current-context: test-ctx
`, server)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// refusingServer returns the address of a port nothing listens on.
func refusingServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr
}

// hangingServer accepts requests and never answers them.
func hangingServer(t *testing.T) string {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv.URL
}

// notFoundServer answers 404 to everything, as a web server that is not
// Kubernetes does.
func notFoundServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// eighteenObjects is a spec directory that renders to a few dozen objects.
const eighteenObjects = "../../examples/shop-zero-trust"

func TestClusterCheck_FailsOnceWithServerContextAndCause(t *testing.T) {
	cases := []struct {
		name   string
		server func(*testing.T) string
		cause  string
	}{
		{"refused", refusingServer, "refused the connection"},
		{"hanging", hangingServer, "did not answer within 1s (--request-timeout)"},
		{"not kubernetes", notFoundServer, "is not a Kubernetes API server"},
	}
	commands := [][]string{
		{"apply", eighteenObjects, "--timeout", "5s"},
		{"diff", eighteenObjects},
		{"drift", eighteenObjects},
		{"drift", eighteenObjects, "--watch"},
		{"run", "--repo", "file:///nonexistent", "--listen", "127.0.0.1:0"},
		{"validate", eighteenObjects, "--live"},
		{"status"},
		{"rollout", "status"},
		{"suspend"},
		{"allow-prune", "0123456789abcdef"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			server := c.server(t)
			kc := kubeconfigFor(t, server)
			for _, args := range commands {
				start := time.Now()
				code, out, errOut := meshcd(append(args, "--kubeconfig", kc, "--request-timeout", "1s")...)
				took := time.Since(start)
				if code != exitError {
					t.Errorf("%s: exit %d, want 2\n%s%s", args[0], code, out, errOut)
				}
				want := fmt.Sprintf("meshcd: cluster %s (context \"test-ctx\") %s", server, c.cause)
				if !strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 1 {
					t.Errorf("%s: stderr is not the one line %q...:\n%s", args[0], want, errOut)
				}
				if strings.Contains(out, "refused because") || strings.Contains(errOut, "s3cr3t-token") {
					t.Errorf("%s: per-object output or the token:\n%s%s", args[0], out, errOut)
				}
				// One bounded check, not one wait per object.
				if took > 3*time.Second {
					t.Errorf("%s: took %s with --request-timeout 1s", args[0], took)
				}
			}
		})
	}
}

func TestClusterCheck_DefaultTimeoutIsUnderAMinute(t *testing.T) {
	cmd := newStatusCommand(nil)
	f := cmd.Flags().Lookup("request-timeout")
	if f == nil || f.DefValue != "30s" {
		t.Fatalf("--request-timeout default: %v", f)
	}
}

func TestClusterCheck_NamesTheMissingKubeconfig(t *testing.T) {
	t.Setenv("KUBECONFIG", "/nonexistent")
	code, _, errOut := meshcd("status")
	if code != exitError || !strings.Contains(errOut, "/nonexistent does not exist (from KUBECONFIG=/nonexistent)") || strings.Contains(errOut, "KUBERNETES_MASTER") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	code, _, errOut = meshcd("diff", eighteenObjects, "--kubeconfig", "/nonexistent/config")
	if code != exitError || !strings.Contains(errOut, "kubeconfig /nonexistent/config (--kubeconfig) cannot be read") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestClusterCheck_UnknownContextIsNamed(t *testing.T) {
	kc := kubeconfigFor(t, refusingServer(t))
	code, _, errOut := meshcd("status", "--kubeconfig", kc, "--context", "prod")
	if code != exitError || !strings.Contains(errOut, `"prod"`) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}
