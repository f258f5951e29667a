package access

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// bookinfo is Istio's sample in ambient with a namespace waypoint, deny by
// default at ztunnel except for the waypoint, and GET-only L7 rules at the
// waypoint, as Istio's ambient getting-started guide sets them up.
func bookinfo() string {
	var b strings.Builder
	b.WriteString(`
apiVersion: v1
kind: Namespace
metadata: {name: bookinfo, labels: {istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint}}
---
apiVersion: v1
kind: Namespace
metadata: {name: istio-ingress, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: istio-ingress, namespace: istio-ingress}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: bookinfo}
spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: default-deny, namespace: bookinfo}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-waypoint, namespace: bookinfo}
spec:
  rules: [{from: [{source: {principals: [cluster.local/ns/bookinfo/sa/waypoint]}}]}]
`)
	callers := map[string]string{"productpage": "", "details": "bookinfo-productpage", "reviews": "bookinfo-productpage", "ratings": "bookinfo-reviews"}
	for _, svc := range []string{"productpage", "details", "reviews", "ratings"} {
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: bookinfo}
spec: {selector: {app: %[1]s}, ports: [{name: http, port: 9080}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s-v1, namespace: bookinfo}
spec:
  template:
    metadata: {labels: {app: %[1]s, version: v1}}
    spec: {serviceAccountName: bookinfo-%[1]s, containers: [{name: app, image: %[1]s}]}
`, svc)
		from := "namespaces: [istio-ingress]"
		if callers[svc] != "" {
			from = "principals: [cluster.local/ns/bookinfo/sa/" + callers[svc] + "]"
		}
		fmt.Fprintf(&b, `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: %[1]s-viewer, namespace: bookinfo}
spec:
  targetRefs: [{kind: Service, group: "", name: %[1]s}]
  rules: [{from: [{source: {%[2]s}}], to: [{operation: {methods: [GET]}}]}]
`, svc, from)
	}
	return b.String()
}

func TestCheck_Bookinfo(t *testing.T) {
	m := build(t, bookinfo())
	get, post := Request{Method: "GET"}, Request{Method: "POST"}
	expect(t, check(t, m, "istio-ingress/istio-ingress", "bookinfo/productpage", get), Allow, AtWaypoint)
	expect(t, check(t, m, "istio-ingress/istio-ingress", "bookinfo/productpage", post), Deny, AtWaypoint, "bookinfo/productpage-viewer")
	expect(t, check(t, m, "bookinfo/bookinfo-productpage", "bookinfo/reviews", get), Allow, AtWaypoint)
	expect(t, check(t, m, "bookinfo/bookinfo-productpage", "bookinfo/ratings", get), Deny, AtWaypoint, "bookinfo/ratings-viewer")
	expect(t, check(t, m, "bookinfo/bookinfo-reviews", "bookinfo/ratings", get), Allow, AtWaypoint)
	// An unknown method leaves the allowed caller depending on it.
	v := check(t, m, "bookinfo/bookinfo-reviews", "bookinfo/ratings", Request{})
	expect(t, v, Depends, AtWaypoint, "bookinfo/ratings-viewer")
	if !strings.Contains(v.Reason, "method") {
		t.Errorf("the reason should name the method, got %q", v.Reason)
	}
	// The waypoint itself calling a service directly passes ztunnel but not
	// the waypoint's rules (it is a caller like any other there).
	expect(t, check(t, m, "bookinfo/waypoint", "bookinfo/details", get), Deny, AtWaypoint, "bookinfo/details-viewer")
}

// The matrix decides identities no policy names through one stand-in per
// mesh state; every cell must equal the verdict Check gives.
func TestMatrix_EveryCellEqualsCheck(t *testing.T) {
	for name, m := range map[string]*Model{
		"bookinfo": build(t, bookinfo()),
		"readme":   render(t, readmeDir(t)),
		"shop":     render(t, "../examples/shop-zero-trust"),
		"large":    render(t, writeLargeSpec(t, 4, 3)),
	} {
		for _, req := range []Request{{}, {Method: "GET", Path: "/api/x"}, {Method: "DELETE", Path: "/admin", NoJWT: true}} {
			mx := m.Matrix(req)
			if mx.Cells() == 0 {
				t.Fatalf("%s: empty matrix", name)
			}
			for j, d := range mx.Destinations {
				for _, i := range mx.Identities {
					got, want := mx.Cell(i, j), m.Check(i, d, req)
					if got.Decision != want.Decision || got.EnforcedAt != want.EnforcedAt || strings.Join(got.Policies, ",") != strings.Join(want.Policies, ",") {
						t.Errorf("%s %+v: %s → %s: matrix %s at %s by %v, Check %s at %s by %v (%s)", name, req, i, d,
							got.Decision, got.EnforcedAt, got.Policies, want.Decision, want.EnforcedAt, want.Policies, want.Reason)
					}
				}
			}
		}
	}
}

// writeLargeSpec writes a meshcd spec of namespaces × services: each
// namespace ambient with a waypoint, STRICT mTLS and default deny; each
// service called by the web account of the previous namespace (L4) and by
// its own namespace's web for GET /api/* (L7).
func writeLargeSpec(t testing.TB, namespaces, services int) string {
	dir := t.TempDir()
	for n := 0; n < namespaces; n++ {
		var f strings.Builder
		ns, prev := fmt.Sprintf("team-%04d", n), fmt.Sprintf("team-%04d", (n+namespaces-1)%namespaces)
		fmt.Fprintf(&f, "apiVersion: meshcd.dev/v1alpha1\nkind: MeshNamespace\nmetadata: {name: %s}\nspec:\n  waypoint: {name: waypoint, for: service}\n  useWaypoint: namespace\n  mtls: STRICT\n  defaultDeny: true\n", ns)
		for s := 0; s < services; s++ {
			fmt.Fprintf(&f, `---
apiVersion: meshcd.dev/v1alpha1
kind: MeshService
metadata: {name: svc-%[1]d, namespace: %[2]s}
spec:
  port: 8080
  selector: {app: svc-%[1]d}
  access:
    - from: {serviceAccounts: [%[3]s/web]}
    - from: {serviceAccounts: [%[2]s/web]}
      methods: [GET]
      paths: [/api/*]
---
apiVersion: v1
kind: Service
metadata: {name: svc-%[1]d, namespace: %[2]s}
spec: {selector: {app: svc-%[1]d}, ports: [{name: http, port: 8080}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: svc-%[1]d, namespace: %[2]s}
spec:
  selector: {matchLabels: {app: svc-%[1]d}}
  template:
    metadata: {labels: {app: svc-%[1]d}}
    spec: {serviceAccountName: svc-%[1]d, containers: [{name: app, image: app}]}
`, s, ns, prev)
		}
		if err := os.WriteFile(filepath.Join(dir, ns+".yaml"), []byte(f.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// BenchmarkMatrix_1000NamespacesBy5Services builds the model and decides
// every identity the spec names against every Service port.
func BenchmarkMatrix_1000NamespacesBy5Services(b *testing.B) {
	dir := writeLargeSpec(b, 1000, 5)
	objs := renderObjects(b, dir)
	var mx *Matrix
	cpu := cpuTime()
	for b.Loop() {
		m, err := Build(objs, DefaultOptions())
		if err != nil {
			b.Fatal(err)
		}
		mx = m.Matrix(Request{})
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(len(mx.Identities)), "identities")
	b.ReportMetric(float64(len(mx.Destinations)), "services")
	b.ReportMetric(float64(mx.Cells()), "cells")
}

// cpuTime is the CPU this process has used, in nanoseconds: on a shared
// machine it says more than the wall clock.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
