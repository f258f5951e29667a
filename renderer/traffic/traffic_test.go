package traffic

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func object(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	o := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &o.Object); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestSplit_HTTPRouteWeightsAreSharesOfTheirSum(t *testing.T) {
	rules := Split(object(t, `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: orders, namespace: shop}
spec:
  rules:
  - matches: [{headers: [{name: x-canary, value: always}]}, {path: {type: PathPrefix, value: /beta}, method: GET}]
    backendRefs: [{name: orders-v2, port: 8080}]
  - backendRefs: [{name: orders-v1, weight: 90}, {name: orders-v2, weight: 10}, {name: orders-v3, namespace: other, weight: 10}]
  - backendRefs: [{name: orders-v1}, {name: orders-v2}]
  - backendRefs: [{name: orders-v1, weight: 0}, {name: orders-v2, weight: 3}]
  - backendRefs: [{name: orders-v1, weight: 0}]
`))
	want := []struct {
		match, shares string
		sum           int64
		weighted      bool
	}{
		{"header x-canary=always or path PathPrefix /beta, method GET", "orders-v2 100%", 1, false},
		{"every request", "orders-v1 81.8%, orders-v2 9.1%, other/orders-v3 9.1%", 110, true},
		{"every request", "orders-v1 50%, orders-v2 50%", 2, false},
		{"every request", "orders-v2 100%", 3, true},
		{"every request", "no backend", 0, true},
	}
	if len(rules) != len(want) {
		t.Fatalf("%d rules, want %d", len(rules), len(want))
	}
	for i, w := range want {
		r := rules[i]
		if r.Index != i || r.Match != w.match || r.Shares() != w.shares || r.Sum() != w.sum || r.Weighted != w.weighted {
			t.Errorf("rule %d: %+v (%q, sum %d), want %+v", i, r, r.Shares(), r.Sum(), w)
		}
	}
}

func TestSplit_VirtualServiceSingleDestinationTakesEverything(t *testing.T) {
	rules := Split(object(t, `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: orders, namespace: shop}
spec:
  hosts: [orders]
  http:
  - match: [{uri: {prefix: /api}, headers: {x-b: {exact: "2"}, x-a: {regex: "a.*"}}}]
    route: [{destination: {host: orders, subset: v1}, weight: 0}]
  - route: [{destination: {host: orders, subset: v1}, weight: 75}, {destination: {host: orders, subset: v2}, weight: 50}]
`))
	if len(rules) != 2 {
		t.Fatalf("%d rules", len(rules))
	}
	if r := rules[0]; r.Match != "uri prefix /api, header x-a regex a.*, header x-b exact 2" || r.Shares() != "orders/v1 100%" {
		t.Errorf("rule 0: %q: %q", r.Match, r.Shares())
	}
	if r := rules[1]; r.Shares() != "orders/v1 60%, orders/v2 40%" || r.Sum() != 125 {
		t.Errorf("rule 1: %q, sum %d", r.Shares(), r.Sum())
	}
}

func TestSplit_OtherKindsHaveNoSplit(t *testing.T) {
	if rules := Split(object(t, "apiVersion: v1\nkind: Service\nmetadata: {name: orders}\n")); rules != nil {
		t.Fatalf("a Service has rules: %v", rules)
	}
}
