package proof

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacconfig "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbachttp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	"github.com/meshcd/meshcd/access"
)

// Attachment is which policies a waypoint enforces for one Service port, as
// the model attaches them and as istiod wrote them into the waypoint's
// RBAC filters.
type Attachment struct {
	Waypoint string             `json:"waypoint"`
	To       access.Destination `json:"to"`
	Model    []string           `json:"model"`
	Istiod   []string           `json:"istiod"`
}

// waypointChains are the policies in a waypoint's RBAC rules, by the
// filter chain of each Service port it serves: "inbound-vip|PORT|http|HOST"
// in its main_internal listener (pilot/pkg/networking/core/waypoint.go).
type waypointChains map[string][]string

// ruleName is how istiod names an RBAC policy built from a rule
// (pilot/pkg/security/authz/builder/builder.go, policyName); CUSTOM rules
// carry a prefix and are not matched.
var ruleName = regexp.MustCompile(`^ns\[([^\]]+)\]-policy\[([^\]]+)\]-rule\[\d+\]$`)

// fetchWaypoint reads the listeners istiod serves to one pod of the
// waypoint Service key, presenting itself as that pod.
func (c *Config) fetchWaypoint(ctx context.Context, src Source, key string) (waypointChains, error) {
	svc := c.Services[key]
	var podIP netip.Addr
	var pod string
	for _, w := range c.endpoints(key) {
		if a, ok := netip.AddrFromSlice(firstAddress(w.GetAddresses())); ok {
			podIP, pod = a, w.GetName()
			break
		}
	}
	if pod == "" {
		return nil, fmt.Errorf("waypoint %s/%s has no pod with an address in istiod's config", svc.GetNamespace(), svc.GetName())
	}
	ns := svc.GetNamespace()
	node := fmt.Sprintf("waypoint~%s~%s.%s~%s.svc.cluster.local", podIP, pod, ns, ns)
	meta := map[string]any{"NAMESPACE": ns, "LABELS": map[string]any{
		"gateway.networking.k8s.io/gateway-name": svc.GetName(), "gateway.istio.io/managed": "istio.io-mesh-controller",
	}}
	chains := waypointChains{}
	err := subscribe(ctx, src, node, meta, []string{listenerType}, func(_ string, r *discovery.Resource) error {
		l := &listener.Listener{}
		if err := r.GetResource().UnmarshalTo(l); err != nil {
			return err
		}
		for _, fc := range l.GetFilterChains() {
			if !strings.HasPrefix(fc.GetName(), "inbound-vip|") {
				continue
			}
			refs, err := chainPolicies(fc)
			if err != nil {
				return err
			}
			chains[fc.GetName()] = refs
		}
		return nil
	})
	return chains, err
}

func firstAddress(addrs [][]byte) []byte {
	if len(addrs) == 0 {
		return nil
	}
	return addrs[0]
}

// chainPolicies names, NS/NAME, the policies of the ALLOW and DENY RBAC
// filters of a filter chain's HTTP connection manager.
func chainPolicies(fc *listener.FilterChain) ([]string, error) {
	refs := []string{}
	for _, f := range fc.GetFilters() {
		h := &hcm.HttpConnectionManager{}
		if !f.GetTypedConfig().MessageIs(h) {
			continue
		}
		if err := f.GetTypedConfig().UnmarshalTo(h); err != nil {
			return nil, err
		}
		for _, hf := range h.GetHttpFilters() {
			rb := &rbachttp.RBAC{}
			if hf.GetTypedConfig().MessageIs(rb) {
				if err := hf.GetTypedConfig().UnmarshalTo(rb); err != nil {
					return nil, err
				}
				refs = appendPolicies(refs, rb.GetRules())
			}
		}
	}
	slices.Sort(refs)
	return refs, nil
}

// appendPolicies adds the policies istiod named in rules, when they allow
// or deny.
func appendPolicies(refs []string, rules *rbacconfig.RBAC) []string {
	if a := rules.GetAction(); a != rbacconfig.RBAC_ALLOW && a != rbacconfig.RBAC_DENY {
		return refs
	}
	for name := range rules.GetPolicies() {
		if m := ruleName.FindStringSubmatch(name); m != nil && !slices.Contains(refs, m[1]+"/"+m[2]) {
			refs = append(refs, m[1]+"/"+m[2])
		}
	}
	return refs
}

// compareWaypoints reads the configuration of every waypoint the model
// routes an HTTP Service port through and compares the policies it enforces
// for that port with the model's.
func compareWaypoints(ctx context.Context, src Source, m *access.Model, c *Config) (agreed int, mismatches []Attachment, err error) {
	fetched := map[string]waypointChains{}
	for _, d := range m.Destinations() {
		gw, refs := m.WaypointPolicies(d)
		if gw == "" {
			continue
		}
		key, svc := c.service(d.Namespace, d.Service)
		gwNamespace, gwName, _ := strings.Cut(gw, "/")
		wkey, _ := c.service(gwNamespace, gwName)
		if svc == nil || wkey == "" {
			continue // the ztunnel comparison reports what istiod lacks
		}
		chains, ok := fetched[wkey]
		if !ok {
			if chains, err = c.fetchWaypoint(ctx, src, wkey); err != nil {
				return 0, nil, err
			}
			fetched[wkey] = chains
		}
		host := strings.TrimPrefix(key, d.Namespace+"/")
		istiod, ok := chains[fmt.Sprintf("inbound-vip|%d|http|%s", d.Port, host)]
		if !ok {
			continue // a TCP port: rules with HTTP fields are left out of it
		}
		if slices.Equal(refs, istiod) {
			agreed++
			continue
		}
		mismatches = append(mismatches, Attachment{Waypoint: gw, To: d, Model: refs, Istiod: istiod})
	}
	return agreed, mismatches, nil
}
