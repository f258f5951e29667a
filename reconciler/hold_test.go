package reconciler_test

import (
	"context"
	"strings"
	"testing"

	"github.com/meshcd/meshcd/reconciler/apply"
)

func holdConfigMap(name, value string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + ", namespace: NS}\ndata: {mode: " + value + "}\n"
}

// A held object is skipped with its reason, stays in the inventory (so
// nothing prunes it), and is applied again once the spec renders it
// differently; one the spec drops is pruned as usual.
func TestReconcile_HeldObjectsAreSkippedUntilTheSpecChangesThem(t *testing.T) {
	e := newEnv(t, nil)
	e.spec(map[string]string{"a.yaml": holdConfigMap("a", "one"), "b.yaml": holdConfigMap("b", "one")})
	e.reconcile()
	desired, err := e.rec.Desired(context.Background(), e.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range desired {
		e.rec.Hold(d, "held by the test")
		if !e.rec.Held(d.Object) {
			t.Fatalf("%s is not held", d.Object.GetName())
		}
	}
	e.writes.Take()

	// a changes, b does not: a's hold ends, b's stays.
	e.spec(map[string]string{"a.yaml": holdConfigMap("a", "two"), "b.yaml": holdConfigMap("b", "one")})
	res := e.reconcile()
	if got := res.Applied.String(); !strings.Contains(got, "ConfigMap "+e.ns+"/b skipped: held by the test") || !strings.Contains(got, "ConfigMap "+e.ns+"/a configured") {
		t.Fatalf("change set:\n%s", got)
	}
	if res.Applied.Count(apply.Skipped) != 1 {
		t.Fatalf("one object is skipped: %s", res.Applied.Summary())
	}
	for _, w := range func() []string { _, s := e.writes.Take(); return s }() {
		if strings.HasSuffix(w, "/configmaps/b") {
			t.Fatalf("the held object was written: %s", w)
		}
	}
	a, _ := e.get("v1", "ConfigMap", e.ns, "a")
	if v := a.Object["data"].(map[string]any)["mode"]; v != "two" {
		t.Fatalf("a's new spec is applied: %v", v)
	}
	st, err := e.rec.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Owned != 2 {
		t.Fatalf("the held object stays in the inventory: %d owned", st.Owned)
	}

	// The spec drops b: its hold ends and it is pruned.
	e.spec(map[string]string{"a.yaml": holdConfigMap("a", "two")})
	res = e.reconcile()
	if res.Pruned.Count(apply.Pruned) != 1 || res.Applied.Count(apply.Skipped) != 0 {
		t.Fatalf("b is pruned once the spec drops it: applied %s, pruned %s", res.Applied.Summary(), res.Pruned.Summary())
	}
	for _, d := range apply.Objects(desired) {
		if e.rec.Held(d) {
			t.Fatalf("%s is still held", d.GetName())
		}
	}
}
