package reconciler_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/admit"
	"github.com/meshcd/meshcd/reconciler/apply"
)

// TestRBAC_TheDeployManifestsAreEnoughToReconcile applies config/ as an
// administrator, then reconciles as meshcd's service account.
func TestRBAC_TheDeployManifestsAreEnoughToReconcile(t *testing.T) {
	e := newEnv(t, nil)
	install := reconciler.DefaultOptions()
	install.Name = e.ns + "-install"
	// meshcd writes its state outside the namespace it installs.
	install.Namespace = e.ns + "-install-state"
	// meshcd's own install grants its permissions: an operator admits that.
	install.Admit = admit.Policy{Allow: []string{"ClusterRole.rbac.authorization.k8s.io", "ClusterRoleBinding.rbac.authorization.k8s.io", "Role.rbac.authorization.k8s.io", "RoleBinding.rbac.authorization.k8s.io"}}
	// The operator creates meshcd's namespace (meshcd labels Namespaces, never creates them).
	if err := clustertest.Client(t).Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meshcd-system"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if res, err := reconciler.New(clustertest.Client(t), install).Reconcile(context.Background(), "../config"); err != nil {
		t.Fatalf("applying config/ (%s): %v", res.Reason, err)
	}

	cfg := rest.CopyConfig(clustertest.Cluster(t).RESTConfig())
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:meshcd-system:meshcd"}
	sa, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The apiserver enforces RBAC: what config/ does not grant is refused.
	err = sa.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns + "-forbidden"}})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("meshcd's service account may not create Namespaces, got %v", err)
	}

	opts := reconciler.DefaultOptions()
	opts.Name = e.ns
	opts.HealthHold = time.Second
	opts.MaxPrune = 1
	rec := reconciler.New(sa, opts)
	e.spec(map[string]string{"ns.yaml": meshNamespace, "orders.yaml": orders, "app.yaml": ordersApp})
	res, err := rec.Reconcile(context.Background(), e.dir)
	if err != nil {
		t.Fatalf("reconcile as meshcd's service account (%s): %v", res.Reason, err)
	}
	if res.Reason != reconciler.ReasonSucceeded {
		t.Fatalf("reconcile as meshcd's service account: %s %+v", res.Reason, res.Health)
	}
	// Prune too: the spec loses its application policy objects.
	e.spec(map[string]string{"ns.yaml": meshNamespace, "app.yaml": ordersApp})
	res, err = rec.Reconcile(context.Background(), e.dir)
	if err != nil || res.Pruned == nil || res.Pruned.Count(apply.Pruned) == 0 {
		t.Fatalf("prune as meshcd's service account: %v, held %q, %+v", err, res.PruneHeld, res.Pruned)
	}
	t.Logf("as meshcd's service account: applied %s, then pruned %d", res.Applied.Summary(), res.Pruned.Count(apply.Pruned))
}
