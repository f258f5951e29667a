package renderer

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// accessSpec is a namespace waypoint in front of orders, with ACCESS as the
// access list.
const accessSpec = `apiVersion: meshcd.dev/v1alpha1
kind: MeshNamespace
metadata: {name: shop}
spec: {waypoint: {}, useWaypoint: namespace, defaultDeny: true}
---
apiVersion: meshcd.dev/v1alpha1
kind: MeshService
metadata: {name: orders, namespace: shop}
spec:
  port: 8080
  selector: {app: orders}
  versions: {v1: {version: v1}, v2: {version: v2}}
  routes: [{backends: {v1: 90, v2: 10}}]
  access:
ACCESS`

// rulesOf renders accessSpec and returns the rules of policy name as
// compact YAML, one rule a line ("" when the policy is not rendered).
func rulesOf(t *testing.T, access, name string) string {
	t.Helper()
	b, err := Render(tree(t, map[string]string{"mesh.yaml": strings.Replace(accessSpec, "ACCESS", access, 1)}), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range b.Objects {
		if o.GetKind() != "AuthorizationPolicy" || o.GetName() != name {
			continue
		}
		rs, _, _ := unstructured.NestedSlice(o.Object, "spec", "rules")
		var lines []string
		for _, r := range rs {
			y, err := yaml.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, strings.Join(strings.Fields(string(y)), " "))
		}
		return strings.Join(lines, "\n")
	}
	return ""
}

func TestRender_L7RuleHoldsItsCallersOutOfTheL4Rules(t *testing.T) {
	const (
		web     = "    - from: {serviceAccounts: [shop/web]}\n"
		webL7   = "    - from: {serviceAccounts: [shop/web]}\n      methods: [GET, POST]\n      paths: [/api/*]\n"
		l7Rule  = "from: - source: principals: - cluster.local/ns/shop/sa/web to: - operation: methods: - GET - POST paths: - /api/*"
		webOnly = "from: - source: principals: - cluster.local/ns/shop/sa/web"
	)
	for _, tc := range []struct {
		name, access, l4, l7 string
	}{
		{"the README case: the L4 rule for the same caller is left out", web + webL7, "", l7Rule},
		{"an L4 rule alone stays at both places", web, webOnly, webOnly},
		{"other callers of the L4 rule stay",
			"    - from: {serviceAccounts: [shop/web, shop/cart]}\n" + webL7,
			"from: - source: principals: - cluster.local/ns/shop/sa/cart",
			"from: - source: principals: - cluster.local/ns/shop/sa/cart\n" + l7Rule},
		{"a namespace rule leaves the held service account out",
			"    - from: {namespaces: [shop]}\n" + webL7,
			"from: - source: namespaces: - shop notPrincipals: - cluster.local/ns/shop/sa/web",
			"from: - source: namespaces: - shop notPrincipals: - cluster.local/ns/shop/sa/web\n" + l7Rule},
		{"a namespace named by an L7 rule holds its service accounts",
			"    - from: {serviceAccounts: [shop/web]}\n    - from: {namespaces: [shop]}\n      methods: [GET]\n",
			"", "from: - source: namespaces: - shop to: - operation: methods: - GET"},
		{"an address rule leaves held callers out",
			"    - from: {ipBlocks: [10.0.0.0/8]}\n" + webL7,
			"from: - source: ipBlocks: - 10.0.0.0/8 notPrincipals: - cluster.local/ns/shop/sa/web",
			"from: - source: ipBlocks: - 10.0.0.0/8 notPrincipals: - cluster.local/ns/shop/sa/web\n" + l7Rule},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rulesOf(t, tc.access, "orders-l4"); got != tc.l4 {
				t.Errorf("ztunnel rules (orders-l4):\n got: %s\nwant: %s", got, tc.l4)
			}
			if got := rulesOf(t, tc.access, "orders-l7"); got != tc.l7 {
				t.Errorf("waypoint rules (orders-l7):\n got: %s\nwant: %s", got, tc.l7)
			}
		})
	}
}

func TestRender_WaypointPoliciesTargetThePerVersionServices(t *testing.T) {
	spec := strings.Replace(accessSpec, "ACCESS", "    - from: {serviceAccounts: [shop/web]}\n      methods: [GET]\n", 1) +
		"  jwt: {issuer: https://issuer.example.com, jwksUri: https://issuer.example.com/jwks, required: true}\n"
	b, err := Render(tree(t, map[string]string{"mesh.yaml": spec}), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	want := "orders orders-v1 orders-v2"
	seen := 0
	for _, o := range b.Objects {
		refs, found, _ := unstructured.NestedSlice(o.Object, "spec", "targetRefs")
		if !found {
			continue
		}
		var names []string
		for _, r := range refs {
			names = append(names, r.(map[string]any)["name"].(string))
		}
		if strings.Join(names, " ") != want {
			t.Errorf("%s %s targets %v, want %s", o.GetKind(), o.GetName(), names, want)
		}
		seen++
	}
	if seen != 3 {
		t.Fatalf("want orders-l7, orders-require-jwt and orders-jwt with targetRefs, saw %d", seen)
	}
}

func TestRender_MoreVersionsThanTargetRefsIsAnError(t *testing.T) {
	var versions []string
	for i := range 16 {
		versions = append(versions, "v"+string(rune('a'+i))+": {version: v"+string(rune('a'+i))+"}")
	}
	spec := strings.Replace(strings.Replace(accessSpec, "ACCESS", "    - from: {serviceAccounts: [shop/web]}\n      methods: [GET]\n", 1),
		"{v1: {version: v1}, v2: {version: v2}}", "{"+strings.Join(versions, ", ")+"}", 1)
	spec = strings.Replace(spec, "  routes: [{backends: {v1: 90, v2: 10}}]\n", "", 1)
	_, err := Render(tree(t, map[string]string{"mesh.yaml": spec}), DefaultOptions())
	if err == nil || !strings.Contains(err.Error(), "mesh.yaml:6") || !strings.Contains(err.Error(), "use at most 15 versions") {
		t.Fatalf("want an error naming the MeshService's line and the limit, got %v", err)
	}
}
