package faults_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/apply"
	"github.com/meshcd/meshcd/reconciler/controller"
	"github.com/meshcd/meshcd/reconciler/source"
)

// versionRenamed renames every item of versionA: its prune is all of what
// versionA owned but the Namespace's enrollment and policy.
var versionRenamed = version{items: []int{20, 21, 22, 23, 24, 25}}

// TestGuard_ARenameStaysHeldForEveryApplyProcess renames most of a spec and
// runs three fresh processes (three `meshcd apply` runs): none prunes, each
// says the prune is held; allowing exactly its digest prunes exactly it.
func TestGuard_ARenameStaysHeldForEveryApplyProcess(t *testing.T) {
	e := newEnv(t, func(o *reconciler.Options) { o.MaxPrune = 0.5 })
	e.write(versionA)
	e.converge()
	before := e.uids(e.survivors(versionA, versionA))

	e.write(versionRenamed)
	ok := true
	var digest string
	for i := range 3 {
		res, err := e.process(nil).Reconcile(context.Background(), e.dir)
		if err != nil || res.Reason != reconciler.ReasonPruneHeld || res.Held == nil || res.Pruned.Count(apply.Pruned) > 0 {
			ok = false
			t.Errorf("apply %d: %v, reason %s, held %+v, pruned %v", i+1, err, res.Reason, res.Held, res.Pruned)
			continue
		}
		if digest != "" && res.Held.Digest != digest {
			ok = false
			t.Errorf("apply %d held another set: %s, not %s", i+1, res.Held.Digest, digest)
		}
		digest = res.Held.Digest
	}
	// Held: versionA's objects all survive, the renamed ones exist, and
	// everything with meshcd's label is in the inventory.
	held := version{items: append(append([]int{}, versionA.items...), versionRenamed.items...)}
	lost, orphaned, unintended, notes := e.count(held, before)
	for _, n := range notes {
		t.Log(n)
	}
	record(t, outcome{Kind: "guard: a rename of most objects, three apply processes", Converged: ok, Lost: lost, Orphaned: orphaned, Unintended: unintended})

	// apply --allow-prune DIGEST prunes exactly the held set.
	e.opts.AllowPrune = digest
	res, err := e.process(nil).Reconcile(context.Background(), e.dir)
	if err != nil || res.Reason != reconciler.ReasonSucceeded || res.Pruned.Count(apply.Pruned) != 2*len(versionA.items) {
		t.Fatalf("the allowed prune: %v, reason %s, pruned %v", err, res.Reason, res.Pruned)
	}
	conv, why := e.converged()
	lost, orphaned, unintended, _ = e.count(versionRenamed, e.uids(nil))
	record(t, outcome{Kind: "guard: the allowed prune of exactly the held set", Converged: conv, Lost: lost, Orphaned: orphaned, Unintended: unintended})
	if !conv {
		t.Fatal(why)
	}
}

// TestGuard_ARenameStaysHeldForTheController runs the same rename through
// the controller: three reconciles hold it with Ready=False, reason
// PruneHeld, a Warning event and the held count in /metrics.
func TestGuard_ARenameStaysHeldForTheController(t *testing.T) {
	ns := clustertest.Namespace(t, nil)
	repo := newCtlRepo(t, ns)
	files := map[string]string{}
	for i := range 6 {
		files[fmt.Sprintf("a%d.yaml", i)] = ctlConfigMap(fmt.Sprintf("a%d", i), "k", "v")
	}
	repo.commit(files)
	name := ns
	c := newCtl(t, name, source.Options{URL: repo.url()}, nil)
	if err := c.Reconcile(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	renamed := map[string]string{}
	for i := range 6 {
		renamed[fmt.Sprintf("a%d.yaml", i)] = ""
		renamed[fmt.Sprintf("b%d.yaml", i)] = ctlConfigMap(fmt.Sprintf("b%d", i), "k", "v")
	}
	repo.commit(renamed)
	ok := true
	for i := range 3 {
		if err := c.Reconcile(context.Background(), "test"); err != nil {
			t.Fatalf("reconcile %d: %v", i+1, err)
		}
		s, _, err := c.status.Load(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ready := readyCondition(s)
		if ready == nil || ready.Status != "False" || ready.Reason != string(reconciler.ReasonPruneHeld) || !strings.Contains(ready.Message, "meshcd allow-prune") {
			ok = false
			t.Errorf("reconcile %d: Ready must be False with reason PruneHeld and say how to allow it: %+v", i+1, ready)
		}
	}
	if v := c.metric("meshcd_prune_held_objects"); v != 6 {
		ok = false
		t.Errorf("meshcd_prune_held_objects = %v, want 6", v)
	}
	warned := false
	for _, ev := range c.events() {
		warned = warned || (ev.Type == "Warning" && ev.Reason == string(reconciler.ReasonPruneHeld))
	}
	if !warned {
		ok = false
		t.Error("no Warning event PruneHeld")
	}
	deleted := 0
	for i := range 6 {
		if _, err := (&env{t: t, admin: c.admin}).get(objectKey{"ConfigMap", ns, fmt.Sprintf("a%d", i)}); err != nil {
			deleted++
		}
	}
	record(t, outcome{Kind: "guard: a rename of most objects, three controller reconciles", Converged: ok, Unintended: deleted})

	// The operator allows exactly the held set; the next reconcile prunes it.
	r := reconciler.New(c.admin, func() reconciler.Options { o := reconciler.DefaultOptions(); o.Name = name; return o }())
	st, err := r.Status(context.Background())
	if err != nil || st.PruneHeld == nil {
		t.Fatalf("status must show the held prune: %+v, %v", st, err)
	}
	if _, err := r.AllowPrune(context.Background(), st.PruneHeld.Digest); err != nil {
		t.Fatal(err)
	}
	if err := c.Reconcile(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	s, _, _ := c.status.Load(context.Background())
	if ready := readyCondition(s); ready == nil || ready.Status != "True" {
		t.Fatalf("after the allowed prune Ready must be True: %+v", ready)
	}
	for i := range 6 {
		if _, err := (&env{t: t, admin: c.admin}).get(objectKey{"ConfigMap", ns, fmt.Sprintf("a%d", i)}); err == nil {
			t.Fatalf("a%d survived the allowed prune", i)
		}
	}
}

func readyCondition(s *controller.Status) *struct{ Status, Reason, Message string } {
	for _, c := range s.Conditions {
		if c.Type == "Ready" {
			return &struct{ Status, Reason, Message string }{string(c.Status), c.Reason, c.Message}
		}
	}
	return nil
}

// TestOwnership_MovingObjectsBetweenInstances moves objects from one
// instance's spec to another's: the second is refused while the first
// lists them, the first hands them over without deleting, and the second
// owns them afterwards.
func TestOwnership_MovingObjectsBetweenInstances(t *testing.T) {
	a := newEnv(t, nil)
	a.write(versionA)
	a.converge()
	before := a.uids(a.survivors(versionA, versionA))

	b := &env{t: t, ns: a.ns, ns2: a.ns2, dir: t.TempDir(), admin: a.admin, opts: a.opts}
	b.opts.Name = a.ns + "-b"
	b.dir = t.TempDir()
	// B's spec: the items, without the enrollment A keeps.
	var spec strings.Builder
	for _, i := range versionA.items {
		fmt.Fprintf(&spec, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg-%d, namespace: %s}\ndata: {item: \"%d\"}\n", i, a.ns, i)
		fmt.Fprintf(&spec, "---\napiVersion: v1\nkind: Service\nmetadata: {name: svc-%d, namespace: %s}\nspec: {selector: {app: svc-%d}, ports: [{name: http, port: 80}]}\n", i, a.ns, i)
	}
	b.files(map[string]string{"items.yaml": spec.String()})
	_, err := b.process(nil).Reconcile(context.Background(), b.dir)
	var owned *apply.OwnedError
	refused := errors.As(err, &owned) && owned.Instance == a.ns
	if !refused {
		t.Errorf("B must be refused naming instance %s: %v", a.ns, err)
	}
	// A drops them (keeps its enrollment), then B reconciles again.
	a.write(version{})
	resA, errA := a.process(nil).Reconcile(context.Background(), a.dir)
	resB, errB := b.process(nil).Reconcile(context.Background(), b.dir)
	ok := refused && errA == nil && errB == nil && resA.Pruned.Count(apply.Pruned) == 0 && resB.Reason == reconciler.ReasonSucceeded
	if !ok {
		t.Errorf("hand-over: A %v (%v), B %v (%v)", errA, resA.Pruned, errB, resB.Reason)
	}
	_, _, unintended, notes := a.count(version{}, before)
	for _, n := range notes {
		t.Log(n)
	}
	lost, orphaned := 0, 0
	for _, k := range a.survivors(versionA, versionA) {
		u, err := a.get(k)
		switch {
		case err != nil:
			lost++
		case u.GetLabels()["meshcd.dev/instance"] != b.opts.Name:
			orphaned++
			t.Logf("%s is owned by %q, not B", k, u.GetLabels()["meshcd.dev/instance"])
		}
	}
	record(t, outcome{Kind: "ownership: objects moved from one instance's spec to another's", Converged: ok, Lost: lost, Orphaned: orphaned, Unintended: unintended})
}

// TestState_ARepositoryCannotWriteMeshcdsState plants a ConfigMap named
// like the instance's inventory, and the state namespace itself, in the
// repository: both are refused before anything is written or pruned.
func TestState_ARepositoryCannotWriteMeshcdsState(t *testing.T) {
	e := newEnv(t, nil)
	e.write(versionA)
	e.converge()
	before := e.uids(e.survivors(versionA, versionA))
	for what, doc := range map[string]string{
		"a forged inventory":     fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: meshcd-inventory-%s, namespace: %s}\ndata: {inventory: '{\"entries\": []}'}\n", e.opts.Name, e.opts.Namespace),
		"meshcd's own namespace": fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n", e.opts.Namespace),
	} {
		e.files(map[string]string{"mesh.yaml": e.spec(versionA), "forged.yaml": doc})
		_, err := e.process(nil).Reconcile(context.Background(), e.dir)
		refused := err != nil && strings.Contains(err.Error(), "meshcd's own state")
		lost, orphaned, unintended, _ := e.count(versionA, before)
		record(t, outcome{Kind: "hostile repository: " + what, Converged: refused, Lost: lost, Orphaned: orphaned, Unintended: unintended})
	}
}

// TestState_TwoProcessesOfOneInstanceInterleave runs `meshcd apply` and
// `meshcd run` of one instance at once, on two commits, many times: no
// inventory entry is lost (nothing with meshcd's label outside the
// inventory), whatever the interleaving.
func TestState_TwoProcessesOfOneInstanceInterleave(t *testing.T) {
	rounds := 4
	if long() {
		rounds = 20
	}
	e := newEnv(t, nil)
	other := &env{t: t, ns: e.ns, ns2: e.ns2, dir: t.TempDir(), admin: e.admin, opts: e.opts}
	e.write(versionA)
	other.write(versionB)
	for round := range rounds {
		var wg sync.WaitGroup
		for _, p := range []*env{e, other} {
			wg.Go(func() { _, _ = p.process(nil).Reconcile(context.Background(), p.dir) })
		}
		wg.Wait()
		// Whichever won, the last writer's version converges on the next
		// reconcile and nothing is orphaned before it.
		_, orphaned, _, notes := e.count(version{}, nil)
		for _, n := range notes {
			if strings.HasPrefix(n, "orphan") {
				t.Log(n)
			}
		}
		e.converge()
		lost, orphaned2, _, _ := e.count(versionA, nil)
		record(t, outcome{Kind: fmt.Sprintf("concurrency: apply and run of one instance at once (round %d)", round+1), Converged: true, Lost: lost, Orphaned: orphaned + orphaned2})
	}
}
