package proof

import (
	"slices"
	"testing"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacconfig "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbachttp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

func rbacFilter(t *testing.T, action rbacconfig.RBAC_Action, names ...string) *hcm.HttpFilter {
	t.Helper()
	rules := &rbacconfig.RBAC{Action: action, Policies: map[string]*rbacconfig.Policy{}}
	for _, n := range names {
		rules.Policies[n] = &rbacconfig.Policy{}
	}
	return &hcm.HttpFilter{Name: "envoy.filters.http.rbac", ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: packed(t, &rbachttp.RBAC{Rules: rules})}}
}

func packed(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestChainPolicies_NamesTheAllowAndDenyPoliciesOfTheRBACFilters(t *testing.T) {
	// Names as builder.go's policyName writes them: one per rule; CUSTOM
	// ones carry the ext-authz prefix; AUDIT policies sit in a LOG filter.
	h := &hcm.HttpConnectionManager{HttpFilters: []*hcm.HttpFilter{
		rbacFilter(t, rbacconfig.RBAC_DENY, "ns[shop]-policy[no-delete]-rule[0]"),
		rbacFilter(t, rbacconfig.RBAC_ALLOW, "ns[shop]-policy[orders-l7]-rule[0]", "ns[shop]-policy[orders-l7]-rule[1]", "ns[istio-system]-policy[mesh]-rule[0]"),
		rbacFilter(t, rbacconfig.RBAC_LOG, "ns[shop]-policy[audit]-rule[0]"),
		rbacFilter(t, rbacconfig.RBAC_ALLOW, "istio-ext-authz-ns[shop]-policy[custom]-rule[0]"),
	}}
	fc := &listener.FilterChain{Name: "inbound-vip|8080|http|orders.shop.svc.cluster.local", Filters: []*listener.Filter{
		{Name: "envoy.filters.network.http_connection_manager", ConfigType: &listener.Filter_TypedConfig{TypedConfig: packed(t, h)}},
	}}
	got, err := chainPolicies(fc)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"istio-system/mesh", "shop/no-delete", "shop/orders-l7"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
