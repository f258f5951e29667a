package access

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/meshcd/meshcd/renderer"
)

// objects reads a YAML stream into objects.
func objects(t testing.TB, stream string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split(stream, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		o := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &o.Object); err != nil {
			t.Fatalf("test input: %v\n%s", err, doc)
		}
		out = append(out, o)
	}
	return out
}

func build(t testing.TB, stream string) *Model {
	t.Helper()
	m, err := Build(objects(t, stream), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func renderObjects(t testing.TB, dir string) []*unstructured.Unstructured {
	t.Helper()
	b, err := renderer.Render(dir, renderer.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	return b.Objects
}

func render(t testing.TB, dir string) *Model {
	t.Helper()
	m, err := Build(renderObjects(t, dir), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func id(s string) Identity {
	i, err := ParseIdentity(s)
	if err != nil {
		panic(err)
	}
	return i
}

func check(t *testing.T, m *Model, from, to string, req Request) Verdict {
	t.Helper()
	d, err := m.ResolveDestination(to)
	if err != nil {
		t.Fatal(err)
	}
	return m.Check(id(from), d, req)
}

func expect(t *testing.T, v Verdict, decision Decision, at Hop, policies ...string) {
	t.Helper()
	if v.Decision != decision || v.EnforcedAt != at || (policies != nil && !slices.Equal(v.Policies, policies)) {
		t.Errorf("%s → %s: got %s at %s by %v (%s), want %s at %s by %v", v.From, v.To, v.Decision, v.EnforcedAt, v.Policies, v.Reason, decision, at, policies)
	}
	if v.Allowed != (decision == Allow) || v.Undecided != (decision == Depends || decision == Undecided) {
		t.Errorf("%s → %s: allowed=%v undecided=%v do not fit %s", v.From, v.To, v.Allowed, v.Undecided, v.Decision)
	}
}

// ambientApp is a namespace app in ambient, with Service api:8080 over a
// Deployment running as api, and a caller client/web.
const ambientApp = `
apiVersion: v1
kind: Namespace
metadata: {name: app, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Namespace
metadata: {name: client, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: app}
spec: {selector: {app: api}, ports: [{name: http, port: 8080, targetPort: 9090}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: app}
spec:
  template:
    metadata: {labels: {app: api}}
    spec: {serviceAccountName: api, containers: [{name: api, image: api}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: client}
spec:
  template:
    metadata: {labels: {app: web}}
    spec: {serviceAccountName: web, containers: [{name: web, image: web}]}
`

// withWaypoint enrolls namespace app in waypoint app/waypoint.
const withWaypoint = `
---
apiVersion: v1
kind: Namespace
metadata: {name: app, labels: {istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: app, labels: {istio.io/waypoint-for: service}}
spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
`

// readmeDir is the spec of README.md "What a spec looks like", its first
// YAML block, next to the workloads of testdata/readme.
func readmeDir(t testing.TB) string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "## What a spec looks like")
	_, block, _ := strings.Cut(section, "```yaml\n")
	spec, _, found := strings.Cut(block, "```")
	if !found {
		t.Fatal("README.md has no YAML block under \"What a spec looks like\"")
	}
	apps, err := os.ReadFile("testdata/readme/apps.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, content := range map[string]string{"mesh.yaml": spec, "apps.yaml": string(apps)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The README's access list holds shop/web to GET and POST on /api/*: the
// renderer leaves a caller an L7 rule names out of the L4 rules, which
// would otherwise be ORed with it at the waypoint (builder.go: one RBAC
// policy per rule) and let shop/web use every method and path. shop/cart,
// named by an L4 rule only, may send anything.
func TestCheck_READMECase_WebIsHeldToItsL7Rule(t *testing.T) {
	m := render(t, readmeDir(t))
	for _, to := range []string{"shop/orders:8080", "shop/orders-v1:8080", "shop/orders-v2:8080"} {
		expect(t, check(t, m, "shop/web", to, Request{Method: "DELETE", Path: "/admin"}), Deny, AtWaypoint, "shop/orders-l7")
		v := check(t, m, "shop/web", to, Request{Method: "GET", Path: "/api/orders"})
		expect(t, v, Allow, AtWaypoint)
		if v.Hops[0].Reason != "ALLOW shop/orders-l7 matches (rule 1)" {
			t.Errorf("%s: the waypoint should admit GET /api/orders by the L7 rule 1, got %q", to, v.Hops[0].Reason)
		}
		expect(t, check(t, m, "shop/cart", to, Request{Method: "DELETE", Path: "/admin"}), Allow, AtWaypoint)
		expect(t, check(t, m, "shop/orders", to, Request{Method: "GET", Path: "/api/orders"}), Deny, AtWaypoint, "shop/orders-l7")
	}
	// web cannot skip the waypoint by calling the pods: ztunnel admits the
	// waypoint and cart, not web.
	var l4 []string
	for _, p := range m.policies {
		if p.name == "orders-l4" {
			for _, r := range p.spec.Rules {
				for _, f := range r.From {
					l4 = append(l4, f.Source.Principals...)
				}
			}
		}
	}
	if strings.Join(l4, ",") != "cluster.local/ns/shop/sa/cart" {
		t.Errorf("ztunnel's L4 rules admit %v, want only shop/cart", l4)
	}
}

// The shop example adds a required JWT: a DENY notRequestPrincipals ["*"]
// at the waypoint. GET /api/* then hangs on the JWT, DELETE /admin is
// refused by the L7 rule, for orders and its per-version Services alike.
func TestCheck_ShopExample_GetHangsOnTheJWTAndDeleteIsRefused(t *testing.T) {
	m := render(t, "../examples/shop-zero-trust")
	for _, to := range []string{"shop/orders:8080", "shop/orders-v1:8080", "shop/orders-v2:8080"} {
		expect(t, check(t, m, "shop/web", to, Request{Method: "DELETE", Path: "/admin", RequestPrincipal: "https://accounts.example.com/alice"}),
			Deny, AtWaypoint, "shop/orders-l7")
		req := Request{Method: "GET", Path: "/api/orders"}
		v := check(t, m, "shop/web", to, req)
		expect(t, v, Depends, AtWaypoint, "shop/orders-require-jwt")
		if !strings.Contains(v.Reason, "request.auth.principal") {
			t.Errorf("%s: the reason should name the JWT, got %q", to, v.Reason)
		}
		req.NoJWT = true
		expect(t, check(t, m, "shop/web", to, req), Deny, AtWaypoint, "shop/orders-require-jwt")
		req.NoJWT, req.RequestPrincipal = false, "https://accounts.example.com/alice"
		expect(t, check(t, m, "shop/web", to, req), Allow, AtWaypoint)
	}
}

// authorization.go, handleRule: "L7 policies never match for ALLOW", so at
// ztunnel an ALLOW rule with methods is omitted, and the policy, which still
// applies, denies.
func TestCheck_ZtunnelOmitsAllowRulesWithHTTPAttributes(t *testing.T) {
	m := build(t, ambientApp+`
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: get-only, namespace: app}
spec:
  selector: {matchLabels: {app: api}}
  rules: [{from: [{source: {principals: [cluster.local/ns/client/sa/web]}}], to: [{operation: {methods: [GET]}}]}]
`)
	expect(t, check(t, m, "client/web", "app/api", Request{Method: "GET"}), Deny, AtZtunnel, "app/get-only")
}

// authorization.go, httpDenyRuleBoilerplate: "DENY policy with HTTP
// attributes is enforced without the HTTP rules": a DENY from namespace
// client when x-role is guest blocks every call from client.
func TestCheck_ZtunnelEnforcesDenyWithoutItsHTTPParts(t *testing.T) {
	m := build(t, ambientApp+`
---
apiVersion: v1
kind: Namespace
metadata: {name: other, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: batch, namespace: other}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-guests, namespace: app}
spec:
  action: DENY
  rules: [{from: [{source: {namespaces: [client]}}], when: [{key: "request.headers[x-role]", values: [guest]}]}]
`)
	req := Request{Headers: map[string]string{"x-role": "admin"}}
	expect(t, check(t, m, "client/web", "app/api", req), Deny, AtZtunnel, "app/no-guests")
	expect(t, check(t, m, "other/batch", "app/api", req), Allow, AtZtunnel)
}

// With a waypoint the same DENY, placed with targetRefs, keeps its header
// condition (builder.go builds HTTP rules at the waypoint).
func TestCheck_WaypointEnforcesHTTPAttributes(t *testing.T) {
	m := build(t, ambientApp+withWaypoint+`
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-guests, namespace: app}
spec:
  targetRefs: [{group: "", kind: Service, name: api}]
  action: DENY
  rules: [{from: [{source: {namespaces: [client]}}], when: [{key: "request.headers[x-role]", values: [guest]}]}]
`)
	expect(t, check(t, m, "client/web", "app/api", Request{Headers: map[string]string{"x-role": "admin"}}), Allow, AtWaypoint)
	expect(t, check(t, m, "client/web", "app/api", Request{Headers: map[string]string{"x-role": "guest"}}), Deny, AtWaypoint, "app/no-guests")
	v := check(t, m, "client/web", "app/api", Request{})
	expect(t, v, Depends, AtWaypoint, "app/no-guests")
	if !strings.Contains(v.Reason, "request.headers[x-role]") {
		t.Errorf("the reason should name the header, got %q", v.Reason)
	}
}

// Default allow until an ALLOW policy applies to the workload; a DENY is
// checked before any ALLOW (builder.go: CUSTOM, DENY, ALLOW; the Istio
// AuthorizationPolicy reference, "Authorization Policy precedence").
func TestCheck_DefaultAllowAndDenyBeforeAllow(t *testing.T) {
	m := build(t, ambientApp)
	expect(t, check(t, m, "client/web", "app/api", Request{}), Allow, AtNone)

	m = build(t, ambientApp+`
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: other-workload, namespace: app}
spec:
  selector: {matchLabels: {app: not-api}}
  rules: [{from: [{source: {namespaces: [nobody]}}]}]
`)
	expect(t, check(t, m, "client/web", "app/api", Request{}), Allow, AtNone)

	m = build(t, ambientApp+`
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-client, namespace: app}
spec:
  rules: [{from: [{source: {namespaces: [client]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-web, namespace: app}
spec:
  action: DENY
  rules: [{from: [{source: {serviceAccounts: [client/web]}}]}]
`)
	expect(t, check(t, m, "client/web", "app/api", Request{}), Deny, AtZtunnel, "app/deny-web")
	expect(t, check(t, m, "client/default", "app/api", Request{}), Allow, AtZtunnel, "app/allow-client")
}

// An empty spec is an ALLOW with no rules: it matches nothing, so it denies
// all (builder.go, rbacPolicyMatchNever; ztunnel gets a policy without groups).
func TestCheck_EmptyPolicyDeniesAll(t *testing.T) {
	m := build(t, ambientApp+`
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: default-deny, namespace: app}
spec: {}
`)
	expect(t, check(t, m, "client/web", "app/api", Request{}), Deny, AtZtunnel, "app/default-deny")
}

// A root-namespace policy without selector is mesh-wide (authorization.go,
// Scope_GLOBAL); a root-namespace selector policy selects in every namespace
// (workloads.go, buildWorkloadPolicies).
func TestCheck_RootNamespacePoliciesApplyEverywhere(t *testing.T) {
	m := build(t, ambientApp+`
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mesh-deny, namespace: istio-system}
spec:
  action: DENY
  selector: {matchLabels: {app: api}}
  rules: [{to: [{operation: {ports: ["9090"]}}]}]
`)
	// ztunnel compares the workload port, 9090, not the Service port 8080.
	expect(t, check(t, m, "client/web", "app/api:8080", Request{}), Deny, AtZtunnel, "istio-system/mesh-deny")
}

// CUSTOM at ztunnel is refused ("ztunnel does not support the CUSTOM
// action", convertAuthorizationPolicy), so it is not enforced; at the
// waypoint an external authorizer decides, which the model cannot.
func TestCheck_CustomIgnoredAtZtunnelAndUndecidedAtWaypoint(t *testing.T) {
	custom := `
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: app}
spec:
  action: CUSTOM
  provider: {name: opa}
  %s
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
`
	m := build(t, ambientApp+strings.Replace(custom, "%s", "selector: {matchLabels: {app: api}}", 1))
	expect(t, check(t, m, "client/web", "app/api", Request{Path: "/admin"}), Allow, AtNone)

	m = build(t, ambientApp+withWaypoint+strings.Replace(custom, "%s", `targetRefs: [{group: "", kind: Service, name: api}]`, 1))
	v := check(t, m, "client/web", "app/api", Request{Path: "/admin"})
	expect(t, v, Undecided, AtWaypoint, "app/ext")
	expect(t, check(t, m, "client/web", "app/api", Request{Path: "/public"}), Allow, AtWaypoint)
}

// A targetRefs policy is not for ztunnel (convertAuthorizationPolicy
// returns nil) and attaches only to a waypoint (ShouldAttachPolicy): on a
// Service without a waypoint it enforces nothing.
func TestCheck_TargetRefsPolicyWithoutWaypointEnforcesNothing(t *testing.T) {
	policy := `
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api-deny, namespace: app}
spec:
  targetRefs: [{group: "", kind: Service, name: api}]
  action: DENY
  rules: [{to: [{operation: {methods: [DELETE]}}]}]
`
	m := build(t, ambientApp+policy)
	expect(t, check(t, m, "client/web", "app/api", Request{Method: "DELETE"}), Allow, AtNone)
	m = build(t, ambientApp+withWaypoint+policy)
	expect(t, check(t, m, "client/web", "app/api", Request{Method: "DELETE"}), Deny, AtWaypoint, "app/api-deny")
	// A waypoint for workloads only takes no Service traffic.
	m = build(t, strings.Replace(ambientApp+withWaypoint+policy, "istio.io/waypoint-for: service", "istio.io/waypoint-for: workload", 1))
	expect(t, check(t, m, "client/web", "app/api", Request{Method: "DELETE"}), Allow, AtNone)
}

// Behind a waypoint the destination's ztunnel sees the waypoint's identity:
// a selector policy naming the original caller refuses the call. The
// waypoint runs as the Gateway's name (deploymentcontroller.go:
// ServiceAccount defaults to the deployment name, waypoint.yaml uses it).
func TestCheck_ZtunnelBehindWaypointSeesWaypointIdentity(t *testing.T) {
	allowWeb := `
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-web, namespace: app}
spec:
  selector: {matchLabels: {app: api}}
  rules: [{from: [{source: {principals: [cluster.local/ns/client/sa/web]}}]}]
`
	m := build(t, ambientApp+allowWeb)
	expect(t, check(t, m, "client/web", "app/api", Request{}), Allow, AtZtunnel, "app/allow-web")

	m = build(t, ambientApp+withWaypoint+allowWeb)
	v := check(t, m, "client/web", "app/api", Request{})
	expect(t, v, Deny, AtZtunnel, "app/allow-web")
	if v.Hops[1].Caller != "app/waypoint" {
		t.Errorf("ztunnel should see app/waypoint, got %q", v.Hops[1].Caller)
	}
	m = build(t, ambientApp+strings.Replace(withWaypoint, "labels: {istio.io/waypoint-for: service}",
		"labels: {istio.io/waypoint-for: service}, annotations: {gateway.istio.io/service-account: wp-sa}", 1)+
		strings.Replace(allowWeb, "client/sa/web", "app/sa/wp-sa", 1))
	expect(t, check(t, m, "client/web", "app/api", Request{}), Allow, AtZtunnel, "app/allow-web")
}

// ztunnel ignores trustDomains: handleRule does not translate it.
func TestCheck_ZtunnelIgnoresTrustDomains(t *testing.T) {
	m := build(t, ambientApp+`
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-td, namespace: app}
spec:
  action: DENY
  rules: [{from: [{source: {trustDomains: [elsewhere.example]}}]}]
`)
	expect(t, check(t, m, "client/web", "app/api", Request{}), Deny, AtZtunnel, "app/deny-td")
}

// A dry-run policy is not enforced (convertAuthorizationPolicy; shadow
// rules in builder.go).
func TestCheck_DryRunPolicyIsNotEnforced(t *testing.T) {
	m := build(t, ambientApp+`
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: app, annotations: {istio.io/dry-run: "true"}}
spec: {action: DENY, rules: [{}]}
`)
	expect(t, check(t, m, "client/web", "app/api", Request{}), Allow, AtNone)
}

// A caller outside the mesh has no identity: STRICT refuses it at ztunnel;
// under PERMISSIVE it passes, but an identity rule cannot match it
// (authorization.go, convertedSelectorPeerAuthentications: mesh, namespace,
// workload, port).
func TestCheck_PeerAuthenticationAndCallersWithoutIdentity(t *testing.T) {
	plain := strings.Replace(ambientApp, "metadata: {name: client, labels: {istio.io/dataplane-mode: ambient}}", "metadata: {name: client}", 1)
	strict := `
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
`
	m := build(t, plain+strict)
	expect(t, check(t, m, "client/web", "app/api", Request{}), Deny, AtZtunnel, "istio-system/default")
	// The same caller inside the mesh passes.
	expect(t, check(t, build(t, ambientApp+strict), "client/web", "app/api", Request{}), Allow, AtNone)

	permissivePort := strict + `
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: api, namespace: app}
spec: {selector: {matchLabels: {app: api}}, portLevelMtls: {"9090": {mode: PERMISSIVE}}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-client, namespace: app}
spec:
  rules: [{from: [{source: {namespaces: [client]}}]}]
`
	m = build(t, plain+permissivePort)
	expect(t, check(t, m, "client/web", "app/api", Request{}), Deny, AtZtunnel, "app/allow-client")
}

// A caller whose namespace is not in the input is answered both ways, and
// is undecided only when the answers differ.
func TestCheck_UnknownCallerNamespaceUndecidedOnlyWhenItMatters(t *testing.T) {
	m := build(t, ambientApp)
	expect(t, check(t, m, "elsewhere/app", "app/api", Request{}), Allow, AtNone)
	m = build(t, ambientApp+`
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-elsewhere, namespace: app}
spec:
  rules: [{from: [{source: {namespaces: [elsewhere]}}]}]
`)
	v := check(t, m, "elsewhere/app", "app/api", Request{})
	expect(t, v, Undecided, AtNone)
	if !strings.Contains(v.Reason, "Namespace elsewhere is not in the input") {
		t.Errorf("the reason should name the missing namespace, got %q", v.Reason)
	}
}

// A waypoint the labels name but the input lacks cannot be decided: if it is
// missing in the cluster traffic skips it (waypoints fail open).
func TestCheck_MissingWaypointIsUndecided(t *testing.T) {
	m := build(t, ambientApp+`
---
apiVersion: v1
kind: Namespace
metadata: {name: app, labels: {istio.io/dataplane-mode: ambient, istio.io/use-waypoint: gone}}
`)
	v := check(t, m, "client/web", "app/api", Request{})
	expect(t, v, Undecided, AtNone)
}

func TestResolveDestination_NamesWhatIsWrong(t *testing.T) {
	m := build(t, ambientApp)
	for in, want := range map[string]string{
		"app/api:80":   "Service app/api has no port \"80\": its ports are 8080",
		"app/nope":     "Service app/nope is not in the input",
		"api":          "is not NAMESPACE/SERVICE[:PORT]",
		"app/api:8080": "",
	} {
		_, err := m.ResolveDestination(in)
		if (err == nil) != (want == "") || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("ResolveDestination(%q) = %v, want %q", in, err, want)
		}
	}
}
