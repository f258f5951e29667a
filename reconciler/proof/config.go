package proof

import (
	"bytes"
	"sort"

	"istio.io/istio/pkg/workloadapi"
	"istio.io/istio/pkg/workloadapi/security"
)

// Config is what istiod serves to ztunnel: its authorization policies, and
// the workloads and Services of the Address resources.
type Config struct {
	// Policies by namespace/name, the xDS resource name.
	Policies map[string]*security.Authorization
	// Services by namespace/hostname, the xDS resource name.
	Services  map[string]*workloadapi.Service
	Workloads []*workloadapi.Workload

	// applies caches, by workload uid, the policies that apply to it.
	applies map[string]applied
	// byName holds the Service keys by namespace/name.
	byName map[string]string
	// endpointsOf caches, by Service key, the workloads behind it.
	endpointsOf map[string][]*workloadapi.Workload
}

// NewConfig indexes resources as istiod sent them.
func NewConfig(policies []*security.Authorization, addresses []*workloadapi.Address) *Config {
	c := &Config{Policies: map[string]*security.Authorization{}, Services: map[string]*workloadapi.Service{},
		applies: map[string]applied{}, byName: map[string]string{}}
	for _, p := range policies {
		c.Policies[p.GetNamespace()+"/"+p.GetName()] = p
	}
	for _, a := range addresses {
		switch {
		case a.GetService() != nil:
			s := a.GetService()
			c.Services[s.GetNamespace()+"/"+s.GetHostname()] = s
			c.byName[s.GetNamespace()+"/"+s.GetName()] = s.GetNamespace() + "/" + s.GetHostname()
		case a.GetWorkload() != nil:
			c.Workloads = append(c.Workloads, a.GetWorkload())
		}
	}
	sort.Slice(c.Workloads, func(i, j int) bool { return c.Workloads[i].GetUid() < c.Workloads[j].GetUid() })
	c.endpointsOf = map[string][]*workloadapi.Workload{}
	for _, w := range c.Workloads {
		for key := range w.GetServices() {
			c.endpointsOf[key] = append(c.endpointsOf[key], w)
		}
	}
	return c
}

// service finds a Kubernetes Service by namespace and name.
func (c *Config) service(namespace, name string) (string, *workloadapi.Service) {
	key := c.byName[namespace+"/"+name]
	return key, c.Services[key]
}

// endpoints lists the workloads that serve the Service keyed key.
func (c *Config) endpoints(key string) []*workloadapi.Workload { return c.endpointsOf[key] }

// gateway resolves a waypoint address to its Service, by hostname or by one
// of the Service's addresses.
func (c *Config) gateway(g *workloadapi.GatewayAddress) (string, *workloadapi.Service) {
	if h := g.GetHostname(); h != nil {
		key := h.GetNamespace() + "/" + h.GetHostname()
		return key, c.Services[key]
	}
	addr := g.GetAddress()
	for key, s := range c.Services {
		for _, a := range s.GetAddresses() {
			if a.GetNetwork() == addr.GetNetwork() && bytes.Equal(a.GetAddress(), addr.GetAddress()) {
				return key, s
			}
		}
	}
	return "", nil
}

// targetPort is the port ztunnel sees for servicePort on w: the workload's
// own mapping, else the Service's.
func targetPort(w *workloadapi.Workload, key string, svc *workloadapi.Service, servicePort uint32) (uint32, bool) {
	for _, ports := range [][]*workloadapi.Port{w.GetServices()[key].GetPorts(), svc.GetPorts()} {
		for _, p := range ports {
			if p.GetServicePort() == servicePort && p.GetTargetPort() != 0 {
				return p.GetTargetPort(), true
			}
		}
	}
	return 0, false
}
