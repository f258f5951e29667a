package faults_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler"
)

// hostileCase is one hostile repository: on top of versionB's spec (which
// drops half of versionA, so a reconcile that got through would prune),
// setup writes the hostile part. The reconcile must fail with an error
// holding every string of want, before it writes anything.
type hostileCase struct {
	name  string
	setup func(t *testing.T, e *env) (want []string)
	// heap, when set, is the most the test process's heap may grow by
	// during the reconcile.
	heap uint64
}

// TestHostile_RepositoriesAreRefusedWithTheirFileAndNothingIsWritten is
// item 2 of the fault suite: each hostile repository is refused with an
// error naming the file or object, nothing is applied or pruned, and a
// large file or an alias bomb is refused in bounded memory.
func TestHostile_RepositoriesAreRefusedWithTheirFileAndNothingIsWritten(t *testing.T) {
	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			e := newEnv(t, nil)
			e.write(versionA)
			e.converge()
			uids := e.uids(e.survivors(versionA, versionA))

			e.write(versionB)
			want := c.setup(t, e)
			confine(t, e)
			w := &clustertest.Writes{}
			r := e.process(w.Wrap)
			var (
				res *reconciler.Result
				err error
			)
			grew, allocated := heapDuring(func() { res, err = r.Reconcile(context.Background(), e.dir) })
			t.Logf("heap grew by at most %.1f MiB (%.1f MiB allocated) during the reconcile", mib(grew), mib(allocated))

			named := err != nil
			if err == nil {
				t.Errorf("the hostile repository was reconciled: %s", res.Reason)
			} else {
				t.Logf("refused (%s): %.700s", res.Reason, err)
				for _, s := range append(want, "nothing applied or pruned") {
					if !strings.Contains(err.Error(), s) {
						named = false
						t.Errorf("the error lacks %q:\n%v", s, err)
					}
				}
			}
			if c.heap > 0 && grew > c.heap {
				named = false
				t.Errorf("the refusal grew the heap by %.1f MiB, more than %.0f MiB", mib(grew), mib(c.heap))
			}
			_, sent := w.Take()
			if len(sent) > 0 {
				t.Errorf("a refused repository sent %d writes: %v", len(sent), sent)
			}
			lost, orphaned, unintended, notes := e.count(versionA, uids)
			for _, n := range notes {
				t.Log(n)
			}
			record(t, outcome{Kind: "hostile: " + c.name, Converged: named && len(sent) == 0 && lost+orphaned+unintended == 0, Lost: lost, Orphaned: orphaned, Unintended: unintended})
			t.Logf("took %s", time.Since(start).Round(time.Millisecond))
		})
	}
	t.Run("impersonation", hostileImpersonation)
}

func hostileCases() []hostileCase {
	return []hostileCase{
		{name: "kustomize resource with ../", setup: func(t *testing.T, e *env) []string {
			target := outsideFile(t, e)
			up, err := filepath.Rel(e.dir, target)
			if err != nil || !strings.HasPrefix(up, "../") {
				t.Fatalf("want a path climbing out of %s, got %q (%v)", e.dir, up, err)
			}
			add(t, e, "kustomization.yaml", "resources:\n- mesh.yaml\n- "+up+"\n")
			return []string{"accumulating resources from '" + up + "'", target + " is outside the repository"}
		}},
		{name: "kustomize resource with an absolute path", setup: func(t *testing.T, e *env) []string {
			target := outsideFile(t, e)
			add(t, e, "kustomization.yaml", "resources:\n- mesh.yaml\n- "+target+"\n")
			return []string{"accumulating resources from '" + target + "'", target + " is outside the repository"}
		}},
		{name: "symlink out of the repository", setup: func(t *testing.T, e *env) []string {
			target := outsideFile(t, e)
			symlink(t, target, filepath.Join(e.dir, "link.yaml"))
			return []string{"link.yaml: symlink leads out of the spec directory (to " + target + ")"}
		}},
		{name: "symlink out of the repository (kustomize)", setup: func(t *testing.T, e *env) []string {
			symlink(t, outsideFile(t, e), filepath.Join(e.dir, "link.yaml"))
			add(t, e, "kustomization.yaml", "resources:\n- mesh.yaml\n- link.yaml\n")
			return []string{filepath.Join(e.dir, "link.yaml") + " is outside the repository"}
		}},
		{name: "remote base", setup: func(t *testing.T, e *env) []string {
			add(t, e, "kustomization.yaml", "resources:\n- mesh.yaml\n- https://github.com/kubernetes-sigs/kustomize//examples/helloworld?ref=v5.4.0\n")
			return []string{`kustomization.yaml: resources entry "https://github.com/kubernetes-sigs/kustomize//examples/helloworld?ref=v5.4.0" is remote`, "vendor it in"}
		}},
		// kustomize fetches a patch or a generator's file given as an
		// http(s) URL: a remote base by another name.
		{name: "remote patch", setup: func(t *testing.T, e *env) []string {
			add(t, e, "kustomization.yaml", "resources:\n- mesh.yaml\npatches:\n- path: https://raw.githubusercontent.com/example/mesh/main/patch.yaml\n")
			return []string{`kustomization.yaml: patches.path entry "https://raw.githubusercontent.com/example/mesh/main/patch.yaml" is remote`}
		}},
		{name: "remote generator file", setup: func(t *testing.T, e *env) []string {
			add(t, e, "kustomization.yaml", fmt.Sprintf("resources:\n- mesh.yaml\nconfigMapGenerator:\n- name: loot\n  namespace: %s\n  files: [x=https://example.com/x.yaml]\n", e.ns))
			return []string{`kustomization.yaml: configMapGenerator.files entry "x=https://example.com/x.yaml" is remote`}
		}},
		// The loader expands at most 1,048,576 YAML nodes of a file
		// before it refuses it: that budget, not the bomb, bounds the heap.
		{name: "alias bomb", heap: 128 << 20, setup: func(t *testing.T, e *env) []string {
			add(t, e, "bomb.yaml", aliasBomb(e.ns))
			return []string{"bomb.yaml:", "ConfigMap " + e.ns + "/lol: data.", "more than 1048576 YAML nodes (an alias bomb?); meshcd refuses it"}
		}},
		{name: "alias bomb (kustomize)", heap: 64 << 20, setup: func(t *testing.T, e *env) []string {
			add(t, e, "bomb.yaml", aliasBomb(e.ns))
			add(t, e, "kustomization.yaml", "resources:\n- mesh.yaml\n- bomb.yaml\n")
			return []string{filepath.Join(e.dir, "bomb.yaml") + ": file expands to more than 1048576 YAML nodes through aliases (an alias bomb?)"}
		}},
		{name: "100 MiB file", heap: 64 << 20, setup: func(t *testing.T, e *env) []string {
			n := bigFile(t, e, "big.yaml")
			return []string{fmt.Sprintf("big.yaml: file is %d bytes, more than the 8388608 meshcd reads; split it", n)}
		}},
		{name: "100 MiB file (kustomize)", heap: 64 << 20, setup: func(t *testing.T, e *env) []string {
			n := bigFile(t, e, "big.yaml")
			add(t, e, "kustomization.yaml", "resources:\n- mesh.yaml\n- big.yaml\n")
			return []string{fmt.Sprintf("%s: file is %d bytes, more than the 8388608 meshcd reads; split it", filepath.Join(e.dir, "big.yaml"), n)}
		}},
		{name: "ClusterRoleBinding to cluster-admin", setup: func(t *testing.T, e *env) []string {
			add(t, e, "hostile.yaml", fmt.Sprintf("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: %[1]s-admin}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: ServiceAccount, name: default, namespace: %[1]s}]\n", e.ns))
			return []string{"hostile.yaml:1:1: ClusterRoleBinding.rbac.authorization.k8s.io " + e.ns + "-admin: refused because it grants permissions"}
		}},
		{name: "Secret", setup: func(t *testing.T, e *env) []string {
			add(t, e, "hostile.yaml", fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: token, namespace: %s}\nstringData: {token: not-for-git}\n", e.ns))
			return []string{"hostile.yaml:1:1: Secret " + e.ns + "/token: refused because it holds credentials"}
		}},
		{name: "ValidatingWebhookConfiguration", setup: func(t *testing.T, e *env) []string {
			add(t, e, "hostile.yaml", fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: %[1]s-hook}
webhooks:
  - name: deny.%[1]s.example.com
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Fail
    clientConfig: {url: "https://hook.example.com/validate"}
    rules: [{apiGroups: ["*"], apiVersions: ["*"], operations: ["*"], resources: ["*"]}]
`, e.ns))
			return []string{"hostile.yaml:1:1: ValidatingWebhookConfiguration.admissionregistration.k8s.io " + e.ns + "-hook: refused because it intercepts every write to the cluster"}
		}},
		{name: "CustomResourceDefinition", setup: func(t *testing.T, e *env) []string {
			add(t, e, "hostile.yaml", `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.hostile.example.com}
spec:
  group: hostile.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
`)
			return []string{"hostile.yaml:1:1: CustomResourceDefinition.apiextensions.k8s.io widgets.hostile.example.com: refused because it changes the cluster's API"}
		}},
		{name: "cluster-scoped PriorityClass", setup: func(t *testing.T, e *env) []string {
			add(t, e, "hostile.yaml", fmt.Sprintf("apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: %s-urgent}\nvalue: 1000000000\nglobalDefault: true\n", e.ns))
			return []string{"hostile.yaml:1:1: PriorityClass.scheduling.k8s.io " + e.ns + "-urgent: refused because it is cluster-scoped"}
		}},
	}
}

// hostileImpersonation reconciles as a service account that may write only
// in ns (and meshcd's own state) a spec that also writes into ns2, which
// meshcd's admission allows: the API server refuses it, and the error names
// the object.
func hostileImpersonation(t *testing.T) {
	start := time.Now()
	e := newEnv(t, nil)
	e.write(versionA)
	e.converge()
	uids := e.uids(e.survivors(versionA, versionA))
	user := grantOnlyNamespace(t, e)

	// versionA less half its items, so an apply that got through would
	// prune, and a ConfigMap in ns2, outside what the account may write.
	e.write(version{items: []int{3, 4, 5}})
	add(t, e, "hostile.yaml", fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: intruder, namespace: %s}\ndata: {a: b}\n", e.ns2))

	// The apply sends writes the API server refuses (403), so here only
	// the writes it answered with 2xx count. meshcd records its intent in
	// its inventory (its own state, in meshcd-system) before it applies,
	// by design: that one write is expected and every other 2xx is not.
	var (
		mu       sync.Mutex
		done     []string
		refused  int
		stateURL = fmt.Sprintf("/api/v1/namespaces/%s/configmaps/meshcd-inventory-%s", e.opts.Namespace, e.opts.Name)
	)
	w := &clustertest.Writes{After: func(_ int, req *http.Request, resp *http.Response) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			done = append(done, req.Method+" "+req.URL.Path)
		case resp.StatusCode == http.StatusForbidden:
			refused++
		}
	}}
	cfg := rest.CopyConfig(clustertest.Cluster(t).RESTConfig())
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	cfg.WrapTransport = w.Wrap
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := reconciler.New(c, e.opts).Reconcile(context.Background(), e.dir)

	named := err != nil
	if err == nil {
		t.Errorf("the reconcile as %s wrote into %s: %s", user, e.ns2, res.Reason)
	} else {
		t.Logf("refused (%s): %.700s", res.Reason, err)
		for _, s := range []string{"apply failed, nothing pruned", "ConfigMap " + e.ns2 + "/intruder apply failed", "forbidden", user} {
			if !strings.Contains(err.Error(), s) {
				named = false
				t.Errorf("the error lacks %q:\n%v", s, err)
			}
		}
	}
	sent, _ := w.Take()
	mu.Lock()
	var others []string
	for _, d := range done {
		if !strings.HasSuffix(d, " "+stateURL) {
			others = append(others, d)
		}
	}
	t.Logf("writes: %d sent, %d answered 2xx (%v), %d refused with 403", sent, len(done), done, refused)
	mu.Unlock()
	if len(others) > 0 {
		t.Errorf("writes outside meshcd's own state went through: %v", others)
	}
	if refused == 0 {
		t.Error("the API server refused no write: the account was not in force")
	}
	lost, orphaned, unintended, notes := e.count(versionA, uids)
	for _, n := range notes {
		t.Log(n)
	}
	record(t, outcome{Kind: "hostile: impersonation", Converged: named && len(others) == 0 && refused > 0 && lost+orphaned+unintended == 0, Lost: lost, Orphaned: orphaned, Unintended: unintended})
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}

// grantOnlyNamespace makes a service account in e.ns that may write only
// in e.ns (and label it), read what meshcd lists, and keep meshcd's state,
// and returns the user name to impersonate it by.
func grantOnlyNamespace(t *testing.T, e *env) string {
	t.Helper()
	ctx := context.Background()
	name := e.ns + "-repo-writer"
	user := "system:serviceaccount:" + e.ns + ":repo-writer"
	subjects := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "repo-writer", Namespace: e.ns}}
	objs := []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "repo-writer", Namespace: e.ns}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "repo-writer", Namespace: e.ns}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}},
		}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "repo-writer", Namespace: e.ns}, Subjects: subjects,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "repo-writer"}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"namespaces", "configmaps", "services"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"security.istio.io", "networking.istio.io", "gateway.networking.k8s.io"}, Resources: []string{"*"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, ResourceNames: []string{e.ns}, Verbs: []string{"patch"}},
		}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, Subjects: subjects,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.opts.Namespace}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "create", "patch", "update"}},
		}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.opts.Namespace}, Subjects: subjects,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}},
	}
	for _, o := range objs {
		if err := e.admin.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		if o.GetNamespace() != e.ns {
			t.Cleanup(func() { _ = e.admin.Delete(context.Background(), o) })
		}
	}
	// RBAC reaches the authorizer through its informers: wait until the
	// account reads meshcd's inventory.
	cfg := rest.CopyConfig(clustertest.Cluster(t).RESTConfig())
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		err := c.Get(ctx, client.ObjectKey{Namespace: e.opts.Namespace, Name: "meshcd-inventory-" + e.opts.Name}, &corev1.ConfigMap{})
		if err == nil {
			return user
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s cannot read meshcd's inventory: %v", user, err)
		}
	}
}

// confine makes the spec directory a repository root, so that kustomize's
// confinement does not depend on where the test's temporary directory is.
func confine(t *testing.T, e *env) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(e.dir, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// add writes one more file into the spec directory.
func add(t *testing.T, e *env, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(e.dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// outsideFile writes a ConfigMap of e.ns into a directory outside the
// repository and returns its path.
func outsideFile(t *testing.T, e *env) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "stolen.yaml")
	if err := os.WriteFile(p, []byte(fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: stolen, namespace: %s}\ndata: {a: b}\n", e.ns)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// aliasBomb is a billion laughs: 9^9 strings from under 1 kB.
func aliasBomb(ns string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol, namespace: %s}\ndata:\n", ns)
	b.WriteString(`  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]` + "\n")
	for prev, c := 'a', 'b'; c <= 'i'; prev, c = c, c+1 {
		fmt.Fprintf(&b, "  %c: &%c [%s]\n", c, c, strings.TrimSuffix(strings.Repeat("*"+string(prev)+",", 9), ","))
	}
	return b.String()
}

// bigFile writes 100 MiB of ConfigMaps of e.ns into the spec directory,
// streamed so that the test's own heap stays small, and returns its size.
func bigFile(t *testing.T, e *env, name string) int64 {
	t.Helper()
	f, err := os.Create(filepath.Join(e.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	pad := strings.Repeat("x", 900)
	var n int64
	for i := 0; n < 100<<20; i++ {
		k, _ := fmt.Fprintf(bw, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: big-%d, namespace: %s}\ndata: {pad: %s}\n", i, e.ns, pad)
		n += int64(k)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return n
}

// heapDuring runs f and returns how far the test process's heap grew above
// where it stood before (its peak, sampled every 2 ms, after a GC), and the
// bytes f allocated in all.
func heapDuring(f func()) (grew, allocated uint64) {
	var before, m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	peak := before.HeapAlloc
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				var s runtime.MemStats
				runtime.ReadMemStats(&s)
				peak = max(peak, s.HeapAlloc)
			}
		}
	}()
	f()
	close(stop)
	<-sampled
	runtime.ReadMemStats(&m)
	peak = max(peak, m.HeapAlloc)
	return peak - before.HeapAlloc, m.TotalAlloc - before.TotalAlloc
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
