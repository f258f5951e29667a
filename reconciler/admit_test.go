package reconciler_test

import (
	"context"
	"strings"
	"testing"

	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/admit"
	"github.com/meshcd/meshcd/reconciler/apply"
)

const grants = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: NS-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: web, namespace: NS}]
---
apiVersion: v1
kind: Secret
metadata: {name: token, namespace: NS}
stringData: {token: not-for-git}
`

func TestAdmit_ARepoThatGrantsPermissionsIsRefusedAndNothingIsWrittenOrPruned(t *testing.T) {
	e := newEnv(t, func(o *reconciler.Options) { o.MaxPrune = 1 })
	e.spec(map[string]string{"mesh.yaml": meshNamespace + "---\n" + orders, "app.yaml": ordersApp})
	e.reconcile()
	e.writes.Take()

	// The next commit drops the route and adds a cluster-admin binding and
	// a Secret.
	e.spec(map[string]string{"mesh.yaml": meshNamespace, "app.yaml": ordersApp, "grants.yaml": grants})
	res, err := e.rec.Reconcile(context.Background(), e.dir)
	if err == nil || res.Reason != reconciler.ReasonValidationFailed {
		t.Fatalf("want the repo refused, got %v (%s)", err, res.Reason)
	}
	for _, want := range []string{
		"2 objects refused, nothing applied or pruned",
		"grants.yaml:1:1: ClusterRoleBinding.rbac.authorization.k8s.io " + e.ns + "-admin: refused because it grants permissions; if this source must manage it, start meshcd with --allow-kind ClusterRoleBinding.rbac.authorization.k8s.io",
		"grants.yaml:7:1: Secret " + e.ns + "/token: refused because it holds credentials",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal lacks %q:\n%v", want, err)
		}
	}
	if n, seen := e.writes.Take(); n != 0 {
		t.Fatalf("a refused repo wrote %d times: %v", n, seen)
	}
	if _, err := e.get("gateway.networking.k8s.io/v1", "HTTPRoute", e.ns, "orders"); err != nil {
		t.Fatalf("a refused repo pruned the route: %v", err)
	}
	if _, err := e.rec.Diff(context.Background(), e.dir); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("diff must refuse the repo as apply does: %v", err)
	}

	// meshcd's own configuration, never the repo, admits the Secret; the
	// binding stays refused.
	e = &env{t: t, ns: e.ns, dir: e.dir, client: e.client, writes: e.writes, rec: reconciler.New(e.client, func() reconciler.Options {
		o := reconciler.DefaultOptions()
		o.Name, o.MaxPrune = e.ns, 1
		o.Admit = admit.Policy{Allow: []string{"Secret"}}
		return o
	}())}
	e.spec(map[string]string{"mesh.yaml": meshNamespace, "app.yaml": ordersApp, "grants.yaml": strings.SplitN(grants, "---\n", 2)[1]})
	res = e.reconcile()
	if _, err := e.get("v1", "Secret", e.ns, "token"); err != nil {
		t.Fatalf("the allowed Secret was not applied: %v", err)
	}
	if res.Pruned.Count(apply.Pruned) == 0 {
		t.Fatalf("once admitted, the change prunes the dropped route: %+v", res.Pruned)
	}
}
