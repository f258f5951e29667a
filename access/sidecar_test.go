package access

import (
	"strings"
	"testing"
)

// sidecarApp is ambientApp with both namespaces injected with sidecars.
const sidecarApp = ambientApp + `
---
apiVersion: v1
kind: Namespace
metadata: {name: app, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: client, labels: {istio-injection: enabled}}
`

func buildSidecars(t *testing.T, stream string) *Model {
	t.Helper()
	opts := DefaultOptions()
	opts.Sidecars = true
	m, err := Build(objects(t, stream), opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const getOnly = `
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: get-only, namespace: app}
spec:
  selector: {matchLabels: {app: api}}
  rules: [{from: [{source: {principals: [cluster.local/ns/client/sa/web]}}], to: [{operation: {methods: [GET]}}]}]
`

// builder.go builds HTTP rules for a sidecar's HTTP port: a selector
// policy keeps its methods there, where ztunnel would omit the rule.
func TestSidecar_SelectorPolicyKeepsHTTPRules(t *testing.T) {
	m := buildSidecars(t, sidecarApp+getOnly)
	expect(t, check(t, m, "client/web", "app/api", Request{Method: "GET"}), Allow, AtSidecar, "app/get-only")
	expect(t, check(t, m, "client/web", "app/api", Request{Method: "DELETE"}), Deny, AtSidecar, "app/get-only")
	expect(t, check(t, m, "app/api", "app/api", Request{Method: "GET"}), Deny, AtSidecar, "app/get-only")
	v := check(t, m, "client/web", "app/api", Request{})
	expect(t, v, Depends, AtSidecar, "app/get-only")
	if !strings.Contains(v.Reason, "method") {
		t.Errorf("the reason should name the method, got %q", v.Reason)
	}
}

// Without Options.Sidecars a sidecar destination stays undecided, as before.
func TestSidecar_OffLeavesSidecarsUndecided(t *testing.T) {
	m := build(t, sidecarApp+getOnly)
	expect(t, check(t, m, "client/web", "app/api", Request{Method: "GET"}), Undecided, AtZtunnel)
}

// policyattachment.go, ShouldAttachPolicy: "if targetRef is specified,
// ignore the policy altogether" for a workload that is not a gateway.
func TestSidecar_IgnoresTargetRefsPolicies(t *testing.T) {
	m := buildSidecars(t, sidecarApp+`
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all-by-ref, namespace: app}
spec:
  targetRefs: [{group: "", kind: Service, name: api}]
  action: DENY
  rules: [{}]
`)
	expect(t, check(t, m, "client/web", "app/api", Request{Method: "GET"}), Allow, AtNone)
}

// model.go, checkError: on a TCP filter chain an ALLOW rule with an HTTP
// attribute is left out, a DENY rule is kept without it.
func TestSidecar_TCPPortTranslatesLikeZtunnel(t *testing.T) {
	stream := strings.Replace(sidecarApp, "ports: [{name: http, port: 8080, targetPort: 9090}]", "ports: [{name: tcp-api, port: 8080, targetPort: 9090}]", 1)
	m := buildSidecars(t, stream+getOnly)
	expect(t, check(t, m, "client/web", "app/api", Request{Method: "GET"}), Deny, AtSidecar, "app/get-only")
	m = buildSidecars(t, stream+`
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-delete, namespace: app}
spec:
  action: DENY
  rules: [{from: [{source: {namespaces: [client]}}], to: [{operation: {methods: [DELETE]}}]}]
`)
	expect(t, check(t, m, "client/web", "app/api", Request{Method: "GET"}), Deny, AtSidecar, "app/no-delete")
}

// The sidecar wins: the injector is called for istio-injection=enabled and
// istio-cni leaves a pod with a sidecar alone, so a namespace labelled both
// ways still enforces at the sidecar, without the waypoint hop.
func TestSidecar_InjectionWinsOverAmbientLabelAndWaypoint(t *testing.T) {
	m := buildSidecars(t, ambientApp+withWaypoint+getOnly+`
---
apiVersion: v1
kind: Namespace
metadata: {name: app, labels: {istio-injection: enabled, istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint}}
`)
	v := check(t, m, "client/web", "app/api", Request{Method: "DELETE"})
	expect(t, v, Deny, AtSidecar, "app/get-only")
	if v.Waypoint != "" || len(v.Hops) != 1 {
		t.Errorf("a sidecar destination has no waypoint hop, got waypoint %q and %d hops", v.Waypoint, len(v.Hops))
	}
	// Once injection is off the pods are ambient: ztunnel omits the GET rule.
	m = buildSidecars(t, ambientApp+getOnly)
	expect(t, check(t, m, "client/web", "app/api", Request{Method: "GET"}), Deny, AtZtunnel, "app/get-only")
}

// A pod labelled sidecar.istio.io/inject=false is never injected; a Service
// over both kinds of pod is undecided.
func TestSidecar_ServiceOverMixedPodsIsUndecided(t *testing.T) {
	m := buildSidecars(t, sidecarApp+`
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api-plain, namespace: app}
spec:
  template:
    metadata: {labels: {app: api, sidecar.istio.io/inject: "false"}}
    spec: {serviceAccountName: api, containers: [{name: api, image: api}]}
`)
	v := check(t, m, "client/web", "app/api", Request{Method: "GET"})
	expect(t, v, Undecided, AtNone)
	if !strings.Contains(v.Reason, "with and without sidecars") {
		t.Errorf("the reason should say the pods are mixed, got %q", v.Reason)
	}
}

// PeerAuthentication STRICT refuses a caller without identity at the
// sidecar as at ztunnel.
func TestSidecar_StrictRefusesPlaintext(t *testing.T) {
	m := buildSidecars(t, sidecarApp+`
---
apiVersion: v1
kind: Namespace
metadata: {name: client}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: app}
spec: {mtls: {mode: STRICT}}
`)
	expect(t, check(t, m, "client/web", "app/api", Request{}), Deny, AtSidecar, "app/default")
}

func TestSidecar_MatrixEqualsCheck(t *testing.T) {
	m := buildSidecars(t, sidecarApp+getOnly)
	for _, req := range []Request{{}, {Method: "GET"}, {Method: "POST"}} {
		mx := m.Matrix(req)
		for j, d := range mx.Destinations {
			for _, i := range mx.Identities {
				got, want := mx.Cell(i, j), m.Check(i, d, req)
				if got.Decision != want.Decision || got.EnforcedAt != want.EnforcedAt {
					t.Errorf("%+v %s → %s: matrix %s at %s, Check %s at %s", req, i, d, got.Decision, got.EnforcedAt, want.Decision, want.EnforcedAt)
				}
			}
		}
	}
}

// The injector labels the pods it gives a sidecar
// security.istio.io/tlsMode=istio: a policy selecting it applies to them
// and not to ambient pods of the same template.
func TestSidecar_TLSModeSelectorPicksOnlySidecarPods(t *testing.T) {
	denyAll := `
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: sidecars-only, namespace: app}
spec:
  selector: {matchLabels: {app: api, security.istio.io/tlsMode: istio}}
  action: DENY
  rules: [{}]
`
	expect(t, check(t, buildSidecars(t, sidecarApp+denyAll), "client/web", "app/api", Request{Method: "GET"}), Deny, AtSidecar, "app/sidecars-only")
	expect(t, check(t, buildSidecars(t, ambientApp+denyAll), "client/web", "app/api", Request{Method: "GET"}), Allow, AtNone)
}
