package proof

import (
	"testing"

	"google.golang.org/protobuf/types/known/emptypb"
	"istio.io/istio/pkg/workloadapi"
	"istio.io/istio/pkg/workloadapi/security"

	"github.com/meshcd/meshcd/access"
)

// The Authorization resources below are written as istiod's
// convertAuthorizationPolicy and handleRule
// (pilot/pkg/serviceregistry/ambient/authorization.go) produce them: one
// group per AuthorizationPolicy rule; in a group one Rules for the to
// operations, one for the from sources, one per when condition.

func exact(vs ...string) []*security.StringMatch {
	var out []*security.StringMatch
	for _, v := range vs {
		out = append(out, &security.StringMatch{MatchType: &security.StringMatch_Exact{Exact: v}})
	}
	return out
}

func presence() []*security.StringMatch {
	return []*security.StringMatch{{MatchType: &security.StringMatch_Presence{Presence: &emptypb.Empty{}}}}
}

func group(rules ...[]*security.Match) *security.Group {
	g := &security.Group{}
	for _, ms := range rules {
		g.Rules = append(g.Rules, &security.Rules{Matches: ms})
	}
	return g
}

func policy(ns, name string, scope security.Scope, action security.Action, groups ...*security.Group) *security.Authorization {
	return &security.Authorization{Namespace: ns, Name: name, Scope: scope, Action: action, Groups: groups}
}

// pod is a captured workload serving Service ns/svc on port 80 → target.
func pod(ns, name string, target uint32, policies ...string) *workloadapi.Workload {
	return &workloadapi.Workload{
		Uid: "Kubernetes//Pod/" + ns + "/" + name, Name: name, Namespace: ns, ServiceAccount: name,
		TunnelProtocol: workloadapi.TunnelProtocol_HBONE, AuthorizationPolicies: policies,
		Services: map[string]*workloadapi.PortList{ns + "/" + name + "." + ns + ".svc.cluster.local": {Ports: []*workloadapi.Port{{ServicePort: 80, TargetPort: target}}}},
	}
}

func caller(ns, sa string) *access.Identity {
	return &access.Identity{Namespace: ns, ServiceAccount: sa}
}

func decideFor(t *testing.T, c *Config, w *workloadapi.Workload, from *access.Identity, port uint32, want access.Decision, wantPolicies ...string) {
	t.Helper()
	v := c.decide(w, connection{caller: from, trustDomain: "cluster.local", port: port})
	if v.decision != want || len(v.policies) != len(wantPolicies) {
		t.Fatalf("caller %v: got %s, want %s by %v", from, v, want, wantPolicies)
	}
	for i := range wantPolicies {
		if v.policies[i] != wantPolicies[i] {
			t.Fatalf("caller %v: got %s, want %s by %v", from, v, want, wantPolicies)
		}
	}
}

func TestDecide_GroupsAreOredRulesAndedMatchesOred(t *testing.T) {
	// rules: [{from: [{namespaces: [a]}, {namespaces: [b]}], to: [{ports: ["8080"]}]}]
	p := policy("app", "p", security.Scope_NAMESPACE, security.Action_ALLOW,
		group([]*security.Match{{DestinationPorts: []uint32{8080}}}, []*security.Match{{Namespaces: exact("a")}, {Namespaces: exact("b")}}),
		group([]*security.Match{{Principals: exact("cluster.local/ns/c/sa/admin")}}))
	w := pod("app", "api", 8080)
	c := NewConfig([]*security.Authorization{p}, []*workloadapi.Address{{Type: &workloadapi.Address_Workload{Workload: w}}})
	decideFor(t, c, w, caller("a", "x"), 8080, access.Allow, "app/p")
	decideFor(t, c, w, caller("b", "x"), 8080, access.Allow, "app/p")
	decideFor(t, c, w, caller("b", "x"), 9090, access.Deny, "app/p")
	decideFor(t, c, w, caller("c", "admin"), 9090, access.Allow, "app/p")
	decideFor(t, c, w, caller("c", "other"), 8080, access.Deny, "app/p")
}

func TestDecide_AllowWhoseRulesWereAllHTTPDeniesEveryone(t *testing.T) {
	// handleRule returns no rules for an ALLOW rule with an HTTP attribute,
	// and convertAuthorizationPolicy then adds no group.
	p := policy("app", "l7-only", security.Scope_NAMESPACE, security.Action_ALLOW)
	w := pod("app", "api", 8080)
	c := NewConfig([]*security.Authorization{p}, nil)
	decideFor(t, c, w, caller("app", "web"), 8080, access.Deny, "app/l7-only")
}

func TestDecide_DenyWithAHeaderConditionDeniesTheWholeNamespace(t *testing.T) {
	// DENY from namespaces [guests] when request.headers[x-role] = guest:
	// the when condition becomes a match with no field, which matches all.
	p := policy("app", "guests", security.Scope_NAMESPACE, security.Action_DENY,
		group([]*security.Match{{Namespaces: exact("guests")}}, []*security.Match{{}}))
	w := pod("app", "api", 8080)
	c := NewConfig([]*security.Authorization{p}, nil)
	decideFor(t, c, w, caller("guests", "anyone"), 8080, access.Deny, "app/guests")
	decideFor(t, c, w, caller("app", "web"), 8080, access.Allow)
}

func TestDecide_StaticStrictRefusesCallersWithoutIdentity(t *testing.T) {
	// policies.go, DefaultPolicy: DENY not_principals presence, listed on
	// workloads under STRICT mTLS (convertedSelectorPeerAuthentications).
	strict := policy("istio-system", "istio_converted_static_strict", security.Scope_WORKLOAD_SELECTOR, security.Action_DENY,
		group([]*security.Match{{NotPrincipals: presence()}}))
	w := pod("app", "api", 8080, "istio-system/istio_converted_static_strict")
	c := NewConfig([]*security.Authorization{strict}, nil)
	decideFor(t, c, w, nil, 8080, access.Deny, "istio-system/istio_converted_static_strict")
	decideFor(t, c, w, caller("app", "web"), 8080, access.Allow)
}

func TestDecide_CallerWithoutIdentityMatchesNoIdentityValue(t *testing.T) {
	p := policy("app", "p", security.Scope_NAMESPACE, security.Action_ALLOW,
		group([]*security.Match{{Namespaces: exact("app")}}),
		group([]*security.Match{{NotNamespaces: exact("other")}}))
	w := pod("app", "api", 8080)
	c := NewConfig([]*security.Authorization{p}, nil)
	// Not in namespaces [app]; not excluded by notNamespaces [other].
	decideFor(t, c, w, nil, 8080, access.Allow, "app/p")
}

func TestDecide_ScopesSelectTheWorkloadsAPolicyAppliesTo(t *testing.T) {
	global := policy("istio-system", "mesh-deny", security.Scope_GLOBAL, security.Action_DENY, group([]*security.Match{{Namespaces: exact("evil")}}))
	other := policy("elsewhere", "ns-deny", security.Scope_NAMESPACE, security.Action_DENY, group([]*security.Match{{Namespaces: exact("app")}}))
	selected := policy("app", "selected", security.Scope_WORKLOAD_SELECTOR, security.Action_ALLOW, group([]*security.Match{{Namespaces: exact("app")}}))
	c := NewConfig([]*security.Authorization{global, other, selected}, nil)
	listed, unlisted := pod("app", "api", 8080, "app/selected"), pod("app", "db", 5432)
	decideFor(t, c, listed, caller("evil", "x"), 8080, access.Deny, "istio-system/mesh-deny")
	decideFor(t, c, listed, caller("app", "x"), 8080, access.Allow, "app/selected")
	decideFor(t, c, listed, caller("web", "x"), 8080, access.Deny, "app/selected")
	decideFor(t, c, unlisted, caller("web", "x"), 5432, access.Allow)
}

func TestDecide_ListedPolicyIstiodDidNotSendIsUndecided(t *testing.T) {
	w := pod("app", "api", 8080, "app/gone")
	decideFor(t, NewConfig(nil, nil), w, caller("app", "x"), 8080, access.Undecided)
}

func TestDecide_DryRunPoliciesAreNotEnforced(t *testing.T) {
	p := policy("app", "dry", security.Scope_NAMESPACE, security.Action_DENY, group([]*security.Match{{}}))
	p.DryRun = true
	decideFor(t, NewConfig([]*security.Authorization{p}, nil), pod("app", "api", 8080), caller("app", "x"), 8080, access.Allow)
}

func TestDecide_AWorkloadZtunnelDoesNotCaptureEnforcesNothing(t *testing.T) {
	// workloads.go, setTunnelProtocol: HBONE only for pods istio-cni redirected.
	p := policy("app", "deny-all", security.Scope_NAMESPACE, security.Action_DENY, group([]*security.Match{{}}))
	w := pod("app", "api", 8080)
	w.TunnelProtocol = workloadapi.TunnelProtocol_NONE
	decideFor(t, NewConfig([]*security.Authorization{p}, nil), w, caller("app", "x"), 8080, access.Allow)
}

func TestDecide_IPMatchesAreNotDecided(t *testing.T) {
	p := policy("app", "ips", security.Scope_NAMESPACE, security.Action_ALLOW,
		group([]*security.Match{{SourceIps: []*security.Address{{Address: []byte{10, 0, 0, 1}, Length: 32}}}}))
	decideFor(t, NewConfig([]*security.Authorization{p}, nil), pod("app", "api", 8080), caller("app", "x"), 8080, access.Undecided, "app/ips")
}

func TestStringMatch_FollowsStringToMatch(t *testing.T) {
	for _, c := range []struct {
		m    *security.StringMatch
		v    string
		want bool
	}{
		{&security.StringMatch{MatchType: &security.StringMatch_Exact{Exact: "a"}}, "a", true},
		{&security.StringMatch{MatchType: &security.StringMatch_Exact{Exact: "a"}}, "ab", false},
		{&security.StringMatch{MatchType: &security.StringMatch_Prefix{Prefix: "team-"}}, "team-a", true},
		{&security.StringMatch{MatchType: &security.StringMatch_Suffix{Suffix: "/sa/admin"}}, "cluster.local/ns/x/sa/admin", true},
		{&security.StringMatch{MatchType: &security.StringMatch_Suffix{Suffix: "/sa/admin"}}, "cluster.local/ns/x/sa/web", false},
		{presence()[0], "x", true},
		{presence()[0], "", false},
	} {
		if got := stringMatch(c.m, c.v); got != c.want {
			t.Errorf("%v on %q: got %v, want %v", c.m, c.v, got, c.want)
		}
	}
}
