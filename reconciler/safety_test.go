package reconciler_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/apply"
	"github.com/meshcd/meshcd/reconciler/controller"
	"github.com/meshcd/meshcd/reconciler/inventory"
)

// configMaps is a spec of plain ConfigMaps named prefix0..prefix<n-1>.
func configMaps(prefix string, n int) map[string]string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s%d, namespace: NS}\ndata: {k: v}\n", prefix, i)
	}
	return map[string]string{"cms.yaml": b.String()}
}

// uids returns the UIDs of the ConfigMaps prefix0..prefix<n-1>; a missing
// one fails the test.
func (e *env) uids(prefix string, n int) map[string]types.UID {
	e.t.Helper()
	out := map[string]types.UID{}
	for i := range n {
		name := fmt.Sprintf("%s%d", prefix, i)
		cm := &corev1.ConfigMap{}
		if err := e.client.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: name}, cm); err != nil {
			e.t.Fatalf("ConfigMap %s/%s: %v", e.ns, name, err)
		}
		out[name] = cm.UID
	}
	return out
}

func TestPruneGuard_HeldOnEveryReconcileUntilExactlyThatSetIsAllowed(t *testing.T) {
	e := newEnv(t, nil) // MaxPrune 0.5
	e.spec(configMaps("a", 10))
	e.reconcile()
	before := e.uids("a", 10)

	// Rename all ten: the first reconcile holds 10 of 10, and so must
	// every later one, although the inventory now holds old ∪ new.
	e.spec(configMaps("b", 10))
	var digest string
	for i := range 3 {
		res := e.reconcile()
		if res.Reason != reconciler.ReasonPruneHeld || res.Held == nil || res.Pruned.Count(apply.Pruned) != 0 {
			t.Fatalf("reconcile %d: a held prune must stay held and never succeed: reason %s, held %+v, pruned %v", i+1, res.Reason, res.Held, res.Pruned)
		}
		if digest == "" {
			digest = res.Held.Digest
		}
		if res.Held.Digest != digest || res.Held.Count != 10 || len(res.HeldObjects) != 10 {
			t.Fatalf("reconcile %d: held %+v (%d objects), want the same 10 objects as %s", i+1, res.Held, len(res.HeldObjects), digest)
		}
		if !strings.Contains(res.PruneHeld, "meshcd allow-prune "+digest) {
			t.Fatalf("the held prune must say how to allow it: %q", res.PruneHeld)
		}
	}
	if got := e.uids("a", 10); !equalUIDs(got, before) {
		t.Fatal("a held prune deleted or replaced an object")
	}
	st, err := e.rec.Status(context.Background())
	if err != nil || st.PruneHeld == nil || st.PruneHeld.Digest != digest {
		t.Fatalf("status must show the held prune %s: %+v, %v", digest, st, err)
	}

	// Another set's digest allows nothing, and neither does a one-run
	// allowance of another digest.
	if _, err := e.rec.AllowPrune(context.Background(), "0000000000000000"); err == nil || !strings.Contains(err.Error(), digest) {
		t.Fatalf("allowing another set must be refused and name the held one: %v", err)
	}
	other := newEnvNamed(t, e, func(o *reconciler.Options) { o.AllowPrune = "0000000000000000" })
	if res := other.reconcile(); res.Reason != reconciler.ReasonPruneHeld {
		t.Fatalf("a one-run allowance of another digest pruned: %s", res.Reason)
	}

	// Allowing exactly the held set prunes exactly it, once.
	if _, err := e.rec.AllowPrune(context.Background(), digest); err != nil {
		t.Fatal(err)
	}
	res := e.reconcile()
	if res.Reason != reconciler.ReasonSucceeded || res.Pruned.Count(apply.Pruned) != 10 {
		t.Fatalf("the allowed prune: reason %s, pruned %v", res.Reason, res.Pruned)
	}
	for _, c := range res.Pruned.Changes {
		if !strings.Contains(c.Object, "/a") {
			t.Fatalf("pruned %s, outside the held set", c.Object)
		}
	}
	e.uids("b", 10)
	if st, _ := e.rec.Status(context.Background()); st.PruneHeld != nil || st.PruneAllowed != "" {
		t.Fatalf("a carried-out prune leaves nothing held or allowed: %+v", st)
	}
}

func TestPruneGuard_OneRunAllowanceOfTheHeldDigestPrunes(t *testing.T) {
	e := newEnv(t, nil)
	e.spec(configMaps("a", 4))
	e.reconcile()
	e.spec(configMaps("b", 4))
	held := e.reconcile().Held
	if held == nil {
		t.Fatal("renaming all four must be held")
	}
	once := newEnvNamed(t, e, func(o *reconciler.Options) { o.AllowPrune = held.Digest })
	if res := once.reconcile(); res.Reason != reconciler.ReasonSucceeded || res.Pruned.Count(apply.Pruned) != 4 {
		t.Fatalf("apply --allow-prune %s: reason %s, pruned %v", held.Digest, res.Reason, res.Pruned)
	}
}

// newEnvNamed is another reconciler of e's instance, on e's namespace and
// spec directory.
func newEnvNamed(t *testing.T, e *env, mutate func(*reconciler.Options)) *env {
	t.Helper()
	o := &env{t: t, ns: e.ns, dir: e.dir, client: e.client, writes: e.writes}
	o.rec = reconciler.New(e.client, testOptions(e.ns, mutate))
	return o
}

func equalUIDs(a, b map[string]types.UID) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestOwnership_AnObjectMovedToAnotherInstanceIsHandedOverNotDeleted(t *testing.T) {
	a := newEnv(t, func(o *reconciler.Options) { o.MaxPrune = 1 })
	bName := a.ns + "-b"
	b := newEnvNamed(t, a, func(o *reconciler.Options) { o.Name = bName; o.MaxPrune = 1 })
	b.dir = t.TempDir()

	withKeep := configMaps("m", 3)
	withKeep["keep.yaml"] = configMaps("keep", 1)["cms.yaml"]
	a.spec(withKeep)
	a.reconcile()
	uids := a.uids("m", 3)

	// B's repository now has them too: B is refused, naming A, and
	// writes nothing to them.
	b.spec(configMaps("m", 3))
	res, err := b.rec.Reconcile(context.Background(), b.dir)
	var owned *apply.OwnedError
	if !errors.As(err, &owned) || owned.Instance != a.ns {
		t.Fatalf("B must be refused with an error naming instance %s: %s, %v", a.ns, res.Reason, err)
	}
	assertOwner(t, a, "m", 3, a.ns)

	// A's repository drops them: A hands them over instead of deleting.
	a.spec(map[string]string{"keep.yaml": withKeep["keep.yaml"]})
	res = a.reconcile()
	if n := res.Pruned.Count(apply.Pruned); n != 0 {
		t.Fatalf("A deleted %d objects B claims: %v", n, res.Pruned)
	}
	// B takes them over.
	res = b.reconcile()
	if res.Reason != reconciler.ReasonSucceeded {
		t.Fatalf("B after the hand-over: %s", res.Reason)
	}
	assertOwner(t, a, "m", 3, bName)
	if got := a.uids("m", 3); !equalUIDs(got, uids) {
		t.Fatal("an object moved between instances was deleted and created again")
	}
	// A's next reconcile does not touch them.
	if res := a.reconcile(); res.Pruned != nil && len(res.Pruned.Changes) > 0 {
		t.Fatalf("A pruned again: %v", res.Pruned)
	}
	assertOwner(t, a, "m", 3, bName)
}

func assertOwner(t *testing.T, e *env, prefix string, n int, instance string) {
	t.Helper()
	for i := range n {
		cm := &corev1.ConfigMap{}
		if err := e.client.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: fmt.Sprintf("%s%d", prefix, i)}, cm); err != nil {
			t.Fatal(err)
		}
		if got := cm.Labels[ambient.LabelInstance]; got != instance {
			t.Fatalf("ConfigMap %s is owned by instance %q, want %q", cm.Name, got, instance)
		}
	}
}

func TestAdmit_RefusesMeshcdsOwnNamespace(t *testing.T) {
	e := newEnv(t, nil)
	e.spec(configMaps("a", 2))
	e.reconcile()
	forged := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: meshcd-inventory-NS, namespace: meshcd-system}\ndata: {inventory: '{\"entries\": []}'}\n"
	for name, doc := range map[string]string{
		"a forged inventory":     forged,
		"meshcd's own namespace": "apiVersion: v1\nkind: Namespace\nmetadata: {name: meshcd-system, labels: {istio.io/dataplane-mode: ambient}}\n",
	} {
		files := configMaps("a", 2)
		files["forged.yaml"] = doc
		e.spec(files)
		e.writes.Take()
		res, err := e.rec.Reconcile(context.Background(), e.dir)
		if err == nil || res.Reason != reconciler.ReasonValidationFailed || !strings.Contains(err.Error(), "meshcd's own state") || !strings.Contains(err.Error(), "forged.yaml") {
			t.Fatalf("%s: want a refusal naming the file and meshcd's state: %s, %v", name, res.Reason, err)
		}
		if n, seen := e.writes.Take(); n != 0 {
			t.Fatalf("%s: a refused repository wrote %d times: %v", name, n, seen)
		}
	}
	inv, err := inventory.NewStore(e.client, "meshcd-system", reconciler.InventoryPrefix+e.ns).Load(context.Background())
	if err != nil || inv.Len() != 2 {
		t.Fatalf("the inventory must be untouched: %+v, %v", inv, err)
	}
}

func TestState_TwoProcessesOfOneInstanceLoseNoInventoryEntry(t *testing.T) {
	e := newEnv(t, func(o *reconciler.Options) { o.MaxPrune = 1 })
	// Two processes of one instance, on two checkouts of different commits.
	other := newEnvNamed(t, e, func(o *reconciler.Options) { o.MaxPrune = 1 })
	other.dir = t.TempDir()
	e.spec(configMaps("x", 6))
	other.spec(configMaps("y", 6))
	for round := range 6 {
		var wg sync.WaitGroup
		for _, p := range []*env{e, other} {
			wg.Go(func() { _, _ = p.rec.Reconcile(context.Background(), p.dir) })
		}
		wg.Wait()
		// Every object carrying this instance's label is in the inventory.
		inv, err := inventory.NewStore(e.client, "meshcd-system", reconciler.InventoryPrefix+e.ns).Load(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		listed := map[string]bool{}
		for _, en := range inv.Entries {
			listed[en.String()] = true
		}
		live := &corev1.ConfigMapList{}
		if err := e.client.List(context.Background(), live, client.InNamespace(e.ns), client.MatchingLabels{ambient.LabelInstance: e.ns}); err != nil {
			t.Fatal(err)
		}
		for _, cm := range live.Items {
			if id := "ConfigMap " + e.ns + "/" + cm.Name; !listed[id] {
				t.Fatalf("round %d: %s exists with meshcd's label but the inventory lost it (%d entries)", round, id, inv.Len())
			}
		}
	}
}

func TestStatus_SuspendDuringAReconcileIsNotErased(t *testing.T) {
	c := clustertest.Client(t)
	ns := clustertest.Namespace(t, nil)
	store := &controller.StatusStore{Client: c, Namespace: ns, Name: "meshcd-status-test"}
	st, _, err := store.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// meshcd suspend, from another process, while the reconcile runs.
	if err := (&controller.StatusStore{Client: c, Namespace: ns, Name: "meshcd-status-test"}).SetSuspend(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	st.LastAppliedRevision = "main@sha1:1"
	if err := store.Save(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	got, _, err := store.Load(context.Background())
	if err != nil || !got.Suspend || got.LastAppliedRevision != "main@sha1:1" {
		t.Fatalf("want the suspend and the reconcile's revision both kept: %+v, %v", got, err)
	}
}

// An instance of 1,000 namespaces × 5 services owns 38,000 objects; their
// inventory as JSON passes the 1 MiB the API server allows a ConfigMap.
func TestInventory_FortyThousandEntriesFitOneConfigMapAndASmallOneIsReadableAgain(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	namespace, name := testOptions(e.ns, nil).Namespace, reconciler.InventoryPrefix+e.ns
	t.Cleanup(func() {
		_ = e.client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}})
	})
	big := &inventory.Inventory{}
	for i := range 40000 {
		big.Entries = append(big.Entries, inventory.Entry{ID: fmt.Sprintf("%s-%04d_payments-%d-v2_networking.istio.io_DestinationRule", e.ns, i/8, i%8), Version: "v1"})
	}
	set := func(inv *inventory.Inventory) {
		t.Helper()
		if _, err := inventory.NewStore(e.client, namespace, name).Update(ctx, func(*inventory.Inventory) (*inventory.Inventory, error) { return inv, nil }); err != nil {
			t.Fatalf("storing %d entries: %v", inv.Len(), err)
		}
	}
	set(big)
	got, err := inventory.NewStore(e.client, namespace, name).Load(ctx)
	if err != nil || got.Len() != 40000 {
		t.Fatalf("read back %v entries, %v", got, err)
	}
	claims, err := inventory.Claims(ctx, e.client, namespace, reconciler.InventoryPrefix, "another")
	if err != nil || !slices.Equal(claims[big.Entries[39999].ID], []string{e.ns}) {
		t.Fatalf("another instance sees the claims %v, %v", claims[big.Entries[39999].ID], err)
	}
	cm := &corev1.ConfigMap{}
	if err := e.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, cm); err != nil {
		t.Fatal(err)
	}
	size := 0
	for _, v := range cm.Data {
		size += len(v)
	}
	t.Logf("40,000 entries take %d KiB of the ConfigMap", size>>10)

	set(&inventory.Inventory{Entries: big.Entries[:2]})
	if err := e.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, cm); err != nil {
		t.Fatal(err)
	}
	if _, gz := cm.Data["inventory.gz"]; gz || !strings.Contains(cm.Data["inventory"], big.Entries[1].ID) {
		t.Fatalf("a two-entry inventory is stored as %v, want plain JSON under the key inventory", cm.Data)
	}
}
