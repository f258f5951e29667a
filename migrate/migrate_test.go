package migrate

import (
	"bytes"
	"fmt"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/meshcd/meshcd/access"
)

// A namespace using what does not carry over as it is: each gets its
// item, the routes, retries, circuit breaker, access rules and mTLS move
// into the spec, and the only access differences are the calls a policy
// on part of a Service's pods decided, which a service waypoint cannot.
func TestMigrate_Features_ReportsWhatDoesNotCarryOver(t *testing.T) {
	r, err := Migrate("testdata/features", DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	var items []string
	for _, it := range r.Items {
		items = append(items, fmt.Sprintf("%s %s:%d", it.Object, it.Position.File, it.Position.Line))
	}
	want := []string{
		"VirtualService shop/web mesh.yaml:29", "Sidecar shop/default mesh.yaml:38", "EnvoyFilter shop/lua mesh.yaml:44",
		"RequestAuthentication shop/jwt mesh.yaml:57", "AuthorizationPolicy shop/no-delete mesh.yaml:74", "AuthorizationPolicy shop/v2-from-web mesh.yaml:82",
	}
	if !slices.Equal(items, want) {
		t.Errorf("items:\n got %q\nwant %q", items, want)
	}
	for _, it := range r.Items {
		if it.Object == "AuthorizationPolicy shop/v2-from-web" && !strings.Contains(it.Consequence, "workload waypoint") {
			t.Errorf("v2-from-web should need a workload waypoint: %s", it.Consequence)
		}
	}
	if n := r.Access.Widening(); n != 0 {
		t.Errorf("%d differences widen access", n)
	}
	for _, d := range r.Access.Differences {
		if d.From.String() != "shop/web" || d.To.Service != "orders" || d.Before.Decision != access.Undecided || d.After.Decision != access.Deny {
			t.Errorf("unexpected difference in %s: %s → %s %s %s: %s, was %s", d.Stage, d.From, d.To, d.Request.Method, d.Request.Path, verdict(d.After), verdict(d.Before))
		}
	}
	if len(r.Access.Differences) == 0 {
		t.Error("web → orders for a request only v2-from-web admitted is decided by a policy on part of the pods: the comparison should list it")
	}
	for _, f := range r.Access.Unexpected() {
		t.Errorf("stage %s: unexpected %s %s: %s", f.Stage, f.Finding.Rule, f.Finding.Object, f.Finding.Message)
	}
	var report bytes.Buffer
	if err := r.WriteReport(&report); err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/features.golden.md", report.Bytes())
}

// The comparison is what keeps a widening from being emitted silently: a
// generated spec whose access rules for orders are taken away lets callers
// the sidecars refused through, and the comparison says so.
func TestMigrate_ComparisonCatchesWidening(t *testing.T) {
	r, err := Migrate("testdata/features", DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if r.Access.Widening() != 0 {
		t.Fatalf("the migration itself widens access %d times", r.Access.Widening())
	}
	cut := false
	for _, d := range r.docs {
		if d.Object.GetKind() == "MeshService" && d.Object.GetName() == "orders" {
			unstructured.RemoveNestedField(d.Object.Object, "spec", "access")
			cut = true
		}
	}
	if !cut {
		t.Fatal("no MeshService orders to take the access rules from")
	}
	r.Spec, r.Stages = nil, nil
	for _, d := range r.docs {
		if d.until == stepEnd {
			r.Spec = append(r.Spec, d)
		}
	}
	r.stages()
	if r.Access, err = r.compare(); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range r.Access.Differences {
		if d.Widens && strings.HasPrefix(d.To.Service, "orders") && d.After.Decision == access.Allow {
			found = true
		}
	}
	if !found {
		for _, d := range r.Access.Differences {
			t.Logf("%s %s → %s %s: %s was %s widens %v", d.Stage, d.From, d.To, d.Request.Method, d.After.Decision, d.Before.Decision, d.Widens)
		}
		t.Errorf("orders without its access rules should widen; differences: %d", len(r.Access.Differences))
	}
}

// Write refuses a directory that holds a migration: it never overwrites
// a repository.
func TestWrite_RefusesNonEmptyDirectory(t *testing.T) {
	r, err := Migrate("testdata/features", DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"MIGRATION.md", "spec/shop/mesh.yaml", "spec/shop/istio.yaml", "stages/01-shop-waypoint/shop/istio.yaml", "stages/05-shop-prune/shop/mesh.yaml"} {
		if matches, _ := filepath.Glob(filepath.Join(dir, f)); len(matches) != 1 {
			t.Errorf("%s was not written", f)
		}
	}
	if err := r.Write(dir); err == nil || !strings.Contains(err.Error(), "already holds spec") {
		t.Errorf("a second write should be refused, got %v", err)
	}
}

// A spec repository is not a sidecar configuration.
func TestMigrate_RefusesSpecRepository(t *testing.T) {
	_, err := Migrate("../examples/shop-zero-trust", DefaultOptions())
	if err == nil || !strings.Contains(err.Error(), "spec documents") {
		t.Errorf("want an error naming the spec documents, got %v", err)
	}
}
