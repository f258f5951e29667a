package faults_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/inventory"
)

// env is one reconciler's world on the package's cluster: a namespace the
// spec's objects live in (ns, enrolled by the spec, so partially owned), a
// second namespace the spec enrolls only in some versions (ns2), and a
// bystander ConfigMap that is not meshcd's.
type env struct {
	t     *testing.T
	ns    string
	ns2   string
	dir   string
	admin client.Client
	opts  reconciler.Options
	// user, when set, is the user the processes impersonate.
	user string
}

func newEnv(t *testing.T, mutate func(*reconciler.Options)) *env {
	t.Helper()
	e := &env{t: t, ns: clustertest.Namespace(t, nil), ns2: clustertest.Namespace(t, nil), dir: t.TempDir(), admin: clustertest.Client(t)}
	e.opts = reconciler.DefaultOptions()
	e.opts.Name = e.ns
	e.opts.MaxPrune = 1
	e.opts.HealthTimeout = 30 * time.Second
	e.opts.HealthHold = time.Second
	e.opts.Apply.PollInterval = 100 * time.Millisecond
	if mutate != nil {
		mutate(&e.opts)
	}
	by := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "bystander", Namespace: e.ns}, Data: map[string]string{"owner": "someone else"}}
	if err := e.admin.Create(context.Background(), by); err != nil {
		t.Fatal(err)
	}
	return e
}

// process is a meshcd process: a new reconciler with no memory of earlier
// ones, whose requests pass through wrap (nil: straight).
func (e *env) process(wrap func(http.RoundTripper) http.RoundTripper) *reconciler.Reconciler {
	e.t.Helper()
	cfg := rest.CopyConfig(clustertest.Cluster(e.t).RESTConfig())
	cfg.WrapTransport = wrap
	cfg.Impersonate.UserName = e.user
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	return reconciler.New(c, e.opts)
}

// version is one version of the spec: ConfigMap cfg-i and Service svc-i
// for each i, ns enrolled with STRICT mTLS, ns2 enrolled when enroll2.
type version struct {
	items   []int
	enroll2 bool
}

var (
	versionA = version{items: []int{0, 1, 2, 3, 4, 5}}
	versionB = version{items: []int{3, 4, 5, 6, 7, 8}, enroll2: true}
)

func (e *env) write(v version) {
	e.t.Helper()
	e.files(map[string]string{"mesh.yaml": e.spec(v)})
}

// spec is the spec file of version v.
func (e *env) spec(v version) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: meshcd.dev/v1alpha1\nkind: MeshNamespace\nmetadata: {name: %s}\nspec: {mtls: STRICT}\n", e.ns)
	if v.enroll2 {
		fmt.Fprintf(&b, "---\napiVersion: meshcd.dev/v1alpha1\nkind: MeshNamespace\nmetadata: {name: %s}\nspec: {}\n", e.ns2)
	}
	for _, i := range v.items {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg-%d, namespace: %s}\ndata: {item: \"%d\"}\n", i, e.ns, i)
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Service\nmetadata: {name: svc-%d, namespace: %s}\nspec: {selector: {app: svc-%d}, ports: [{name: http, port: 80}]}\n", i, e.ns, i)
	}
	return b.String()
}

// files replaces the spec directory's files.
func (e *env) files(files map[string]string) {
	e.t.Helper()
	entries, _ := os.ReadDir(e.dir)
	for _, f := range entries {
		_ = os.RemoveAll(filepath.Join(e.dir, f.Name()))
	}
	for name, content := range files {
		p := filepath.Join(e.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
}

// converge reconciles with a fresh process until it succeeds, within a bound.
func (e *env) converge() {
	e.t.Helper()
	r := e.process(nil)
	var (
		res *reconciler.Result
		err error
	)
	for i := 0; i < 5; i++ {
		if res, err = r.Reconcile(context.Background(), e.dir); err == nil && res.Reason == reconciler.ReasonSucceeded {
			return
		}
		time.Sleep(time.Second)
	}
	e.t.Fatalf("the spec does not converge: %v (%+v)", err, res)
}

// objectKey names a live object the way the suite counts it.
type objectKey struct{ kind, namespace, name string }

func (k objectKey) String() string { return k.kind + " " + k.namespace + "/" + k.name }

// uids are the identities of the objects that must survive a fault: every
// object both versions keep, the namespaces and the bystander. A survivor
// with another UID afterwards was deleted and made again.
func (e *env) uids(keep []objectKey) map[objectKey]types.UID {
	e.t.Helper()
	out := map[objectKey]types.UID{}
	for _, k := range append(keep, objectKey{"ConfigMap", e.ns, "bystander"}, objectKey{"Namespace", "", e.ns}, objectKey{"Namespace", "", e.ns2}) {
		u, err := e.get(k)
		if err != nil {
			e.t.Fatalf("%s before the fault: %v", k, err)
		}
		out[k] = u.GetUID()
	}
	return out
}

func (e *env) get(k objectKey) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind(k.kind)
	return u, e.admin.Get(context.Background(), client.ObjectKey{Namespace: k.namespace, Name: k.name}, u)
}

// survivors are the objects of v that w keeps too.
func (e *env) survivors(v, w version) []objectKey {
	in := map[int]bool{}
	for _, i := range w.items {
		in[i] = true
	}
	var out []objectKey
	for _, i := range v.items {
		if in[i] {
			out = append(out, objectKey{"ConfigMap", e.ns, fmt.Sprintf("cfg-%d", i)}, objectKey{"Service", e.ns, fmt.Sprintf("svc-%d", i)})
		}
	}
	return out
}

// count checks the cluster against version v after a fault: lost objects
// of v, orphans (meshcd's label, not in v, not in the inventory), and
// unintended deletions (a survivor gone or made again). It returns what it
// found, with one line per finding for the log.
func (e *env) count(v version, before map[objectKey]types.UID) (lost, orphaned, unintended int, notes []string) {
	e.t.Helper()
	want := map[objectKey]bool{}
	for _, i := range v.items {
		want[objectKey{"ConfigMap", e.ns, fmt.Sprintf("cfg-%d", i)}] = true
		want[objectKey{"Service", e.ns, fmt.Sprintf("svc-%d", i)}] = true
	}
	for k := range want {
		if _, err := e.get(k); apierrors.IsNotFound(err) {
			lost++
			notes = append(notes, "lost: "+k.String())
		} else if err != nil {
			e.t.Fatalf("%s: %v", k, err)
		}
	}
	ns2, err := e.get(objectKey{"Namespace", "", e.ns2})
	if err == nil && v.enroll2 != (ns2.GetLabels()[ambient.LabelManagedBy] == ambient.ManagedByValue) {
		if v.enroll2 {
			lost++
			notes = append(notes, "lost: the enrollment of "+e.ns2)
		}
	}
	inv, err := inventory.NewStore(e.admin, e.opts.Namespace, reconciler.InventoryPrefix+e.opts.Name).Load(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	owned := map[objectKey]bool{}
	for _, en := range inv.Entries {
		o, err := en.Object()
		if err != nil {
			e.t.Fatal(err)
		}
		owned[objectKey{o.GetKind(), o.GetNamespace(), o.GetName()}] = true
	}
	for _, kind := range []string{"ConfigMap", "Service"} {
		l := &unstructured.UnstructuredList{}
		l.SetAPIVersion("v1")
		l.SetKind(kind + "List")
		if err := e.admin.List(context.Background(), l, client.InNamespace(e.ns), client.MatchingLabels{ambient.LabelManagedBy: ambient.ManagedByValue}); err != nil {
			e.t.Fatal(err)
		}
		for _, o := range l.Items {
			k := objectKey{kind, o.GetNamespace(), o.GetName()}
			if other := o.GetLabels()[ambient.LabelInstance]; other != "" && other != e.opts.Name {
				continue // another instance's, counted against its own inventory
			}
			if !want[k] && !owned[k] {
				orphaned++
				notes = append(notes, "orphan: "+k.String())
			}
		}
	}
	if !v.enroll2 && ns2.GetLabels()[ambient.LabelManagedBy] == ambient.ManagedByValue && !owned[objectKey{"Namespace", "", e.ns2}] {
		orphaned++
		notes = append(notes, "orphan: the enrollment of "+e.ns2)
	}
	for k, uid := range before {
		u, err := e.get(k)
		switch {
		case apierrors.IsNotFound(err):
			unintended++
			notes = append(notes, "deleted: "+k.String())
		case err != nil:
			e.t.Fatalf("%s: %v", k, err)
		case u.GetUID() != uid:
			unintended++
			notes = append(notes, "deleted and made again: "+k.String())
		}
	}
	sort.Strings(notes)
	return lost, orphaned, unintended, notes
}

// converged reports whether a fresh process finds nothing to change: no
// field differs and nothing is stale.
func (e *env) converged() (bool, string) {
	e.t.Helper()
	d, err := e.process(nil).Diff(context.Background(), e.dir)
	if err != nil {
		return false, err.Error()
	}
	if d.HasChanges() {
		return false, fmt.Sprintf("changed %d, stale %v", len(d.Changed), d.Stale)
	}
	return true, ""
}
