package meshspec

import (
	"reflect"
	"testing"
	"time"
)

func TestComplete_AppliesDocumentedDefaults(t *testing.T) {
	set := mustLoad(t, "t.yaml", lines(
		"apiVersion: meshcd.dev/v1alpha1",
		"kind: MeshNamespace",
		"metadata: {name: shop}",
		"spec: {waypoint: {}}",
		"---",
		"apiVersion: meshcd.dev/v1alpha1",
		"kind: MeshNamespace",
		"metadata: {name: pods}",
		"spec: {waypoint: {for: workload}}",
		"---",
		"apiVersion: meshcd.dev/v1alpha1",
		"kind: MeshNamespace",
		"metadata: {name: plain}",
		"---",
		"apiVersion: meshcd.dev/v1alpha1",
		"kind: MeshService",
		"metadata: {name: orders, namespace: shop}",
		"spec:",
		"  port: 8080",
		"  selector: {app: orders}",
		"  resilience: {retries: {attempts: 2}}",
		"  circuitBreaker: {consecutive5xxErrors: 5}",
		"---",
		"apiVersion: meshcd.dev/v1alpha1",
		"kind: DataplaneRollout",
		"metadata: {name: proxies}",
		"spec:",
		"  bundle: 1.31.1",
		"  waypoints: {stages: [{name: all, namespaces: ['*']}]}",
		"  ztunnel: {}",
	))
	if err := set.Complete(DefaultRootNamespace); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]MeshNamespaceSpec{
		"shop":  {Dataplane: DataplaneAmbient, Waypoint: &Waypoint{Name: DefaultWaypointName, For: WaypointForService}, UseWaypoint: UseWaypointNamespace},
		"pods":  {Dataplane: DataplaneAmbient, Waypoint: &Waypoint{Name: DefaultWaypointName, For: WaypointForWorkload}, UseWaypoint: UseWaypointNone},
		"plain": {Dataplane: DataplaneAmbient, UseWaypoint: UseWaypointNone},
	} {
		if got := set.Namespace(name).Spec; !reflect.DeepEqual(got, want) {
			t.Errorf("MeshNamespace %s:\n got %+v\nwant %+v", name, got, want)
		}
	}
	svc := set.Services[0].Spec
	if svc.TargetPort != 8080 {
		t.Errorf("targetPort: got %d, want the port 8080", svc.TargetPort)
	}
	if !reflect.DeepEqual(svc.Resilience.Retries.On, DefaultRetryOn) {
		t.Errorf("retries.on: got %v, want %v", svc.Resilience.Retries.On, DefaultRetryOn)
	}
	cb := svc.CircuitBreaker
	if cb.Interval.Duration != 10*time.Second || cb.BaseEjection.Duration != 30*time.Second || cb.MaxEjectionPercent != 50 {
		t.Errorf("circuitBreaker: got interval %v, baseEjection %v, maxEjectionPercent %d", cb.Interval, cb.BaseEjection, cb.MaxEjectionPercent)
	}
	r := set.Rollouts[0].Spec
	if r.Waypoints.Stages[0].Approval != ApprovalAuto || r.Ztunnel.Strategy != ZtunnelNodeByNode || r.Ztunnel.MaxUnavailable != 1 {
		t.Errorf("rollout: got approval %q, strategy %q, maxUnavailable %d", r.Waypoints.Stages[0].Approval, r.Ztunnel.Strategy, r.Ztunnel.MaxUnavailable)
	}
	if got := set.WaypointOf(set.Services[0]); got == nil || got.Name != DefaultWaypointName {
		t.Errorf("WaypointOf(orders): got %+v", got)
	}
}

func TestComplete_KeepsWrittenValuesAndLeavesEjectionOffUntouched(t *testing.T) {
	set := mustLoad(t, "t.yaml", lines(
		"apiVersion: meshcd.dev/v1alpha1",
		"kind: MeshNamespace",
		"metadata: {name: shop}",
		"spec: {dataplane: ambient, waypoint: {name: wp, for: all}, useWaypoint: services}",
		"---",
		"apiVersion: meshcd.dev/v1alpha1",
		"kind: MeshService",
		"metadata: {name: orders, namespace: shop}",
		"spec:",
		"  port: 8080",
		"  targetPort: 9090",
		"  selector: {app: orders}",
		"  resilience: {retries: {attempts: 2, on: [5xx]}}",
		"  circuitBreaker: {maxConnections: 10}",
	))
	if err := set.Complete(DefaultRootNamespace); err != nil {
		t.Fatal(err)
	}
	ns := set.Namespaces[0].Spec
	if ns.Waypoint.Name != "wp" || ns.Waypoint.For != WaypointForAll || ns.UseWaypoint != UseWaypointServices {
		t.Errorf("namespace: got %+v %+v", ns, ns.Waypoint)
	}
	svc := set.Services[0].Spec
	if svc.TargetPort != 9090 || !reflect.DeepEqual(svc.Resilience.Retries.On, []string{"5xx"}) {
		t.Errorf("service: got targetPort %d, on %v", svc.TargetPort, svc.Resilience.Retries.On)
	}
	if cb := svc.CircuitBreaker; cb.Interval != nil || cb.BaseEjection != nil || cb.MaxEjectionPercent != 0 {
		t.Errorf("ejection defaults applied without consecutive5xxErrors: %+v", cb)
	}
}

func TestComplete_RefusesL7IntentWithoutWaypoint(t *testing.T) {
	set := mustLoad(t, "t.yaml", lines(
		"apiVersion: meshcd.dev/v1alpha1",
		"kind: MeshNamespace",
		"metadata: {name: shop}",
		"spec: {mtls: STRICT}",
		"---",
		"apiVersion: meshcd.dev/v1alpha1",
		"kind: MeshService",
		"metadata: {name: orders, namespace: shop}",
		"spec:",
		"  port: 8080",
		"  selector: {app: orders}",
		"  versions: {v1: {version: v1}}",
		"  routes:",
		"    - backends: {v1: 100}",
		"  access:",
		"    - from: {namespaces: [web]}",
		"    - from: {namespaces: [web]}",
		"      methods: [GET]",
		"  jwt: {issuer: https://id.example.com, jwksUri: https://id.example.com/keys}",
		"---",
		"apiVersion: meshcd.dev/v1alpha1",
		"kind: MeshService",
		"metadata: {name: stock, namespace: depot}",
		"spec:",
		"  port: 8080",
		"  selector: {app: stock}",
		"  access: [{from: {namespaces: [web]}, paths: [/admin]}]",
	))
	err := set.Complete(DefaultRootNamespace)
	fix := "add a waypoint to MeshNamespace shop (spec.waypoint, with useWaypoint namespace or services)"
	// Complete reports services in namespace/name order.
	wantErrors(t, err,
		[2]string{"t.yaml:27:12: MeshService depot/stock: spec.access[0]: ", "declare MeshNamespace depot with a waypoint"},
		[2]string{"t.yaml:13:3: MeshService shop/orders: spec.routes: ", "routing needs a waypoint, and traffic to this Service uses none; " + fix},
		[2]string{"t.yaml:17:7: MeshService shop/orders: spec.access[1]: ", "an access rule with methods or paths (L7) needs a waypoint"},
		[2]string{"t.yaml:19:3: MeshService shop/orders: spec.jwt: ", "JWT validation needs a waypoint"},
	)
}

func TestComplete_RefusesL7IntentBehindWorkloadOnlyWaypoint(t *testing.T) {
	set := mustLoad(t, "t.yaml", lines(
		"apiVersion: meshcd.dev/v1alpha1",
		"kind: MeshNamespace",
		"metadata: {name: shop}",
		"spec: {waypoint: {for: workload}}",
		"---",
		"apiVersion: meshcd.dev/v1alpha1",
		"kind: MeshService",
		"metadata: {name: orders, namespace: shop}",
		"spec: {port: 80, selector: {app: orders}, circuitBreaker: {maxConnections: 1}}",
	))
	wantErrors(t, set.Complete(DefaultRootNamespace),
		[2]string{"t.yaml:9:43: MeshService shop/orders: spec.circuitBreaker: ", "circuit breaking needs a waypoint"})
}

func TestComplete_RefusesAmbientRootNamespace(t *testing.T) {
	set := mustLoad(t, "mesh.yaml", lines(
		"apiVersion: meshcd.dev/v1alpha1",
		"kind: MeshNamespace",
		"metadata: {name: istio-system}",
		"spec:",
		"  dataplane: ambient",
		"  mtls: STRICT",
	))
	wantErrors(t, set.Complete(DefaultRootNamespace),
		[2]string{"mesh.yaml:5:3: MeshNamespace istio-system: spec.dataplane: ", "istio-system is the mesh root namespace and is never enrolled; remove dataplane"})
}

func TestComplete_RootNamespaceStatesMeshPostureOnly(t *testing.T) {
	set := mustLoad(t, "mesh.yaml", lines(
		"apiVersion: meshcd.dev/v1alpha1",
		"kind: MeshNamespace",
		"metadata: {name: mesh-root}",
		"spec: {mtls: STRICT, defaultDeny: true}",
	))
	if err := set.Complete("mesh-root"); err != nil {
		t.Fatal(err)
	}
	want := MeshNamespaceSpec{Dataplane: DataplaneNone, UseWaypoint: UseWaypointNone, MTLS: MTLSStrict, DefaultDeny: true}
	if got := set.Namespaces[0].Spec; !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
