package clustertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/meshcd/meshcd/internal/localcluster"
)

var (
	cluster    *localcluster.Cluster
	skipReason string
)

// Main starts the package's cluster, runs its tests and stops the cluster.
// Call it from TestMain.
func Main(m *testing.M) {
	os.Exit(Run(m, localcluster.Options{}))
}

// Run is Main with cluster options and without the exit: it returns the
// tests' exit code, for a TestMain that reports on the run before it exits.
func Run(m *testing.M, opts localcluster.Options) int {
	// controller-runtime's informers log through it; the tests read what
	// they need from the cluster.
	ctrllog.SetLogger(logr.Discard())
	if missing := localcluster.Missing(localcluster.BinDir()); len(missing) > 0 {
		skipReason = fmt.Sprintf("local cluster binaries missing (%s): run make tools", strings.Join(missing, ", "))
		if os.Getenv("MESHCD_REQUIRE_CLUSTER") == "1" {
			fmt.Fprintln(os.Stderr, "MESHCD_REQUIRE_CLUSTER=1 but", skipReason)
			return 1
		}
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := localcluster.Start(ctx, opts)
	if err != nil {
		// Packages start their clusters in parallel, and a free port picked
		// by one can be taken by another before it binds: try once more.
		fmt.Fprintln(os.Stderr, "local cluster, trying again:", err)
		if c, err = localcluster.Start(ctx, opts); err != nil {
			fmt.Fprintln(os.Stderr, "local cluster:", err)
			return 1
		}
	}
	fmt.Fprintf(os.Stderr, "local cluster up in %s\n", c.StartupTime().Round(time.Millisecond))
	cluster = c
	code := m.Run()
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "local cluster stop:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Cluster returns the package's cluster, or skips the test when there is none.
func Cluster(t testing.TB) *localcluster.Cluster {
	t.Helper()
	if cluster == nil {
		if skipReason == "" {
			t.Fatal("clustertest.Main was not called from TestMain")
		}
		t.Skip(skipReason)
	}
	return cluster
}

// Client returns a controller-runtime client for the package's cluster.
func Client(t testing.TB) client.Client {
	t.Helper()
	c, err := client.New(Cluster(t).RESTConfig(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Namespace creates a namespace unique to the test, with labels, and
// deletes it when the test ends.
func Namespace(t testing.TB, labels map[string]string) string {
	t.Helper()
	c := Client(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := strings.ToLower(fmt.Sprintf("t-%.40s-%s", sanitize(t.Name()), hex.EncodeToString(b)))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), ns) })
	return name
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}
