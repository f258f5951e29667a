package rules

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/meshspec"
)

// Reusable documents.
const (
	ambientNS     = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}\n"
	ambientWpNS   = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint}}\n"
	plainNS       = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"
	waypointGW    = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: waypoint, namespace: shop, labels: {istio.io/waypoint-for: service}}\nspec:\n  gatewayClassName: istio-waypoint\n  listeners: [{name: mesh, port: 15008, protocol: HBONE}]\n"
	workloadGW    = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: waypoint, namespace: shop, labels: {istio.io/waypoint-for: workload}}\nspec:\n  gatewayClassName: istio-waypoint\n  listeners: [{name: mesh, port: 15008, protocol: HBONE}]\n"
	allGW         = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: waypoint, namespace: shop, labels: {istio.io/waypoint-for: all}}\nspec:\n  gatewayClassName: istio-waypoint\n  listeners: [{name: mesh, port: 15008, protocol: HBONE}]\n"
	ordersSvc     = "apiVersion: v1\nkind: Service\nmetadata: {name: orders, namespace: shop}\nspec: {selector: {app: orders}, ports: [{port: 8080}]}\n"
	ordersV1      = "apiVersion: v1\nkind: Service\nmetadata: {name: orders-v1, namespace: shop}\nspec: {selector: {app: orders, version: v1}, ports: [{port: 8080}]}\n"
	ordersWpSvc   = "apiVersion: v1\nkind: Service\nmetadata: {name: orders, namespace: shop, labels: {istio.io/use-waypoint: waypoint}}\nspec: {ports: [{port: 8080}]}\n"
	sidecarNS     = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio-injection: enabled}}\n"
	revNS         = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio.io/rev: canary}}\n"
	ambientInjNS  = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio.io/dataplane-mode: ambient, istio-injection: enabled}}\n"
	ambientRevNS  = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio.io/dataplane-mode: ambient, istio.io/rev: canary}}\n"
	ambientOffNS  = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio.io/dataplane-mode: ambient, istio-injection: disabled}}\n"
	partialNS     = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}, annotations: {meshcd.dev/ownership: partial}}\n"
	rootNS        = "apiVersion: v1\nkind: Namespace\nmetadata: {name: istio-system}\n"
	ordersNoneSvc = "apiVersion: v1\nkind: Service\nmetadata: {name: orders, namespace: shop, labels: {istio.io/use-waypoint: none}}\nspec: {ports: [{port: 8080}]}\n"
)

const (
	legacyNS     = "apiVersion: v1\nkind: Namespace\nmetadata: {name: legacy}\n"
	defaultDeny  = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: default-deny, namespace: shop}\nspec: {}\n"
	ordersV1Pods = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: orders-v1, namespace: shop}\nspec:\n  selector: {matchLabels: {app: orders, version: v1}}\n  template:\n    metadata: {labels: {app: orders, version: v1}}\n    spec: {serviceAccountName: orders, containers: [{name: orders, image: orders}]}\n"
)

func route(weights ...int) string {
	var refs []string
	for i, w := range weights {
		refs = append(refs, fmt.Sprintf("{name: orders-v%d, port: 8080, weight: %d}", i+1, w))
	}
	return "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: orders, namespace: shop}\nspec:\n  parentRefs: [{group: \"\", kind: Service, name: orders, port: 8080}]\n  rules: [{backendRefs: [" + strings.Join(refs, ", ") + "]}]\n"
}

func extension(kind, spec string) string {
	return "apiVersion: extensions.istio.io/v1alpha1\nkind: " + kind + "\nmetadata: {name: x, namespace: shop}\nspec:\n" + spec
}

func rootPeerAuthentication(spec string) string {
	return "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: " + spec + "\n"
}

const (
	l7Selector   = "  selector: {matchLabels: {app: orders}}\n  rules: [{to: [{operation: {methods: [GET]}}]}]\n"
	toOrders     = "  targetRefs: [{kind: Service, group: '', name: orders}]\n"
	consumerTo   = "name: orders, namespace: billing, port: 8080}]\n  rules"
	envoyFilter  = "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: ef, namespace: shop}\nspec: {}\n"
	sidecarObj   = "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: shop}\nspec: {egress: [{hosts: ['./*']}]}\n"
	billingNS    = "apiVersion: v1\nkind: Namespace\nmetadata: {name: billing, labels: {istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint, istio.io/use-waypoint-namespace: shop}}\n"
	unnamespaced = "apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {istio.io/dataplane-mode: ambient}}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: orders}\nspec: {ports: [{port: 8080}]}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: orders}\nspec:\n  parentRefs: [{group: \"\", kind: Service, name: orders}]\n"
)

func consumerRoute() string {
	return strings.Replace(route(100), "name: orders, port: 8080}]\n  rules", consumerTo, 1)
}

func policy(spec string) string {
	return "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: shop}\nspec:\n" + spec
}

func vs(http string) string {
	return "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: orders, namespace: shop}\nspec:\n  hosts: [orders.shop.svc.cluster.local]\n  http:\n" + http
}

func deployment(meta, tmpl string) string {
	return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop" + meta + "}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web" + tmpl + "}}\n    spec: {containers: [{name: web, image: web}]}\n"
}

func docs(d ...string) string { return strings.Join(d, "---\n") }

// grid lists, per rule, inputs that must fire it and near misses that must
// not. want holds "RULE Kind ns/name" of every finding the input yields.
var grid = []struct {
	name  string
	input string
	want  []string
}{
	// AMB001
	{"ambient and injected namespace", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio.io/dataplane-mode: ambient, istio-injection: enabled}}\n", []string{"AMB001 Namespace shop"}},
	{"ambient and revision-injected namespace", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio.io/dataplane-mode: ambient, istio.io/rev: canary}}\n", []string{"AMB001 Namespace shop"}},
	{"sidecar namespace only", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio-injection: enabled}}\n", nil},
	// AMB002
	{"pod template asks for a sidecar in ambient", docs(ambientNS, deployment("", ", sidecar.istio.io/inject: 'true'")), []string{"AMB002 Deployment shop/web"}},
	{"sidecar request outside ambient", docs(plainNS, deployment("", ", sidecar.istio.io/inject: 'true'")), nil},
	// AMB010
	{"namespace names a missing waypoint", ambientWpNS, []string{"AMB010 Namespace shop"}},
	{"service names a missing waypoint", docs(ambientNS, ordersWpSvc), []string{"AMB010 Service shop/orders"}},
	{"pod names a waypoint in a namespace the input lacks", docs(ambientNS, allGW, deployment("", ", istio.io/use-waypoint: waypoint, istio.io/use-waypoint-namespace: infra")), []string{"AMB050 Deployment shop/web"}},
	{"pod names a waypoint missing from a namespace the input holds", docs(ambientNS, allGW, "apiVersion: v1\nkind: Namespace\nmetadata: {name: infra}\n", deployment("", ", istio.io/use-waypoint: waypoint, istio.io/use-waypoint-namespace: infra")), []string{"AMB010 Deployment shop/web"}},
	{"namespace names a waypoint, the namespace being only labelled by meshcd", strings.Replace(partialNS, "ambient}", "ambient, istio.io/use-waypoint: waypoint}", 1), []string{"AMB050 Namespace shop"}},
	{"service names an existing waypoint", docs(ambientNS, waypointGW, ordersWpSvc), nil},
	// AMB011
	{"service uses a workload waypoint", docs(ambientNS, workloadGW, ordersWpSvc), []string{"AMB011 Service shop/orders"}},
	{"pod uses a service waypoint", docs(ambientNS, waypointGW, deployment("", ", istio.io/use-waypoint: waypoint")), []string{"AMB011 Deployment shop/web"}},
	{"pod uses an all waypoint", docs(ambientNS, allGW, deployment("", ", istio.io/use-waypoint: waypoint")), nil},
	{"service uses a waypoint with the default for", docs(ambientNS, strings.Replace(waypointGW, ", labels: {istio.io/waypoint-for: service}", "", 1), ordersWpSvc), nil},
	// AMB012
	{"waypoint without the HBONE listener", docs(ambientNS, strings.Replace(waypointGW, "port: 15008, protocol: HBONE", "port: 80, protocol: HTTP", 1)), []string{"AMB012 Gateway shop/waypoint"}},
	{"waypoint with two listeners", docs(ambientNS, strings.Replace(waypointGW, "protocol: HBONE}]", "protocol: HBONE}, {name: x, port: 80, protocol: HTTP}]", 1)), []string{"AMB012 Gateway shop/waypoint"}},
	{"ingress gateway with other listeners", "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: ingress, namespace: shop}\nspec: {gatewayClassName: istio, listeners: [{name: http, port: 80, protocol: HTTP}]}\n", nil},
	// AMB013
	{"waypoint label on a namespace not in ambient", docs("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio.io/use-waypoint: waypoint}}\n", waypointGW), []string{"AMB013 Namespace shop"}},
	{"waypoint label on a service outside ambient", docs(plainNS, waypointGW, ordersWpSvc), []string{"AMB013 Service shop/orders"}},
	{"waypoint label on a service of an unknown namespace", docs(waypointGW, ordersWpSvc), nil},
	// AMB014
	{"ambient label on the controller's metadata", docs(ambientNS, allGW, deployment(", labels: {istio.io/use-waypoint: waypoint}", "")), []string{"AMB014 Deployment shop/web"}},
	{"ambient label on a pod itself", docs(ambientNS, allGW, "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop, labels: {istio.io/use-waypoint: waypoint}}\nspec: {containers: [{name: c, image: c}]}\n"), nil},
	// AMB020
	{"selector policy with methods in ambient", docs(ambientNS, policy("  selector: {matchLabels: {app: orders}}\n  rules: [{to: [{operation: {methods: [GET]}}]}]\n")), []string{"AMB020 AuthorizationPolicy shop/p"}},
	{"namespace-wide DENY with paths and a when key", docs(ambientNS, policy("  action: DENY\n  rules: [{to: [{operation: {paths: [/admin]}}], when: [{key: 'request.headers[x]', values: [a]}]}]\n")), []string{"AMB020 AuthorizationPolicy shop/p"}},
	{"selector policy with request principals", docs(ambientNS, policy("  selector: {matchLabels: {app: orders}}\n  rules: [{from: [{source: {requestPrincipals: ['*']}}]}]\n")), []string{"AMB020 AuthorizationPolicy shop/p"}},
	{"selector policy with L4 attributes only", docs(ambientNS, policy("  selector: {matchLabels: {app: orders}}\n  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/web]}}], to: [{operation: {ports: ['8080']}}], when: [{key: source.ip, values: [10.0.0.1]}]}]\n")), nil},
	{"targetRefs policy with methods", docs(ambientWpNS, waypointGW, ordersSvc, policy("  targetRefs: [{kind: Service, group: '', name: orders}]\n  rules: [{to: [{operation: {methods: [GET]}}]}]\n")), nil},
	{"selector policy with methods in a sidecar namespace", docs(plainNS, policy("  selector: {matchLabels: {app: orders}}\n  rules: [{to: [{operation: {methods: [GET]}}]}]\n")), nil},
	// AMB021
	{"policy with selector and targetRefs", docs(ambientWpNS, waypointGW, ordersSvc, policy("  selector: {matchLabels: {app: orders}}\n  targetRefs: [{kind: Service, group: '', name: orders}]\n")), []string{"AMB021 AuthorizationPolicy shop/p"}},
	// AMB022
	{"targetRefs to a service without a waypoint", docs(ambientNS, ordersSvc, policy("  targetRefs: [{kind: Service, group: '', name: orders}]\n")), []string{"AMB022 AuthorizationPolicy shop/p"}},
	{"targetRefs to a service that opted out", docs(ambientWpNS, waypointGW, ordersNoneSvc, policy("  targetRefs: [{kind: Service, group: '', name: orders}]\n")), []string{"AMB022 AuthorizationPolicy shop/p"}},
	{"targetRefs to a service bound by its own label", docs(ambientNS, waypointGW, ordersWpSvc, policy("  targetRefs: [{kind: Service, group: '', name: orders}]\n")), nil},
	{"targetRefs to the waypoint gateway", docs(ambientNS, waypointGW, policy("  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]\n")), nil},
	// AMB023
	{"CUSTOM policy at ztunnel", docs(ambientNS, policy("  selector: {matchLabels: {app: orders}}\n  action: CUSTOM\n  provider: {name: ext-authz}\n  rules: [{}]\n")), []string{"AMB023 AuthorizationPolicy shop/p"}},
	{"AUDIT policy at a waypoint", docs(ambientWpNS, waypointGW, ordersSvc, policy("  targetRefs: [{kind: Service, group: '', name: orders}]\n  action: AUDIT\n")), nil},
	// AMB024
	{"RequestAuthentication without targetRefs in ambient", docs(ambientNS, "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: jwt, namespace: shop}\nspec: {jwtRules: [{issuer: x}]}\n"), []string{"AMB024 RequestAuthentication shop/jwt"}},
	{"RequestAuthentication with targetRefs", docs(ambientWpNS, waypointGW, ordersSvc, "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: jwt, namespace: shop}\nspec: {targetRefs: [{kind: Service, group: '', name: orders}], jwtRules: [{issuer: x}]}\n"), nil},
	// AMB025
	{"mTLS disabled in ambient", docs(ambientNS, "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: shop}\nspec: {mtls: {mode: DISABLE}}\n"), []string{"AMB025 PeerAuthentication shop/default"}},
	{"mTLS permissive in ambient", docs(ambientNS, "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: shop}\nspec: {mtls: {mode: PERMISSIVE}}\n"), nil},
	// AMB030
	{"HTTPRoute for a service without a waypoint", docs(ambientNS, ordersSvc, ordersV1, route(100)), []string{"AMB030 HTTPRoute shop/orders"}},
	{"VirtualService for a service without a waypoint", docs(ambientNS, ordersSvc, vs("  - route: [{destination: {host: orders}}]\n")), []string{"AMB030 VirtualService shop/orders"}},
	{"HTTPRoute behind a namespace waypoint", docs(ambientWpNS, waypointGW, ordersSvc, ordersV1, route(100)), nil},
	{"HTTPRoute for a service of an unknown namespace", docs(ordersV1, route(100)), nil},
	// AMB031
	{"backendRef to a missing version service", docs(ambientWpNS, waypointGW, ordersSvc, ordersV1, route(90, 10)), []string{"AMB031 HTTPRoute shop/orders"}},
	// AMB032
	{"HTTPRoute and VirtualService for one service", docs(ambientWpNS, waypointGW, ordersSvc, ordersV1, route(100), vs("  - route: [{destination: {host: orders}}]\n")), []string{"AMB032 VirtualService shop/orders"}},
	{"VirtualService for another host than the route", docs(ambientWpNS, waypointGW, ordersSvc, ordersV1, route(100), strings.Replace(vs("  - route: [{destination: {host: orders-v1}}]\n"), "hosts: [orders.shop.svc.cluster.local]", "hosts: [orders-v1]", 1)), nil},
	// AMB033
	{"fault with retries in one rule", docs(ambientWpNS, waypointGW, ordersSvc, vs("  - fault: {abort: {percentage: {value: 10}, httpStatus: 503}}\n    retries: {attempts: 3}\n    route: [{destination: {host: orders}}]\n")), []string{"AMB033 VirtualService shop/orders"}},
	{"fault alone", docs(ambientWpNS, waypointGW, ordersSvc, vs("  - fault: {abort: {percentage: {value: 10}, httpStatus: 503}}\n    route: [{destination: {host: orders}}]\n")), nil},
	// AMB034
	{"consumer route to another namespace", docs(ambientWpNS, waypointGW, strings.Replace(route(100), "name: orders, port: 8080}]\n  rules", "name: orders, namespace: billing, port: 8080}]\n  rules", 1), ordersV1), []string{"AMB034 HTTPRoute shop/orders"}},
	// AMB035
	{"subset without a DestinationRule", docs(ambientWpNS, rootNS, waypointGW, ordersSvc, vs("  - route: [{destination: {host: orders, subset: v1}}]\n")), []string{"AMB035 VirtualService shop/orders"}},
	{"subset the input cannot resolve, the root namespace being absent", docs(ambientWpNS, waypointGW, ordersSvc, vs("  - route: [{destination: {host: orders, subset: v1}}]\n")), []string{"AMB050 VirtualService shop/orders"}},
	{"subset defined by a DestinationRule", docs(ambientWpNS, waypointGW, ordersSvc, vs("  - route: [{destination: {host: orders, subset: v1}}]\n"), "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: orders, namespace: shop}\nspec: {host: orders.shop.svc.cluster.local, subsets: [{name: v1, labels: {version: v1}}]}\n"), nil},
	// AMB036
	{"route rule with all weights zero", docs(ambientWpNS, waypointGW, ordersSvc, ordersV1, strings.Replace(route(0, 0), "orders-v2", "orders-v1", 1)), []string{"AMB036 HTTPRoute shop/orders"}},
	{"VirtualService rule with all weights zero", docs(ambientWpNS, waypointGW, ordersSvc, vs("  - route: [{destination: {host: orders}, weight: 0}]\n")), []string{"AMB036 VirtualService shop/orders"}},
	{"route rule with default weights", docs(ambientWpNS, waypointGW, ordersSvc, ordersV1, strings.Replace(route(100), ", weight: 100", "", 1)), nil},
	// AMB060
	{"route weights that sum to 110", docs(ambientWpNS, waypointGW, ordersSvc, ordersV1, strings.Replace(strings.Replace(route(90, 10, 10), "orders-v2", "orders-v1", 1), "orders-v3", "orders-v1", 1)), []string{"AMB060 HTTPRoute shop/orders"}},
	{"route weights that sum to 100", docs(ambientWpNS, waypointGW, ordersSvc, ordersV1, strings.Replace(route(90, 10), "orders-v2", "orders-v1", 1)), nil},
	{"route with one weighted backend", docs(ambientWpNS, waypointGW, ordersSvc, ordersV1, route(50)), nil},
	{"route backends without weights share equally", docs(ambientWpNS, waypointGW, ordersSvc, ordersV1, strings.ReplaceAll(strings.Replace(route(1, 1), "orders-v2", "orders-v1", 1), ", weight: 1", "")), nil},
	{"VirtualService weights that sum to 50", docs(ambientWpNS, waypointGW, ordersSvc, vs("  - route: [{destination: {host: orders}, weight: 40}, {destination: {host: orders}, weight: 10}]\n")), []string{"AMB060 VirtualService shop/orders"}},
	// AMB040, AMB041
	{"EnvoyFilter in ambient", docs(ambientNS, "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: ef, namespace: shop}\nspec: {}\n"), []string{"AMB040 EnvoyFilter shop/ef"}},
	{"EnvoyFilter elsewhere", docs(plainNS, "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: ef, namespace: shop}\nspec: {}\n"), nil},
	{"Sidecar in ambient", docs(ambientNS, "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: shop}\nspec: {}\n"), []string{"AMB041 Sidecar shop/default"}},
	// The mode of a namespace, as Istio decides it (PodMode): rules that need
	// ambient stay silent where the sidecar wins or nothing is meshed.
	{"ambient namespace with injection disabled is ambient", ambientOffNS, nil},
	{"route in a sidecar namespace", docs(sidecarNS, ordersSvc, ordersV1, route(100)), nil},
	{"route in a revision-injected namespace", docs(revNS, ordersSvc, ordersV1, route(100)), nil},
	{"route in a mesh-neutral namespace", docs(plainNS, ordersSvc, ordersV1, route(100)), nil},
	{"route where the sidecar wins over ambient", docs(ambientInjNS, ordersSvc, ordersV1, route(100)), []string{"AMB001 Namespace shop"}},
	{"VirtualService in a sidecar namespace", docs(sidecarNS, ordersSvc, vs("  - route: [{destination: {host: orders}}]\n")), nil},
	{"targetRefs policy in a sidecar namespace", docs(sidecarNS, ordersSvc, policy(toOrders)), nil},
	{"targetRefs policy in a mesh-neutral namespace", docs(plainNS, ordersSvc, policy(toOrders)), nil},
	{"targetRefs policy where the sidecar wins", docs(ambientRevNS, ordersSvc, policy(toOrders)), []string{"AMB001 Namespace shop"}},
	{"consumer route from a sidecar namespace", docs(sidecarNS, ordersV1, consumerRoute()), nil},
	{"consumer route from a mesh-neutral namespace", docs(plainNS, ordersV1, consumerRoute()), nil},
	{"route from the namespace of the target's waypoint", docs(ambientNS, billingNS, waypointGW, ordersV1, consumerRoute()), nil},
	{"Sidecar where the sidecar wins over ambient", docs(ambientInjNS, sidecarObj), []string{"AMB001 Namespace shop"}},
	{"Sidecar where a revision wins over ambient", docs(ambientRevNS, sidecarObj), []string{"AMB001 Namespace shop"}},
	{"L7 selector policy where the sidecar wins", docs(ambientInjNS, policy(l7Selector)), []string{"AMB001 Namespace shop"}},
	{"L7 selector policy in ambient with injection disabled", docs(ambientOffNS, policy(l7Selector)), []string{"AMB020 AuthorizationPolicy shop/p"}},
	{"pod labelled ambient in a mesh-neutral namespace uses a waypoint", docs(plainNS, allGW, deployment("", ", istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint")), nil},
	{"pod opted out of ambient uses a waypoint", docs(ambientNS, allGW, deployment("", ", istio.io/dataplane-mode: none, istio.io/use-waypoint: waypoint")), []string{"AMB013 Deployment shop/web"}},
	{"pod annotation asks for a sidecar in ambient", docs(ambientNS, strings.Replace(deployment("", ""), "metadata: {labels: {app: web}}", "metadata: {labels: {app: web}, annotations: {sidecar.istio.io/inject: 'true'}}", 1)), []string{"AMB002 Deployment shop/web"}},
	// EnvoyFilter, WasmPlugin and TrafficExtension targets.
	{"EnvoyFilter targeting the waypoint", docs(ambientNS, waypointGW, strings.Replace(envoyFilter, "spec: {}", "spec: {targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]}", 1)), nil},
	{"EnvoyFilter where the sidecar wins", docs(ambientInjNS, envoyFilter), []string{"AMB001 Namespace shop"}},
	{"WasmPlugin for a service without a waypoint", docs(ambientNS, ordersSvc, extension("WasmPlugin", toOrders+"  url: oci://x\n")), []string{"AMB022 WasmPlugin shop/x"}},
	{"TrafficExtension for a service without a waypoint", docs(ambientNS, ordersSvc, extension("TrafficExtension", toOrders)), []string{"AMB022 TrafficExtension shop/x"}},
	{"WasmPlugin for a service behind a waypoint", docs(ambientWpNS, waypointGW, ordersSvc, extension("WasmPlugin", toOrders+"  url: oci://x\n")), nil},
	{"WasmPlugin in a sidecar namespace", docs(sidecarNS, ordersSvc, extension("WasmPlugin", toOrders+"  url: oci://x\n")), nil},
	{"targetRefs to a service missing from a namespace the input holds", docs(ambientNS, policy(toOrders)), []string{"AMB022 AuthorizationPolicy shop/p"}},
	{"targetRefs to a service of a namespace the input lacks", policy(toOrders), []string{"AMB050 AuthorizationPolicy shop/p"}},
	// AMB026
	{"mesh-wide mTLS DISABLE with an ambient namespace", docs(ambientNS, rootPeerAuthentication("{mtls: {mode: DISABLE}}")), []string{"AMB026 PeerAuthentication istio-system/default"}},
	{"mesh-wide mTLS DISABLE without ambient namespaces", docs(sidecarNS, rootPeerAuthentication("{mtls: {mode: DISABLE}}")), nil},
	{"mesh-wide mTLS PERMISSIVE with an ambient namespace", docs(ambientNS, rootPeerAuthentication("{mtls: {mode: PERMISSIVE}}")), nil},
	{"root-namespace workload policy DISABLE with an ambient namespace", docs(ambientNS, rootPeerAuthentication("{selector: {matchLabels: {app: x}}, mtls: {mode: DISABLE}}")), nil},
	// AMB051: an ALLOW rule a broader one for the same callers makes meaningless.
	{"L4 rule next to an L7 rule for the same caller at the waypoint", docs(ambientWpNS, waypointGW, ordersSvc, policy(toOrders+"  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/web]}}]}, {from: [{source: {principals: [cluster.local/ns/shop/sa/web]}}], to: [{operation: {methods: [GET], paths: [/api/*]}}]}]\n")), []string{"AMB051 AuthorizationPolicy shop/p"}},
	{"namespace rule in one policy next to a service account rule in another", docs(ambientWpNS, waypointGW, ordersSvc, policy(toOrders+"  rules: [{from: [{source: {namespaces: [shop]}}]}]\n"), strings.Replace(policy(toOrders+"  rules: [{from: [{source: {serviceAccounts: [web]}}], to: [{operation: {methods: [GET]}}]}]\n"), "name: p,", "name: q,", 1)), []string{"AMB051 AuthorizationPolicy shop/q"}},
	{"L4 and L7 rules for different callers", docs(ambientWpNS, waypointGW, ordersSvc, policy(toOrders+"  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/cart]}}]}, {from: [{source: {principals: [cluster.local/ns/shop/sa/web]}}], to: [{operation: {methods: [GET]}}]}]\n")), nil},
	{"the same rule twice", docs(ambientWpNS, waypointGW, ordersSvc, policy(toOrders+"  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/web]}}]}, {from: [{source: {principals: [cluster.local/ns/shop/sa/web]}}]}]\n")), nil},
	// AMB052: a rule that can never match where it is enforced.
	{"waypoint rule on the target port, not the Service port", docs(ambientWpNS, waypointGW, strings.Replace(ordersSvc, "{port: 8080}", "{port: 80, targetPort: 8080}", 1), policy(toOrders+"  rules: [{to: [{operation: {ports: ['8080']}}]}]\n")), []string{"AMB052 AuthorizationPolicy shop/p"}},
	{"ztunnel rule for callers of a namespace outside the mesh", docs(ambientNS, legacyNS, deployment("", ""), policy("  selector: {matchLabels: {app: web}}\n  rules: [{from: [{source: {principals: [cluster.local/ns/legacy/sa/client]}}]}]\n")), []string{"AMB052 AuthorizationPolicy shop/p"}},
	{"source fields that exclude each other", docs(ambientNS, deployment("", ""), policy("  selector: {matchLabels: {app: web}}\n  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/web], namespaces: [billing]}}]}]\n")), []string{"AMB052 AuthorizationPolicy shop/p"}},
	{"waypoint rule on the Service port", docs(ambientWpNS, waypointGW, strings.Replace(ordersSvc, "{port: 8080}", "{port: 80, targetPort: 8080}", 1), policy(toOrders+"  rules: [{to: [{operation: {ports: ['80']}}]}]\n")), nil},
	{"ztunnel rule for callers of a namespace the input lacks", docs(ambientNS, deployment("", ""), policy("  selector: {matchLabels: {app: web}}\n  rules: [{from: [{source: {principals: [cluster.local/ns/elsewhere/sa/client]}}]}]\n")), nil},
	// AMB053: a rule that opens a default-deny namespace to every caller.
	{"rule without from under default deny", docs(ambientNS, defaultDeny, deployment("", ""), policy("  selector: {matchLabels: {app: web}}\n  rules: [{to: [{operation: {ports: ['8080']}}]}]\n")), []string{"AMB053 AuthorizationPolicy shop/p"}},
	{"waypoint rule for any principal under default deny", docs(ambientWpNS, waypointGW, ordersSvc, defaultDeny, policy(toOrders+"  rules: [{from: [{source: {principals: ['*']}}], to: [{operation: {methods: [GET]}}]}]\n")), []string{"AMB053 AuthorizationPolicy shop/p"}},
	{"rule naming its callers under default deny", docs(ambientNS, defaultDeny, deployment("", ""), policy("  selector: {matchLabels: {app: web}}\n  rules: [{from: [{source: {namespaces: [shop]}}]}]\n")), nil},
	{"rule without from and no default deny", docs(ambientNS, deployment("", ""), policy("  selector: {matchLabels: {app: web}}\n  rules: [{to: [{operation: {ports: ['8080']}}]}]\n")), nil},
	// AMB054: a Service that reaches a waypoint-protected Service's pods past its policies.
	{"per-version Service outside the waypoint policies", docs(ambientWpNS, waypointGW, ordersSvc, ordersV1, ordersV1Pods, policy(toOrders+"  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/web]}}], to: [{operation: {methods: [GET]}}]}]\n")), []string{"AMB054 Service shop/orders-v1"}},
	{"per-version Service in the waypoint policies", docs(ambientWpNS, waypointGW, ordersSvc, ordersV1, ordersV1Pods, policy("  targetRefs: [{kind: Service, group: '', name: orders}, {kind: Service, group: '', name: orders-v1}]\n  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/web]}}], to: [{operation: {methods: [GET]}}]}]\n")), nil},
	{"Service on another port of the same pods", docs(ambientWpNS, waypointGW, ordersSvc, strings.Replace(ordersV1, "{port: 8080}", "{port: 9090}", 1), ordersV1Pods, policy(toOrders+"  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/web]}}]}]\n")), nil},
	// AMB050: references the input cannot resolve are warnings.
	{"backendRef to a service of a namespace the input lacks", docs(ordersV1, strings.Replace(route(100), "orders-v1", "orders-v9", 1)), []string{"AMB050 HTTPRoute shop/orders"}},
	{"backendRef missing from a namespace meshcd only labels", docs(strings.Replace(partialNS, "ambient}", "ambient, istio.io/use-waypoint: waypoint}", 1), waypointGW, ordersSvc, ordersV1, route(90, 10)), []string{"AMB050 HTTPRoute shop/orders"}},
	{"route for a service the input lacks in an ambient namespace meshcd only labels", docs(partialNS, ordersV1, route(100)), []string{"AMB050 HTTPRoute shop/orders"}},
	// Manifests without a namespace are in default, as kubectl places them.
	{"route without a namespace in an ambient default namespace", unnamespaced, []string{"AMB030 HTTPRoute default/orders"}},
	// Malformed shapes never panic and are not findings of their own.
	{"odd shapes", docs(ambientNS, policy("  selector: 7\n  rules: [3, {to: x, from: [{source: 5}]}]\n"), "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: shop}\nspec: {parentRefs: [1, {kind: Service}], rules: [{backendRefs: [2]}]}\n"), nil},
}

func load(t *testing.T, name, input string) ([]*unstructured.Unstructured, Options) {
	t.Helper()
	set, err := meshspec.Load(name+".yaml", []byte(input))
	if err != nil {
		t.Fatalf("input does not load: %v", err)
	}
	return set.Manifests, Options{Origin: func(o *unstructured.Unstructured) meshspec.Position {
		p, _ := set.Origin(meshspec.RefOf(o))
		return p
	}}
}

func TestCheck_Grid(t *testing.T) {
	fired := map[string]bool{}
	for _, tc := range grid {
		t.Run(tc.name, func(t *testing.T) {
			objs, opts := load(t, "in", tc.input)
			var got []string
			for _, f := range Check(objs, opts) {
				got = append(got, f.Rule+" "+f.Object)
				fired[f.Rule] = true
				if f.File != "in.yaml" || f.Line == 0 {
					t.Errorf("%s has no origin: %+v", f.Rule, f)
				}
				if f.Message == "" || strings.Contains(f.Message, "%!") {
					t.Errorf("%s message is malformed: %q", f.Rule, f.Message)
				}
				if strings.Contains(f.Message, " /") || strings.Contains(f.Message, "..") || strings.HasPrefix(f.Message, "/") {
					t.Errorf("%s message names an object without its namespace: %q", f.Rule, f.Message)
				}
			}
			sort.Strings(got)
			want := append([]string(nil), tc.want...)
			sort.Strings(want)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("findings\n got: %v\nwant: %v", got, want)
			}
		})
	}
	for _, id := range ruleIDs {
		if !fired[id] {
			t.Errorf("no grid case fires %s", id)
		}
	}
}

func TestCatalogue_EveryRuleHasACheckAndNoIDRepeats(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Catalogue() {
		if seen[r.ID] {
			t.Fatalf("%s is listed twice", r.ID)
		}
		seen[r.ID] = true
		if !slices.Contains(ruleIDs, r.ID) && !slices.Contains(changeRuleIDs, r.ID) {
			t.Errorf("%s is in the catalogue but no check reports it", r.ID)
		}
		if r.Severity != SeverityError && r.Severity != SeverityWarning && r.Severity != SeverityInfo {
			t.Errorf("%s has level %q", r.ID, r.Severity)
		}
		if r.Summary == "" || r.Template == "" {
			t.Errorf("%s lacks a summary or template", r.ID)
		}
	}
	for _, id := range append(slices.Clone(ruleIDs), changeRuleIDs...) {
		if !seen[id] {
			t.Errorf("%s is reported but not in the catalogue", id)
		}
	}
}

func TestCheck_AllowDropsARule(t *testing.T) {
	objs, opts := load(t, "in", docs(ambientNS, ordersSvc, ordersV1, route(100)))
	if !HasErrors(Check(objs, opts)) {
		t.Fatal("want AMB030")
	}
	opts.Allow = []string{"AMB030"}
	if f := Check(objs, opts); len(f) != 0 || HasErrors(f) {
		t.Fatalf("allowed rule still reported: %v", f)
	}
}

func TestCheck_EmptyInputHasNoFindings(t *testing.T) {
	if f := Check(nil, Options{}); f == nil || len(f) != 0 {
		t.Fatalf("want an empty, non-nil list, got %#v", f)
	}
}

// BenchmarkCheck runs the catalogue over 50,000 objects.
func BenchmarkCheck(b *testing.B) {
	var objs []*unstructured.Unstructured
	for n := 0; n < 1000; n++ {
		var input strings.Builder
		r := strings.NewReplacer("shop", fmt.Sprintf("team-%d", n))
		input.WriteString(r.Replace(docs(ambientWpNS, waypointGW, ordersSvc, ordersV1, route(100))))
		for s := 0; s < 45; s++ {
			input.WriteString("---\n" + r.Replace(strings.Replace(policy("  selector: {matchLabels: {app: orders}}\n  rules: [{to: [{operation: {ports: ['8080']}}]}]\n"), "name: p,", fmt.Sprintf("name: p%d,", s), 1)))
		}
		set, err := meshspec.Load("bench.yaml", []byte(input.String()))
		if err != nil {
			b.Fatal(err)
		}
		objs = append(objs, set.Manifests...)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if f := Check(objs, Options{}); len(f) != 0 {
			b.Fatalf("a clean input has findings: %v", f[0])
		}
	}
	b.ReportMetric(float64(len(objs)), "objects")
}

func TestCheck_LiveContextResolvesReferencesOutsideTheInput(t *testing.T) {
	objs, opts := load(t, "in", docs(ambientNS, waypointGW, ordersSvc, ordersV1, strings.Replace(route(100), "orders-v1", "orders-v9", 1)))
	if got := Check(objs, opts); len(got) != 2 || got[0].Rule != "AMB030" || got[1].Rule != "AMB031" {
		t.Fatalf("without the cluster, the missing backend and the missing waypoint are reported: %v", got)
	}
	live, _ := load(t, "live", docs("apiVersion: v1\nkind: Service\nmetadata: {name: orders-v9, namespace: shop}\nspec: {ports: [{port: 8080}]}\n", ambientWpNS))
	opts.Context = live
	got := Check(objs, opts)
	// The rendered namespace (without a waypoint label) replaces the live one, so the route still lacks a waypoint.
	if len(got) != 1 || got[0].Rule != "AMB030" {
		t.Fatalf("with the live Service the backend resolves, and the rendered namespace wins: %v", got)
	}
}

// renamed moves namespace shop, its waypoint and the policies admitting it
// from waypoint to waypoint-v2, as renaming a MeshNamespace's waypoint does.
func renamed(d string) string {
	return strings.NewReplacer("use-waypoint: waypoint}", "use-waypoint: waypoint-v2}", "name: waypoint,", "name: waypoint-v2,", "sa/waypoint]", "sa/waypoint-v2]").Replace(d)
}

// allowWaypoint admits the waypoint's identity at ztunnel under default deny.
const allowWaypoint = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: allow-waypoint, namespace: shop}\nspec: {rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/waypoint]}}]}]}\n"

// changeGrid lists, per rule CheckChange reports, a base and a head that
// must fire it and near misses that must not.
var changeGrid = []struct {
	name, base, head string
	want             []string
}{
	{"waypoint renamed under default deny", docs(ambientWpNS, waypointGW, ordersSvc, ordersV1Pods, defaultDeny, allowWaypoint),
		renamed(docs(ambientWpNS, waypointGW, ordersSvc, ordersV1Pods, defaultDeny, allowWaypoint)), []string{"AMB055 Namespace shop"}},
	{"waypoint renamed, the old identity kept until the label moves", docs(ambientWpNS, waypointGW, ordersSvc, ordersV1Pods, defaultDeny, allowWaypoint),
		docs(renamed(docs(ambientWpNS, waypointGW, ordersSvc, ordersV1Pods, defaultDeny, allowWaypoint)), strings.Replace(allowWaypoint, "name: allow-waypoint,", "name: allow-old-waypoint,", 1)), nil},
	{"waypoint renamed without default deny", docs(ambientWpNS, waypointGW, ordersSvc, ordersV1Pods),
		renamed(docs(ambientWpNS, waypointGW, ordersSvc, ordersV1Pods)), nil},
	{"waypoint added under default deny", docs(ambientNS, ordersSvc, ordersV1Pods, defaultDeny),
		docs(ambientWpNS, waypointGW, ordersSvc, ordersV1Pods, defaultDeny, allowWaypoint), nil},
}

func TestCheckChange_Grid(t *testing.T) {
	fired := map[string]bool{}
	for _, tc := range changeGrid {
		t.Run(tc.name, func(t *testing.T) {
			base, _ := load(t, "base", tc.base)
			head, opts := load(t, "head", tc.head)
			var got []string
			for _, f := range CheckChange(base, head, opts) {
				got = append(got, f.Rule+" "+f.Object)
				fired[f.Rule] = true
				if f.File != "head.yaml" || f.Line == 0 || f.Message == "" || strings.Contains(f.Message, "%!") {
					t.Errorf("%s lacks its origin or message: %+v", f.Rule, f)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("findings\n got: %v\nwant: %v", got, tc.want)
			}
		})
	}
	for _, id := range changeRuleIDs {
		if !fired[id] {
			t.Errorf("no change grid case fires %s", id)
		}
	}
}

// The shop example as rendered before the fix: the L4 rule for shop/web
// copied next to its L7 rule at the waypoint (AMB051), and the per-version
// Services outside the waypoint policies (AMB054).
func TestCheck_OldShopRenderHasTheREADMECaseAndThePerVersionBypass(t *testing.T) {
	input, err := os.ReadFile("testdata/shop-before-fix.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, opts := load(t, "shop", string(input))
	var got []string
	for _, f := range Check(objs, opts) {
		got = append(got, f.Rule+" "+f.Object)
	}
	want := []string{"AMB054 Service shop/orders-v1", "AMB054 Service shop/orders-v2", "AMB051 AuthorizationPolicy shop/orders-l7"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("findings\n got: %v\nwant: %v", got, want)
	}
}
