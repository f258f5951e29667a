package meshspec

import (
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultRetryOn is what retries.on means when it is empty.
var DefaultRetryOn = []string{"connect-failure", "refused-stream", "unavailable", "cancelled", "503"}

// Complete applies the documented defaults and checks what spans documents:
// that every service needing a waypoint has one. rootNamespace is the mesh
// root namespace, whose MeshNamespace states the mesh-wide posture.
func (s *Set) Complete(rootNamespace string) error {
	s.Sort()
	var errs []error
	for _, n := range s.Namespaces {
		if err := s.completeNamespace(n, rootNamespace); err != nil {
			errs = append(errs, err)
		}
	}
	for _, svc := range s.Services {
		defaultService(svc)
		if err := s.checkWaypoint(svc); err != nil {
			errs = append(errs, err)
		}
	}
	for _, r := range s.Rollouts {
		defaultRollout(r)
	}
	sortErrors(errs)
	return errors.Join(errs...)
}

func (s *Set) completeNamespace(n *MeshNamespace, root string) error {
	sp := &n.Spec
	if n.Name == root {
		p := &problems{d: s.docs[nsRef(n.Name)], object: KindMeshNamespace + " " + n.Name}
		if sp.Dataplane == DataplaneAmbient {
			p.add("spec.dataplane", "%s is the mesh root namespace and is never enrolled; remove dataplane", root)
		}
		if sp.Waypoint != nil {
			p.add("spec.waypoint", "%s is the mesh root namespace and takes no waypoint; remove it", root)
		}
		sp.Dataplane = DataplaneNone
		sp.UseWaypoint = UseWaypointNone
		return p.err()
	}
	if sp.Dataplane == "" {
		sp.Dataplane = DataplaneAmbient
	}
	if w := sp.Waypoint; w != nil {
		if w.Name == "" {
			w.Name = DefaultWaypointName
		}
		if w.For == "" {
			w.For = WaypointForService
		}
	}
	if sp.UseWaypoint == "" {
		sp.UseWaypoint = UseWaypointNone
		if sp.Waypoint != nil && sp.Waypoint.For.ServesServices() {
			sp.UseWaypoint = UseWaypointNamespace
		}
	}
	if sp.WaypointOnly && sp.Waypoint != nil && sp.UseWaypoint != UseWaypointNamespace {
		p := &problems{d: s.docs[nsRef(n.Name)], object: KindMeshNamespace + " " + n.Name}
		p.add("spec.waypointOnly", "the waypoint-only guard covers every pod of the namespace, so all Service traffic must use the waypoint; set useWaypoint: namespace (with a waypoint for service or all), or guard single services with MeshService spec.waypointOnly")
		return p.err()
	}
	return nil
}

func defaultService(svc *MeshService) {
	sp := &svc.Spec
	if sp.TargetPort == 0 {
		sp.TargetPort = sp.Port
	}
	if r := sp.Resilience; r != nil && r.Retries != nil && len(r.Retries.On) == 0 {
		r.Retries.On = append([]string(nil), DefaultRetryOn...)
	}
	if c := sp.CircuitBreaker; c != nil && c.Consecutive5xxErrors > 0 {
		if c.Interval == nil {
			c.Interval = &metav1.Duration{Duration: 10 * time.Second}
		}
		if c.BaseEjection == nil {
			c.BaseEjection = &metav1.Duration{Duration: 30 * time.Second}
		}
		if c.MaxEjectionPercent == 0 {
			c.MaxEjectionPercent = 50
		}
	}
}

func defaultRollout(r *DataplaneRollout) {
	if w := r.Spec.Waypoints; w != nil {
		for i := range w.Stages {
			st := &w.Stages[i]
			if st.Approval == "" {
				st.Approval = ApprovalAuto
			}
			if st.Strategy == "" {
				st.Strategy = StrategyReplace
			}
			if st.Strategy == StrategyCanary && len(st.Steps) == 0 {
				st.Steps = append([]int32(nil), DefaultCanarySteps...)
			}
		}
	}
	if z := r.Spec.Ztunnel; z != nil {
		if z.Strategy == "" {
			z.Strategy = ZtunnelNodeByNode
		}
		if z.MaxUnavailable == 0 {
			z.MaxUnavailable = 1
		}
	}
}

// WaypointOf returns the waypoint that traffic to svc goes through, or nil
// when svc uses none. Call it after Complete.
func (s *Set) WaypointOf(svc *MeshService) *Waypoint {
	n := s.Namespace(svc.Namespace)
	if n == nil || n.Spec.Waypoint == nil || !n.Spec.Waypoint.For.ServesServices() {
		return nil
	}
	switch n.Spec.UseWaypoint {
	case UseWaypointNamespace, UseWaypointServices:
		return n.Spec.Waypoint
	}
	return nil
}

// checkWaypoint refuses L7 intent on a service that has no waypoint: ztunnel
// would drop it silently.
func (s *Set) checkWaypoint(svc *MeshService) error {
	if s.WaypointOf(svc) != nil {
		return nil
	}
	p := &problems{d: s.docs[svcRef(svc.Namespace, svc.Name)], object: KindMeshService + " " + svc.Namespace + "/" + svc.Name}
	fix := "add a waypoint to MeshNamespace " + svc.Namespace + " (spec.waypoint, with useWaypoint namespace or services)"
	if s.Namespace(svc.Namespace) == nil {
		fix = "declare MeshNamespace " + svc.Namespace + " with a waypoint"
	}
	sp := &svc.Spec
	needs := func(path, what string) {
		p.add(path, "%s needs a waypoint, and traffic to this Service uses none; %s", what, fix)
	}
	if len(sp.Routes) > 0 {
		needs("spec.routes", "routing")
	}
	if sp.Resilience != nil {
		needs("spec.resilience", "timeouts and retries")
	}
	if sp.CircuitBreaker != nil {
		needs("spec.circuitBreaker", "circuit breaking")
	}
	if sp.Faults != nil {
		needs("spec.faults", "fault injection")
	}
	if sp.JWT != nil {
		needs("spec.jwt", "JWT validation")
	}
	if sp.WaypointOnly {
		needs("spec.waypointOnly", "the waypoint-only guard")
	}
	for i, r := range sp.Access {
		if r.IsL7() {
			needs(fmt.Sprintf("spec.access[%d]", i), "an access rule with methods or paths (L7)")
		}
	}
	return p.err()
}
