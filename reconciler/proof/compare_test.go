package proof

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"istio.io/istio/pkg/workloadapi"
	"istio.io/istio/pkg/workloadapi/security"

	"github.com/meshcd/meshcd/access"
)

// shop: orders behind waypoint shop/waypoint, default deny, ztunnel admits
// the waypoint only; front/web calls it.
const shopSpec = `apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint}}
---
apiVersion: v1
kind: Namespace
metadata: {name: front, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: shop, labels: {istio.io/waypoint-for: service}}
spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
---
apiVersion: v1
kind: Service
metadata: {name: orders, namespace: shop}
spec: {selector: {app: orders}, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders, namespace: shop}
spec:
  selector: {matchLabels: {app: orders}}
  template:
    metadata: {labels: {app: orders}}
    spec: {serviceAccountName: orders, containers: [{name: app, image: orders}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: front}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {serviceAccountName: web, containers: [{name: app, image: web}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: default-deny, namespace: shop}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-waypoint, namespace: shop}
spec:
  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/waypoint]}}]}]
`

func shopModel(t *testing.T) *access.Model {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, doc := range strings.Split(shopSpec, "\n---\n") {
		o := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &o.Object); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	m, err := access.Build(objs, access.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func ip(last byte) *workloadapi.NetworkAddress {
	return &workloadapi.NetworkAddress{Address: []byte{10, 96, 0, last}}
}

func service(ns, name string, addr byte, waypoint *workloadapi.GatewayAddress) *workloadapi.Address {
	return &workloadapi.Address{Type: &workloadapi.Address_Service{Service: &workloadapi.Service{
		Name: name, Namespace: ns, Hostname: name + "." + ns + ".svc.cluster.local",
		Addresses: []*workloadapi.NetworkAddress{ip(addr)}, Ports: []*workloadapi.Port{{ServicePort: 80, TargetPort: 8080}}, Waypoint: waypoint,
	}}}
}

func workload(w *workloadapi.Workload) *workloadapi.Address {
	return &workloadapi.Address{Type: &workloadapi.Address_Workload{Workload: w}}
}

func via(addr byte) *workloadapi.GatewayAddress {
	return &workloadapi.GatewayAddress{Destination: &workloadapi.GatewayAddress_Address{Address: ip(addr)}, HboneMtlsPort: 15008}
}

// shopConfig is what istiod serves for shopSpec: orders (10.96.0.1) uses the
// waypoint (10.96.0.9); extra policies are added to shop's own.
func shopConfig(orders *workloadapi.Address, extra ...*security.Authorization) *Config {
	pols := append([]*security.Authorization{
		policy("shop", "default-deny", security.Scope_NAMESPACE, security.Action_ALLOW),
		policy("shop", "allow-waypoint", security.Scope_NAMESPACE, security.Action_ALLOW, group([]*security.Match{{Principals: exact("cluster.local/ns/shop/sa/waypoint")}})),
	}, extra...)
	return NewConfig(pols, []*workloadapi.Address{
		orders,
		service("shop", "waypoint", 9, nil),
		service("shop", "waypoint-canary", 10, nil),
		workload(pod("shop", "orders", 8080)),
		workload(pod("shop", "waypoint", 15008)),
		workload(pod("shop", "waypoint-canary", 15008)),
	})
}

func pairOf(t *testing.T, r *Result, from string) Pair {
	t.Helper()
	id, _ := access.ParseIdentity(from)
	for _, list := range [][]Pair{r.AgreedPairs, r.Mismatches, r.Skipped} {
		for _, p := range list {
			if p.From == id && p.To.Service == "orders" {
				return p
			}
		}
	}
	t.Fatalf("no pair %s → shop/orders", from)
	return Pair{}
}

var td = Options{TrustDomain: "cluster.local", KeepAgreed: true}

func TestCompare_AgreesBehindAWaypoint(t *testing.T) {
	r := Compare(shopModel(t), shopConfig(service("shop", "orders", 1, via(9))), td)
	if len(r.Mismatches)+len(r.Skipped) > 0 || r.Agreed == 0 {
		t.Fatalf("want every pair to agree, got %d agreed, mismatches %v, skipped %v", r.Agreed, r.Mismatches, r.Skipped)
	}
	p := pairOf(t, r, "front/web")
	if p.Istiod.Decision != access.Allow || !slices.Equal(p.Istiod.Callers, []string{"shop/waypoint"}) || p.Istiod.Waypoint != "shop/waypoint" {
		t.Errorf("want istiod to route through shop/waypoint and ztunnel to admit it, got %s", p.Istiod)
	}
	if rep := r.Reports(); len(rep) != 1 || !rep[0].Healthy {
		t.Errorf("want one healthy summary, got %v", rep)
	}
}

func TestCompare_ReportsADenyTheModelDoesNotHaveWithBothViews(t *testing.T) {
	extra := policy("shop", "hand-written", security.Scope_NAMESPACE, security.Action_DENY, group([]*security.Match{{Namespaces: exact("shop")}}))
	r := Compare(shopModel(t), shopConfig(service("shop", "orders", 1, via(9)), extra), td)
	if len(r.Mismatches) == 0 {
		t.Fatal("want mismatches")
	}
	reports := r.Reports()
	if reports[0].Healthy || len(reports) != 1+len(r.Mismatches) {
		t.Fatalf("want an unhealthy summary and one report per mismatch, got %v", reports)
	}
	msg := reports[1].Message
	for _, part := range []string{"the model says allow by shop/allow-waypoint", "istiod's ztunnel config says deny by shop/hand-written", "ztunnel sees shop/waypoint"} {
		if !strings.Contains(msg, part) {
			t.Errorf("report %q lacks %q", msg, part)
		}
	}
}

func TestCompare_ReportsAServiceIstiodDoesNotSendThroughTheWaypoint(t *testing.T) {
	r := Compare(shopModel(t), shopConfig(service("shop", "orders", 1, nil)), td)
	p := pairOf(t, r, "front/web")
	if !slices.ContainsFunc(r.Mismatches, func(m Pair) bool { return m.From == p.From && m.To == p.To }) {
		t.Fatalf("want front/web → orders to differ, got %v", p)
	}
	if p.Model.Decision != access.Allow || p.Istiod.Decision != access.Deny || p.Istiod.Waypoint != "" || !slices.Equal(p.Istiod.Callers, []string{"front/web"}) {
		t.Errorf("want the model to allow through the waypoint and istiod's config to deny front/web directly, got model %s; istiod %s", p.Model, p.Istiod)
	}
}

func TestCompare_CanaryWaypointMustBeAdmittedLikeThePrimary(t *testing.T) {
	orders := service("shop", "orders", 1, via(9))
	orders.GetService().WeightedWaypoints = []*workloadapi.WeightedWaypoint{{Destination: via(9), Weight: 75}, {Destination: via(10), Weight: 25}}

	r := Compare(shopModel(t), shopConfig(orders), td)
	p := pairOf(t, r, "front/web")
	if p.Istiod.Decision != Split || len(r.Mismatches) == 0 {
		t.Fatalf("want the unadmitted canary to split istiod's decision, got %s", p.Istiod)
	}

	admit := policy("shop", "allow-canary", security.Scope_NAMESPACE, security.Action_ALLOW, group([]*security.Match{{Principals: exact("cluster.local/ns/shop/sa/waypoint-canary")}}))
	r = Compare(shopModel(t), shopConfig(orders, admit), td)
	p = pairOf(t, r, "front/web")
	if len(r.Mismatches) > 0 || p.Istiod.Decision != access.Allow || p.Istiod.Waypoint != "shop/waypoint" ||
		!slices.Equal(p.Istiod.Weighted, []string{"shop/waypoint=75", "shop/waypoint-canary=25"}) ||
		!slices.Equal(p.Istiod.Callers, []string{"shop/waypoint", "shop/waypoint-canary"}) {
		t.Fatalf("want the admitted canary to agree with the model, got %s (mismatches %v)", p.Istiod, r.Mismatches)
	}

	// At 100 the canary carries every connection, the primary stays the
	// Service's waypoint.
	orders.GetService().WeightedWaypoints[0].Weight, orders.GetService().WeightedWaypoints[1].Weight = 0, 100
	r = Compare(shopModel(t), shopConfig(orders, admit), td)
	if p = pairOf(t, r, "front/web"); len(r.Mismatches) > 0 || p.Istiod.Waypoint != "shop/waypoint" || !slices.Equal(p.Istiod.Callers, []string{"shop/waypoint-canary"}) {
		t.Fatalf("want the canary alone behind the primary at 100, got %s (mismatches %v)", p.Istiod, r.Mismatches)
	}

	// A canary at weight 0 carries no connection.
	orders.GetService().WeightedWaypoints[0].Weight, orders.GetService().WeightedWaypoints[1].Weight = 100, 0
	r = Compare(shopModel(t), shopConfig(orders), td)
	if p = pairOf(t, r, "front/web"); len(r.Mismatches) > 0 || !slices.Equal(p.Istiod.Callers, []string{"shop/waypoint"}) {
		t.Fatalf("want a weight-0 canary ignored, got %s", p.Istiod)
	}
}

func TestCompare_SkipsAServiceIstiodSendsNoWorkloadFor(t *testing.T) {
	cfg := NewConfig(nil, []*workloadapi.Address{service("shop", "orders", 1, via(9))})
	r := Compare(shopModel(t), cfg, td)
	if r.Agreed+len(r.Mismatches) > 0 || len(r.Skipped) == 0 {
		t.Fatalf("want every pair skipped, got %d agreed, %d mismatches", r.Agreed, len(r.Mismatches))
	}
	if s := r.Reports()[0]; !s.Healthy || !strings.Contains(s.Message, "istiod sends no workload behind Service shop/orders:80") {
		t.Errorf("want a healthy summary naming the skip, got %v", s)
	}
}
