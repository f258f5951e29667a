package admit

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func obj(apiVersion, kind, namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

// scopes is a REST mapping of the kinds the tests use.
func scopes(gvk schema.GroupVersionKind) (bool, error) {
	switch gvk.Kind {
	case "Namespace", "ClusterRole", "ValidatingWebhookConfiguration", "CustomResourceDefinition", "PriorityClass", "StorageClass":
		return false, nil
	case "Service", "Deployment", "ConfigMap", "Secret", "Role", "RoleBinding", "Gateway", "HTTPRoute", "AuthorizationPolicy", "PeerAuthentication", "ServiceAccount":
		return true, nil
	}
	return false, &meta.NoKindMatchError{GroupKind: gvk.GroupKind(), SearchedVersions: []string{gvk.Version}}
}

func origin(o *unstructured.Unstructured) string {
	return "repo/" + strings.ToLower(o.GetKind()) + ".yaml:1:1"
}

func TestPolicy_PassesMeshAndWorkloadKinds(t *testing.T) {
	objs := []*unstructured.Unstructured{
		obj("v1", "Namespace", "", "shop"),
		obj("v1", "Service", "shop", "orders"),
		obj("v1", "ConfigMap", "shop", "cfg"),
		obj("v1", "ServiceAccount", "shop", "orders"),
		obj("apps/v1", "Deployment", "shop", "orders"),
		obj("gateway.networking.k8s.io/v1", "Gateway", "shop", "waypoint"),
		obj("gateway.networking.k8s.io/v1", "HTTPRoute", "shop", "orders"),
		obj("security.istio.io/v1", "AuthorizationPolicy", "shop", "orders"),
		obj("security.istio.io/v1", "PeerAuthentication", "istio-system", "default"),
	}
	if err := (Policy{}).Check(objs, scopes, origin); err != nil {
		t.Fatalf("mesh and workload kinds must pass: %v", err)
	}
}

func TestPolicy_RefusesWhatGrantsOrWidensAndSaysWhereAndWhatToDo(t *testing.T) {
	objs := []*unstructured.Unstructured{
		obj("v1", "Service", "shop", "orders"),
		obj("rbac.authorization.k8s.io/v1", "Role", "shop", "admin"),
		obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", "everything"),
		obj("v1", "Secret", "shop", "token"),
		obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "", "deny"),
		obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "widgets.example.com"),
		obj("scheduling.k8s.io/v1", "PriorityClass", "", "top"),
		obj("example.com/v1", "Widget", "shop", "w"),
	}
	err := (Policy{}).Check(objs, scopes, origin)
	if err == nil {
		t.Fatal("want a refusal")
	}
	msg := err.Error()
	for _, want := range []string{
		"7 objects refused, nothing applied or pruned",
		"repo/role.yaml:1:1: Role.rbac.authorization.k8s.io shop/admin: refused because it grants permissions; if this source must manage it, start meshcd with --allow-kind Role.rbac.authorization.k8s.io",
		"ClusterRole.rbac.authorization.k8s.io everything: refused because it grants permissions",
		"repo/secret.yaml:1:1: Secret shop/token: refused because it holds credentials",
		"ValidatingWebhookConfiguration.admissionregistration.k8s.io deny: refused because it intercepts every write",
		"CustomResourceDefinition.apiextensions.k8s.io widgets.example.com: refused because it changes the cluster's API",
		"PriorityClass.scheduling.k8s.io top: refused because it is cluster-scoped; if this source must manage it, start meshcd with --allow-kind PriorityClass.scheduling.k8s.io",
		"Widget.example.com shop/w: refused because the cluster does not serve it",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the refusal lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "Service shop/orders") {
		t.Errorf("a Service was refused:\n%s", msg)
	}
}

func TestPolicy_AllowlistAdmitsAndNamespacesBound(t *testing.T) {
	p := Policy{Allow: []string{"Secret", "PriorityClass.scheduling.k8s.io"}, Namespaces: []string{"shop"}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := p.Check([]*unstructured.Unstructured{
		obj("v1", "Secret", "shop", "token"),
		obj("scheduling.k8s.io/v1", "PriorityClass", "", "top"),
		obj("v1", "Namespace", "", "shop"),
	}, scopes, origin); err != nil {
		t.Fatalf("allowed kinds in the source's namespace must pass: %v", err)
	}
	err := p.Check([]*unstructured.Unstructured{
		obj("v1", "Service", "pay", "charge"),
		obj("v1", "ConfigMap", "", "unnamed"),
		obj("v1", "Namespace", "", "pay"),
		obj("rbac.authorization.k8s.io/v1", "Role", "shop", "admin"),
	}, scopes, origin)
	if err == nil {
		t.Fatal("want a refusal")
	}
	for _, want := range []string{
		`Service pay/charge: refused because namespace "pay" is outside this source's namespaces (shop)`,
		`Namespace pay: refused because namespace "pay" is outside`,
		`ConfigMap unnamed: refused because namespace "default" is outside`,
		"Role.rbac.authorization.k8s.io shop/admin: refused because it grants permissions",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal lacks %q:\n%s", want, err)
		}
	}
}

func TestParseKind(t *testing.T) {
	for in, want := range map[string]schema.GroupKind{
		"Secret":                         {Kind: "Secret"},
		"Role.rbac.authorization.k8s.io": {Group: "rbac.authorization.k8s.io", Kind: "Role"},
	} {
		if got, err := ParseKind(in); err != nil || got != want {
			t.Errorf("ParseKind(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "secret", ".rbac.authorization.k8s.io"} {
		if _, err := ParseKind(bad); err == nil || !strings.Contains(err.Error(), "want Kind.group") {
			t.Errorf("ParseKind(%q) = %v, want an error saying how to spell it", bad, err)
		}
	}
	if err := (Policy{Allow: []string{"roles"}}).Validate(); err == nil {
		t.Error("a misspelled allowlist must not validate")
	}
}

func TestCheck_AnUnreachableClusterIsAnErrorNotARefusal(t *testing.T) {
	down := func(schema.GroupVersionKind) (bool, error) {
		return false, errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")
	}
	err := Policy{}.Check([]*unstructured.Unstructured{obj("networking.istio.io/v1", "VirtualService", "shop", "orders")}, down, origin)
	if err == nil || strings.Contains(err.Error(), "refused because") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("want the connection error, not a refusal: %v", err)
	}
}
