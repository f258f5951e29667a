package localcluster_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/internal/localcluster"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

func apply(t *testing.T, c client.Client, obj map[string]any) {
	t.Helper()
	u := &unstructured.Unstructured{Object: obj}
	if err := c.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("meshcd"), client.ForceOwnership); err != nil {
		t.Fatalf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

// condition waits, within timeout, for the status condition t of obj to
// satisfy ok, and returns it.
func condition(t *testing.T, c client.Client, gvk, namespace, name, ctype string, timeout time.Duration, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	obj := &unstructured.Unstructured{}
	obj.SetAPIVersion(gvk[:len(gvk)-len(kindOf(gvk))-1])
	obj.SetKind(kindOf(gvk))
	var found map[string]any
	start := time.Now()
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, obj); err != nil {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
		for _, cd := range conds {
			m, _ := cd.(map[string]any)
			if m["type"] == ctype && ok(m) {
				found = m
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		st, _, _ := unstructured.NestedFieldNoCopy(obj.Object, "status")
		t.Fatalf("%s %s/%s: no %s condition as wanted after %s; status: %v", kindOf(gvk), namespace, name, ctype, timeout, st)
	}
	t.Logf("%s %s/%s %s after %s: %v", kindOf(gvk), namespace, name, ctype, time.Since(start).Round(time.Millisecond), found)
	return found
}

// kindOf takes "group/version/Kind" apart.
func kindOf(gvk string) string {
	for i := len(gvk) - 1; i >= 0; i-- {
		if gvk[i] == '/' {
			return gvk[i+1:]
		}
	}
	return gvk
}

func isTrue(m map[string]any) bool { return m["status"] == "True" }

func TestCluster_ServerSideAppliedNamespaceLabelReadsBack(t *testing.T) {
	c := clustertest.Client(t)
	ns := clustertest.Namespace(t, nil)
	ac := corev1ac.Namespace(ns).WithLabels(map[string]string{"istio.io/dataplane-mode": "ambient"})
	if err := c.Apply(context.Background(), ac, client.FieldOwner("meshcd")); err != nil {
		t.Fatal(err)
	}
	got := &corev1.Namespace{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: ns}, got); err != nil {
		t.Fatal(err)
	}
	if got.Labels["istio.io/dataplane-mode"] != "ambient" {
		t.Fatalf("label not applied: %v", got.Labels)
	}
	owned := false
	for _, mf := range got.ManagedFields {
		owned = owned || (mf.Manager == "meshcd" && mf.Operation == metav1.ManagedFieldsOperationApply)
	}
	if !owned {
		t.Fatalf("meshcd does not own the label: %+v", got.ManagedFields)
	}
}

func TestCluster_WaypointGetsProgrammedAndBindsAService(t *testing.T) {
	c := clustertest.Client(t)
	ns := clustertest.Namespace(t, map[string]string{"istio.io/dataplane-mode": "ambient"})
	start := time.Now()
	apply(t, c, map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
		"metadata": map[string]any{"name": "waypoint", "namespace": ns, "labels": map[string]any{"istio.io/waypoint-for": "service"}},
		"spec":     map[string]any{"gatewayClassName": "istio-waypoint", "listeners": []any{map[string]any{"name": "mesh", "port": int64(15008), "protocol": "HBONE"}}},
	})
	// istiod creates the waypoint Deployment; kwok makes its pod Ready.
	dep := &unstructured.Unstructured{}
	dep.SetAPIVersion("apps/v1")
	dep.SetKind("Deployment")
	if err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "waypoint"}, dep); err != nil {
			return false, nil
		}
		n, _, _ := unstructured.NestedInt64(dep.Object, "status", "availableReplicas")
		return n >= 1, nil
	}); err != nil {
		t.Fatalf("waypoint Deployment never became available: %v", dep.Object["status"])
	}
	t.Logf("waypoint Deployment available after %s", time.Since(start).Round(time.Millisecond))
	condition(t, c, "gateway.networking.k8s.io/v1/Gateway", ns, "waypoint", "Programmed", 90*time.Second, isTrue)
	gw := &unstructured.Unstructured{}
	gw.SetAPIVersion("gateway.networking.k8s.io/v1")
	gw.SetKind("Gateway")
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "waypoint"}, gw); err != nil {
		t.Fatal(err)
	}
	if addrs, _, _ := unstructured.NestedSlice(gw.Object, "status", "addresses"); len(addrs) == 0 {
		t.Fatal("a Programmed waypoint has an address")
	}

	apply(t, c, map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "orders", "namespace": ns, "labels": map[string]any{"istio.io/use-waypoint": "waypoint"}},
		"spec":     map[string]any{"selector": map[string]any{"app": "orders"}, "ports": []any{map[string]any{"name": "http", "port": int64(8080)}}},
	})
	bound := condition(t, c, "v1/Service", ns, "orders", "istio.io/WaypointBound", 60*time.Second, isTrue)
	if bound["message"] != fmt.Sprintf("Successfully attached to waypoint %s/waypoint", ns) {
		t.Fatalf("WaypointBound message: %v", bound["message"])
	}
}

func TestCluster_SelectorPolicyWithHTTPMethodsIsUnsupportedAtZtunnel(t *testing.T) {
	c := clustertest.Client(t)
	ns := clustertest.Namespace(t, map[string]string{"istio.io/dataplane-mode": "ambient"})
	apply(t, c, map[string]any{
		"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
		"metadata": map[string]any{"name": "l7-at-ztunnel", "namespace": ns},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app": "orders"}},
			"action":   "ALLOW",
			"rules":    []any{map[string]any{"to": []any{map[string]any{"operation": map[string]any{"methods": []any{"GET"}}}}}},
		},
	})
	cond := condition(t, c, "security.istio.io/v1/AuthorizationPolicy", ns, "l7-at-ztunnel", "ZtunnelAccepted", 60*time.Second, func(map[string]any) bool { return true })
	if cond["reason"] != "UnsupportedValue" || cond["status"] != "True" {
		t.Fatalf("want ZtunnelAccepted=True with reason UnsupportedValue (True, yet a failure), got %v", cond)
	}
}

func TestCluster_TwoSideBySideAndNoOrphansAfterStop(t *testing.T) {
	first := clustertest.Cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	second, err := localcluster.Start(ctx, localcluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second cluster up in %s beside the first", second.StartupTime().Round(time.Millisecond))
	if second.Kubeconfig() == first.Kubeconfig() || second.RESTConfig().Host == first.RESTConfig().Host {
		t.Fatal("the clusters share an endpoint")
	}
	c2, err := client.New(second.RESTConfig(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	nodes := &corev1.NodeList{}
	if err := c2.List(ctx, nodes); err != nil || len(nodes.Items) != 3 {
		t.Fatalf("second cluster nodes: %d, %v", len(nodes.Items), err)
	}
	for name, rss := range second.RSS() {
		t.Logf("RSS %-24s %d MiB", name, rss>>20)
	}
	pids := second.Pids()
	if len(pids) != 6 {
		t.Fatalf("want 6 processes, got %v", pids)
	}
	if err := second.Stop(); err != nil {
		t.Fatal(err)
	}
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Fatalf("%s (pid %d) still runs after Stop", name, pid)
		}
	}
	// The first cluster is unaffected.
	if err := clustertest.Client(t).List(ctx, &corev1.NamespaceList{}); err != nil {
		t.Fatalf("first cluster broken after the second stopped: %v", err)
	}
}

func TestStart_AFailedStartReturnsItsErrorAndLeavesNoProcess(t *testing.T) {
	clustertest.Cluster(t) // the binaries are there
	state := t.TempDir()
	// Time runs out while the control plane is still starting.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := localcluster.Start(ctx, localcluster.Options{StateDir: state})
	if err == nil {
		t.Fatalf("a cluster started in 2 s; the test needs a start that fails: %v", c.Pids())
	}
	t.Logf("failed start: %v", err)
	// Nothing started for it still runs: no process names its state dir.
	time.Sleep(200 * time.Millisecond)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), state) {
			t.Errorf("still running after a failed start: %s", strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
}
