package meshspec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// lines joins YAML lines, so a test reads with its line numbers in mind.
func lines(l ...string) []byte { return []byte(strings.Join(l, "\n") + "\n") }

func mustLoad(t *testing.T, file string, data []byte) *Set {
	t.Helper()
	set, err := Load(file, data)
	if err != nil {
		t.Fatalf("Load(%s): %v", file, err)
	}
	return set
}

func loadFile(t *testing.T, path string) *Set {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return mustLoad(t, filepath.Base(path), data)
}

// errorLines returns the lines of err's message, or fails when err is nil.
func errorLines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		t.Fatal("want an error, got none")
	}
	return strings.Split(err.Error(), "\n")
}

// wantErrors checks that each error line starts with the wanted prefix
// ("file:line:col: Object: field: ") and contains the wanted fragment.
func wantErrors(t *testing.T, err error, want ...[2]string) {
	t.Helper()
	got := errorLines(t, err)
	if len(got) != len(want) {
		t.Fatalf("want %d errors, got %d:\n%s", len(want), len(got), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w[0]) || !strings.Contains(got[i], w[1]) {
			t.Errorf("error %d:\n got %s\nwant prefix %q containing %q", i, got[i], w[0], w[1])
		}
	}
}

const (
	svcHead = "apiVersion: meshcd.dev/v1alpha1\nkind: MeshService\nmetadata: {name: orders, namespace: shop}\nspec:"
	nsHead  = "apiVersion: meshcd.dev/v1alpha1\nkind: MeshNamespace\nmetadata: {name: shop}\nspec:"
)

func TestLoad_DecodesMeshNamespace(t *testing.T) {
	set := loadFile(t, "testdata/namespace.yaml")
	if len(set.Namespaces) != 1 || set.Len() != 1 {
		t.Fatalf("want one MeshNamespace, got %+v", set)
	}
	n := set.Namespaces[0]
	want := MeshNamespaceSpec{
		Dataplane:   DataplaneAmbient,
		Waypoint:    &Waypoint{Name: "waypoint", For: WaypointForService, Revision: "stable"},
		UseWaypoint: UseWaypointNamespace,
		MTLS:        MTLSStrict,
		DefaultDeny: true,
	}
	if n.Name != "shop" || n.Labels["team"] != "shop" || n.Kind != KindMeshNamespace || n.APIVersion != APIVersion {
		t.Errorf("metadata: got %+v %+v", n.TypeMeta, n.ObjectMeta)
	}
	if !reflect.DeepEqual(n.Spec, want) {
		t.Errorf("spec:\n got %+v\nwant %+v", n.Spec, want)
	}
}

func TestLoad_DecodesMeshService(t *testing.T) {
	set := loadFile(t, "testdata/service.yaml")
	if len(set.Services) != 1 {
		t.Fatalf("want one MeshService, got %d", len(set.Services))
	}
	s := set.Services[0]
	if s.Namespace != "shop" || s.Name != "orders" || s.Annotations["owner"] != "orders-team" {
		t.Errorf("metadata: got %+v", s.ObjectMeta)
	}
	sp := s.Spec
	if sp.Port != 8080 || sp.TargetPort != 9080 || sp.Selector["app"] != "orders" || sp.Versions["v2"]["version"] != "v2" {
		t.Errorf("ports, selector or versions: got %+v", sp)
	}
	wantRoutes := []Route{
		{Match: &Match{Headers: map[string]string{"x-canary": "always"}, PathPrefix: "/api", Method: "GET"}, Backends: map[string]int32{"v2": 100}},
		{Backends: map[string]int32{"v1": 90, "v2": 10}},
	}
	if !reflect.DeepEqual(sp.Routes, wantRoutes) {
		t.Errorf("routes:\n got %+v\nwant %+v", sp.Routes, wantRoutes)
	}
	r := sp.Resilience
	if r.Timeout.Duration != 2*time.Second || r.Retries.Attempts != 3 || r.Retries.PerTryTimeout.Duration != 500*time.Millisecond || !reflect.DeepEqual(r.Retries.On, []string{"5xx", "reset", "connect-failure"}) {
		t.Errorf("resilience: got %+v %+v", r, r.Retries)
	}
	c := sp.CircuitBreaker
	if c.MaxConnections != 100 || c.MaxPendingRequests != 10 || c.Consecutive5xxErrors != 5 || c.Interval.Duration != 10*time.Second || c.BaseEjection.Duration != 30*time.Second || c.MaxEjectionPercent != 20 {
		t.Errorf("circuitBreaker: got %+v", c)
	}
	wantAccess := []AccessRule{{
		From:    Source{ServiceAccounts: []string{"shop/web"}, Namespaces: []string{"checkout"}, IPBlocks: []string{"10.0.0.0/8"}},
		Ports:   []int32{8080},
		Methods: []string{"GET", "POST"},
		Paths:   []string{"/api/*"},
	}}
	if !reflect.DeepEqual(sp.Access, wantAccess) {
		t.Errorf("access:\n got %+v\nwant %+v", sp.Access, wantAccess)
	}
	wantJWT := &JWT{Issuer: "https://accounts.example.com", JWKSURI: "https://accounts.example.com/.well-known/jwks.json", Audiences: []string{"orders"}, Required: true}
	if !reflect.DeepEqual(sp.JWT, wantJWT) {
		t.Errorf("jwt: got %+v", sp.JWT)
	}
}

func TestLoad_DecodesFaults(t *testing.T) {
	set := loadFile(t, "testdata/faults.yaml")
	f := set.Services[0].Spec.Faults
	if f == nil || f.Delay.Percent != 25 || f.Delay.Fixed.Duration != 3*time.Second || f.Abort.Percent != 10.5 || f.Abort.Status != 503 {
		t.Errorf("faults: got %+v", f)
	}
}

func TestLoad_DecodesDataplaneRollout(t *testing.T) {
	set := loadFile(t, "testdata/rollout.yaml")
	if len(set.Rollouts) != 1 {
		t.Fatalf("want one DataplaneRollout, got %d", len(set.Rollouts))
	}
	sp := set.Rollouts[0].Spec
	if sp.Bundle != "1.31.1" || sp.Promote != "rest" || sp.Ztunnel.Strategy != ZtunnelNodeByNode || sp.Ztunnel.MaxUnavailable != 2 {
		t.Errorf("bundle, promote or ztunnel: got %+v %+v", sp, sp.Ztunnel)
	}
	st := sp.Waypoints.Stages
	if len(st) != 3 {
		t.Fatalf("want 3 stages, got %d", len(st))
	}
	if st[0].Name != "canary" || !st[0].Gates.Programmed || !st[0].Gates.Ready || st[0].Gates.Soak.Duration != 5*time.Minute {
		t.Errorf("stage canary: got %+v %+v", st[0], st[0].Gates)
	}
	sel := st[1].Selector
	if sel.MatchLabels["tier"] != "web" || sel.MatchExpressions[0].Key != "env" || string(sel.MatchExpressions[0].Operator) != "In" || sel.MatchExpressions[0].Values[0] != "prod" {
		t.Errorf("stage labelled: got %+v", sel)
	}
	if st[2].Approval != ApprovalManual || st[2].Namespaces[0] != "*" {
		t.Errorf("stage rest: got %+v", st[2])
	}
}

func TestLoad_PassesPlainManifestsThroughUntouched(t *testing.T) {
	set := loadFile(t, "testdata/mixed.yaml")
	if len(set.Namespaces) != 1 || len(set.Services) != 1 || len(set.Manifests) != 2 {
		t.Fatalf("want 1 namespace, 1 service, 2 manifests; got %d, %d, %d", len(set.Namespaces), len(set.Services), len(set.Manifests))
	}
	svc := set.Manifests[0].Object
	wantSvc := map[string]any{
		"apiVersion": "v1",
		"kind":       "Service",
		"metadata":   map[string]any{"name": "orders", "namespace": "shop", "labels": map[string]any{"app": "orders"}},
		"spec": map[string]any{
			"selector": map[string]any{"app": "orders"},
			"ports":    []any{map[string]any{"name": "http", "port": int64(8080), "targetPort": int64(8080)}},
		},
	}
	if !reflect.DeepEqual(svc, wantSvc) {
		t.Errorf("Service:\n got %#v\nwant %#v", svc, wantSvc)
	}
	dep := set.Manifests[1]
	labels := map[string]any{"app": "orders", "version": "v1"}
	tmpl := dep.Object["spec"].(map[string]any)["template"].(map[string]any)
	if got := tmpl["metadata"].(map[string]any)["labels"]; !reflect.DeepEqual(got, labels) {
		t.Errorf("alias *labels: got %#v, want %#v", got, labels)
	}
	c := tmpl["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	wantRes := map[string]any{"limits": map[string]any{"cpu": 0.5, "memory": "64Mi"}}
	wantEnv := []any{map[string]any{"name": "DEBUG", "value": "false"}, map[string]any{"name": "ENABLED", "value": nil}}
	if !reflect.DeepEqual(c["resources"], wantRes) || !reflect.DeepEqual(c["env"], wantEnv) {
		t.Errorf("container: got %#v", c)
	}
	if pos, ok := set.Origin(RefOf(dep)); !ok || pos.String() != "mixed.yaml:20:1" {
		t.Errorf("Deployment origin: got %v %v, want mixed.yaml:20:1", pos, ok)
	}
}

func TestLoad_RecordsFieldPositionsAtTheKey(t *testing.T) {
	set := loadFile(t, "testdata/service.yaml")
	ref := Ref{Group: Group, Kind: KindMeshService, Namespace: "shop", Name: "orders"}
	for path, want := range map[string]string{
		"spec.routes[0].match":         "service.yaml:16:7",
		"spec.routes[1].backends.v2":   "service.yaml:21:26",
		"spec.resilience.retries":      "service.yaml:24:5",
		"spec.jwt.audiences[0]":        "service.yaml:34:17",
		"spec.jwt.notWritten":          "service.yaml:31:3",
		"spec.resilience.timeout.more": "service.yaml:23:5",
	} {
		if got := set.FieldOrigin(ref, path).String(); got != want {
			t.Errorf("FieldOrigin(%s) = %s, want %s", path, got, want)
		}
	}
}

func TestLoad_RefusesWithPositionObjectAndPath(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want [][2]string
	}{{
		name: "UnknownNestedFieldNamesLineAndPath",
		data: lines(svcHead,
			"  port: 8080",
			"  selector: {app: orders}",
			"  versions: {v1: {version: v1}}",
			"  routes:",
			"    - match:",
			"        headerz: {x-canary: always}",
			"      backends: {v1: 100}"),
		want: [][2]string{{`t.yaml:10:9: MeshService shop/orders: spec.routes[0].match.headerz: `, "unknown field; did you mean headers? `meshcd explain MeshService.spec.routes.match` lists the fields"}},
	}, {
		name: "UnknownMetadataFieldAndTopLevelField",
		data: lines(
			"apiVersion: meshcd.dev/v1alpha1",
			"kind: MeshNamespace",
			"metadata: {name: shop, uid: x}",
			"status: {}"),
		want: [][2]string{
			{`t.yaml:3:24: MeshNamespace shop: metadata.uid: `, `only name, namespace, labels and annotations`},
			{`t.yaml:4:1: MeshNamespace shop: status: `, "unknown field; `meshcd explain MeshNamespace` lists the fields"},
		},
	}, {
		name: "StringForInt",
		data: lines(svcHead, `  port: "8080"`, "  selector: {app: orders}"),
		want: [][2]string{{`t.yaml:5:9: MeshService shop/orders: spec.port: `, `"8080" is not a whole number`}},
	}, {
		name: "ListForMap",
		data: lines(svcHead, "  port: 8080", "  selector: [app, orders]"),
		want: [][2]string{{`t.yaml:6:13: MeshService shop/orders: spec.selector: `, `want a mapping`}},
	}, {
		name: "MappingForScalarAndBoolAndFloat",
		data: lines(svcHead, "  port: {n: 1}", "  selector: {app: orders}", "  jwt: {issuer: i, jwksUri: https://k, required: yes}", "  faults: {abort: {percent: ten, status: 503}}"),
		want: [][2]string{
			{`t.yaml:5:9: MeshService shop/orders: spec.port: `, `want a single value, not a mapping`},
			{`t.yaml:7:50: MeshService shop/orders: spec.jwt.required: `, `"yes" is not true or false`},
			{`t.yaml:8:29: MeshService shop/orders: spec.faults.abort.percent: `, `"ten" is not a number`},
		},
	}, {
		name: "IntOutOfRange",
		data: lines(svcHead, "  port: 4294967296", "  selector: {app: orders}"),
		want: [][2]string{{`t.yaml:5:9: MeshService shop/orders: spec.port: `, `is not a whole number`}},
	}, {
		name: "BadEnum",
		data: lines(nsHead, "  dataplane: sidecar"),
		want: [][2]string{{`t.yaml:5:3: MeshNamespace shop: spec.dataplane: `, `"sidecar" is not one of ambient, none`}},
	}, {
		name: "BadNestedEnum",
		data: lines(nsHead, "  waypoint:", "    for: pods"),
		want: [][2]string{{`t.yaml:6:5: MeshNamespace shop: spec.waypoint.for: `, `"pods" is not one of service, workload, all`}},
	}, {
		name: "BadDuration",
		data: lines(svcHead, "  port: 8080", "  selector: {app: orders}", "  resilience: {timeout: 2 seconds}"),
		want: [][2]string{{`t.yaml:7:25: MeshService shop/orders: spec.resilience.timeout: `, `"2 seconds" is not a duration`}},
	}, {
		name: "NegativeDuration",
		data: lines(svcHead, "  port: 8080", "  selector: {app: orders}", "  resilience:", "    retries: {attempts: 1, perTryTimeout: -1s}"),
		want: [][2]string{{`t.yaml:8:43: MeshService shop/orders: spec.resilience.retries.perTryTimeout: `, `"-1s" is not a duration`}},
	}, {
		name: "RouteNamesUndeclaredVersion",
		data: lines(svcHead, "  port: 8080", "  selector: {app: orders}", "  versions: {v1: {version: v1}}", "  routes:", "    - backends: {v1: 90, v3: 10}"),
		want: [][2]string{{`t.yaml:9:26: MeshService shop/orders: spec.routes[0].backends.v3: `, `version "v3" is not declared in spec.versions (declared: v1)`}},
	}, {
		name: "ZeroSumWeights",
		data: lines(svcHead, "  port: 8080", "  selector: {app: orders}", "  versions: {v1: {version: v1}, v2: {version: v2}}", "  routes:", "    - backends:", "        v1: 0", "        v2: 0"),
		want: [][2]string{{`t.yaml:9:7: MeshService shop/orders: spec.routes[0].backends: `, `the weights sum to zero`}},
	}, {
		name: "CatchAllRouteNotLast",
		data: lines(svcHead, "  port: 8080", "  selector: {app: orders}", "  versions: {v1: {version: v1}, v2: {version: v2}}", "  routes:", "    - backends: {v1: 100}", "    - match: {method: GET}", "      backends: {v2: 100}"),
		want: [][2]string{{`t.yaml:9:7: MeshService shop/orders: spec.routes[0].match: `, `move it last`}},
	}, {
		name: "FaultsCombinedWithRoutes",
		data: lines(svcHead, "  port: 8080", "  selector: {app: orders}", "  versions: {v1: {version: v1}}", "  routes: [{backends: {v1: 1}}]", "  faults:", "    abort: {percent: 10, status: 503}"),
		want: [][2]string{{`t.yaml:9:3: MeshService shop/orders: spec.faults: `, `faults cannot be combined with routes`}},
	}, {
		name: "ServiceWithoutNamespace",
		data: lines("apiVersion: meshcd.dev/v1alpha1", "kind: MeshService", "metadata:", "  name: orders", "spec: {port: 80, selector: {app: orders}}"),
		want: [][2]string{{`t.yaml:3:1: MeshService orders: metadata: `, `a namespace is required`}},
	}, {
		name: "DuplicateInOneFile",
		data: lines(nsHead, "  mtls: STRICT", "---", nsHead, "  mtls: PERMISSIVE"),
		want: [][2]string{{`t.yaml:7:1: MeshNamespace shop: `, `declared twice, first at t.yaml:1:1; keep one`}},
	}, {
		name: "UnknownKindAndVersion",
		data: lines("apiVersion: meshcd.dev/v1alpha1", "kind: MeshGateway", "metadata: {name: edge}", "---", "apiVersion: meshcd.dev/v2", "kind: MeshNamespace", "metadata: {name: shop}"),
		want: [][2]string{
			{`t.yaml:1:1: kind: `, `unknown kind "MeshGateway" in meshcd.dev/v1alpha1`},
			{`t.yaml:5:1: MeshNamespace: apiVersion: `, `unsupported version "meshcd.dev/v2"; use meshcd.dev/v1alpha1`},
		},
	}, {
		name: "DuplicateKeyInPlainManifestNamesObject",
		data: lines("apiVersion: v1", "kind: ConfigMap", "metadata: {name: cfg, namespace: shop}", "data:", "  a: x", "  a: y"),
		want: [][2]string{{`t.yaml:6:3: ConfigMap shop/cfg: data.a: `, `key is set twice`}},
	}, {
		name: "MergeKeyInPlainManifest",
		data: lines("apiVersion: v1", "kind: ConfigMap", "metadata: {name: cfg}", "base: &b {a: x}", "data:", "  <<: *b"),
		want: [][2]string{{`t.yaml:6:3: ConfigMap cfg: data: `, `merge keys (<<) are not supported`}},
	}, {
		name: "PlainManifestIdentityNotAString",
		data: lines("apiVersion: 0", "kind: 0", "metadata: {name: A}", "---", "apiVersion: v1", "kind: ConfigMap", "metadata: {name: 1, namespace: [shop]}"),
		want: [][2]string{
			{`t.yaml:1:13: 0 A: apiVersion: `, `want a string, got 0; quote it`},
			{`t.yaml:2:7: 0 A: kind: `, `want a string, got 0; quote it`},
			{`t.yaml:7:18: ConfigMap 1: metadata.name: `, `want a string, got 1; quote it`},
			{`t.yaml:7:32: ConfigMap 1: metadata.namespace: `, `want a string, not a list`},
		},
	}, {
		name: "PlainManifestWithoutName",
		data: lines("apiVersion: v1", "kind: ConfigMap", "data: {a: b}"),
		want: [][2]string{{`t.yaml:1:1: ConfigMap: metadata.name: `, `a manifest needs a name`}},
	}, {
		name: "MalformedYAMLGivesLineAndColumn",
		data: lines("apiVersion: v1", "kind: ConfigMap", "metadata: {name: broken", "data:", "  a: b"),
		want: [][2]string{{`t.yaml:3:11: `, `malformed YAML: did not find expected ',' or '}'`}},
	}, {
		name: "MalformedYAMLScannerErrorGivesLineAndColumn",
		data: lines("apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: x", "  labels: app: x"),
		want: [][2]string{{`t.yaml:5:14: `, `malformed YAML: mapping values are not allowed in this context`}},
	}, {
		name: "NonMappingDocument",
		data: lines("apiVersion: v1", "kind: ConfigMap", "metadata: {name: ok}", "---", "- apiVersion: v1", "  kind: ConfigMap"),
		want: [][2]string{{`t.yaml:5:1: `, `a document must be a mapping with apiVersion and kind`}},
	}, {
		name: "DocumentWithoutKind",
		data: lines("apiVersion: v1", "metadata: {name: no-kind}"),
		want: [][2]string{{`t.yaml:1:1: `, `document has no apiVersion or kind`}},
	}, {
		name: "BadPrometheusGate",
		data: lines("apiVersion: meshcd.dev/v1alpha1", "kind: DataplaneRollout", "metadata: {name: proxies}", "spec:", `  bundle: "1.31.1"`,
			"  waypoints:", "    stages:", "      - name: first", "        namespaces: [shop]",
			"        gates: {prometheus: {url: prometheus:9090, query: ' ', max: one percent}}"),
		want: [][2]string{
			{`t.yaml:10:30: DataplaneRollout proxies: spec.waypoints.stages[0].gates.prometheus.url: `, `want the Prometheus server's http(s) URL`},
			{`t.yaml:10:52: DataplaneRollout proxies: spec.waypoints.stages[0].gates.prometheus.query: `, `a PromQL query is required`},
			{`t.yaml:10:64: DataplaneRollout proxies: spec.waypoints.stages[0].gates.prometheus.max: `, `want a decimal number such as "0.01", got "one percent"`},
		},
	}, {
		name: "PrometheusMaxNotFinite",
		data: lines("apiVersion: meshcd.dev/v1alpha1", "kind: DataplaneRollout", "metadata: {name: proxies}", "spec:", `  bundle: "1.31.1"`,
			"  waypoints:", "    stages:",
			"      - {name: a, namespaces: [a], gates: {prometheus: {url: 'http://p:9090', query: up, max: NaN}}}",
			"      - {name: b, namespaces: [b], gates: {prometheus: {url: 'http://p:9090', query: up, max: Inf}}}",
			"      - {name: c, namespaces: [c], gates: {prometheus: {url: 'http://p:9090', query: up, max: +Inf}}}",
			"      - {name: d, namespaces: [d], gates: {prometheus: {url: 'http://p:9090', query: up, max: -Inf}}}",
			"      - {name: e, namespaces: [e], gates: {prometheus: {url: 'http://p:9090', query: up, max: '1e400'}}}"),
		want: [][2]string{
			{`t.yaml:8:90: DataplaneRollout proxies: spec.waypoints.stages[0].gates.prometheus.max: `, `must be a finite number such as "0.01", got "NaN"`},
			{`t.yaml:9:90: DataplaneRollout proxies: spec.waypoints.stages[1].gates.prometheus.max: `, `must be a finite number such as "0.01", got "Inf"`},
			{`t.yaml:10:90: DataplaneRollout proxies: spec.waypoints.stages[2].gates.prometheus.max: `, `must be a finite number such as "0.01", got "+Inf"`},
			{`t.yaml:11:90: DataplaneRollout proxies: spec.waypoints.stages[3].gates.prometheus.max: `, `must be a finite number such as "0.01", got "-Inf"`},
			{`t.yaml:12:90: DataplaneRollout proxies: spec.waypoints.stages[4].gates.prometheus.max: `, `want a decimal number such as "0.01", got "1e400"`},
		},
	}, {
		name: "EveryBrokenDocumentOfTheFile",
		data: lines("just text", "---", nsHead, "  mtls: NONE"),
		want: [][2]string{
			{`t.yaml:1:1: `, `a document must be a mapping`},
			{`t.yaml:7:3: MeshNamespace shop: spec.mtls: `, `"NONE" is not one of STRICT, PERMISSIVE`},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := Load("t.yaml", tc.data)
			if set != nil {
				t.Errorf("want a nil Set on error, got %+v", set)
			}
			wantErrors(t, err, tc.want...)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("want a *FieldError in %T", err)
			}
		})
	}
}

func TestLoad_RefusesFileOverMaxFileSize(t *testing.T) {
	data := make([]byte, MaxFileSize+1)
	set, err := Load("big.yaml", data)
	if set != nil {
		t.Error("want a nil Set")
	}
	wantErrors(t, err, [2]string{"big.yaml: ", "more than the 8388608 meshcd reads; split it"})
}

func TestLoad_RefusesAliasBombWithoutBlowingUp(t *testing.T) {
	bomb := lines(
		"apiVersion: v1",
		"kind: ConfigMap",
		"metadata: {name: lol}",
		`a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]`,
		"b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]",
		"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]",
		"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]",
		"e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]",
		"f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]",
		"g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]",
		"h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]",
		"i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]",
		"---",
		"apiVersion: v1",
		"kind: ConfigMap",
		"metadata: {name: after}",
		"---",
		"apiVersion: meshcd.dev/v1alpha1",
		"kind: MeshNamespace",
		"metadata: {name: after}",
	)
	start := time.Now()
	set, err := Load("bomb.yaml", bomb)
	if set != nil {
		t.Error("want a nil Set")
	}
	got := errorLines(t, err)
	if len(got) != 1 || !strings.HasPrefix(got[0], "bomb.yaml:") || !strings.Contains(got[0], "ConfigMap lol: ") || !strings.Contains(got[0], "more than 1048576 YAML nodes (an alias bomb?); meshcd refuses it") {
		t.Errorf("want one alias bomb error naming the file and object, got:\n%s", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("refusing the bomb took %s", d)
	}
}

func TestLoad_RefusesAliasBombInSpecField(t *testing.T) {
	// 2,000 access rules of 1,000 paths each: two million nodes from 10 kB.
	data := lines(svcHead,
		"  port: 8080",
		"  selector: {app: orders}",
		"  access: [&r {from: {namespaces: [web]}, paths: ["+strings.Repeat("/a, ", 999)+"/a]}"+strings.Repeat(", *r", 1999)+"]",
	)
	_, err := Load("t.yaml", data)
	got := errorLines(t, err)
	if len(got) != 1 || !strings.HasPrefix(got[0], "t.yaml:7:") || !strings.Contains(got[0], "MeshService shop/orders: spec.access[") || !strings.Contains(got[0], "(an alias bomb?); meshcd refuses it") {
		t.Errorf("want one alias bomb error at the access list, got:\n%.500s", err)
	}
}

func TestLoad_KeepsNonFiniteFloatsOfPlainManifestsAsText(t *testing.T) {
	set := mustLoad(t, "t.yaml", lines("apiVersion: v1", "kind: ConfigMap", "metadata: {name: cfg}", "data: {a: !!float nan, b: .inf, c: 1.5}"))
	data := set.Manifests[0].Object["data"].(map[string]any)
	want := map[string]any{"a": "nan", "b": ".inf", "c": 1.5}
	if !reflect.DeepEqual(data, want) {
		t.Errorf("got %#v, want %#v", data, want)
	}
}

func TestLoad_RefusesNonFinitePercent(t *testing.T) {
	_, err := Load("t.yaml", lines(svcHead, "  port: 8080", "  selector: {app: orders}", "  faults: {abort: {percent: !!float nan, status: 503}}"))
	wantErrors(t, err, [2]string{`t.yaml:7:29: MeshService shop/orders: spec.faults.abort.percent: `, `"nan" is not a number`})
}

func TestLoad_SkipsEmptyDocuments(t *testing.T) {
	set := mustLoad(t, "t.yaml", []byte("---\n---\n# only a comment\n---\n"))
	if set.Len() != 0 {
		t.Errorf("want an empty set, got %d documents", set.Len())
	}
}

func TestMerge_DuplicateAcrossFilesNamesBothPlaces(t *testing.T) {
	a := mustLoad(t, "a.yaml", lines(nsHead, "  mtls: STRICT"))
	b := mustLoad(t, "b.yaml", lines("apiVersion: v1", "kind: ConfigMap", "metadata: {name: cfg}", "---", nsHead, "  mtls: PERMISSIVE"))
	err := a.Merge(b)
	wantErrors(t, err, [2]string{"b.yaml:5:1: MeshNamespace shop: ", "declared twice, first at a.yaml:1:1; keep one"})
}

func TestMerge_AddsEveryKindAndKeepsOrigins(t *testing.T) {
	a := loadFile(t, "testdata/namespace.yaml")
	for _, f := range []string{"testdata/service.yaml", "testdata/rollout.yaml", "testdata/mixed.yaml"} {
		b := loadFile(t, f)
		if f == "testdata/mixed.yaml" {
			// mixed.yaml declares shop and shop/orders again.
			if err := a.Merge(b); err == nil || !strings.Contains(err.Error(), "first at namespace.yaml:1:1") {
				t.Errorf("merging mixed.yaml: want a duplicate error, got %v", err)
			}
			continue
		}
		if err := a.Merge(b); err != nil {
			t.Fatalf("merging %s: %v", f, err)
		}
	}
	if len(a.Namespaces) != 1 || len(a.Services) != 1 || len(a.Rollouts) != 1 {
		t.Errorf("got %d namespaces, %d services, %d rollouts", len(a.Namespaces), len(a.Services), len(a.Rollouts))
	}
	if pos, ok := a.Origin(Ref{Group: Group, Kind: KindDataplaneRollout, Name: "proxies"}); !ok || pos.String() != "rollout.yaml:1:1" {
		t.Errorf("rollout origin: got %v %v", pos, ok)
	}
}

func TestLoad_LargeFileDecodedInChunksKeepsExactLines(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d\n  namespace: shop\ndata: {k: v}\n", i)
	}
	// Document 1500 starts on line 1500*7+1; its sixth line carries the typo.
	bad := strings.Replace(b.String(), "name: cm-1500\n  namespace: shop\ndata", "name: cm-1500\n  namespace: shop\ndatta", 1)
	bad = strings.Replace(bad, "kind: ConfigMap\nmetadata:\n  name: cm-1500", "kind: MeshService\nmetadata:\n  name: cm-1500", 1)
	bad = strings.Replace(bad, "apiVersion: v1\nkind: MeshService", "apiVersion: meshcd.dev/v1alpha1\nkind: MeshService", 1)
	if len(bad) < splitMin {
		t.Fatalf("test input of %d bytes is too small to be split", len(bad))
	}
	_, err := Load("big.yaml", []byte(bad))
	if err == nil {
		t.Fatal("want an error for the unknown field")
	}
	if want := fmt.Sprintf("big.yaml:%d:1: MeshService shop/cm-1500: datta: unknown field", 1500*7+7); !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
	set, err := Load("big.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Manifests) != 2000 {
		t.Fatalf("got %d manifests, want 2000", len(set.Manifests))
	}
	pos, _ := set.Origin(Ref{Kind: "ConfigMap", Namespace: "shop", Name: "cm-1999"})
	if pos.Line != 1999*7+2 {
		t.Fatalf("cm-1999 starts at line %d, want %d", pos.Line, 1999*7+2)
	}
	dup := b.String() + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-3, namespace: shop}\n"
	if _, err := Load("big.yaml", []byte(dup)); err == nil || !strings.Contains(err.Error(), "declared twice, first at big.yaml:23") {
		t.Fatalf("a duplicate across chunks names the first place, got %v", err)
	}
}

// TestLoad_UnknownFieldSuggestsOnlyCloseFields checks the did-you-mean of
// an unknown field: offered for a typo of a field at that path, never for
// a word far from all of them, and always with the explain command.
func TestLoad_UnknownFieldSuggestsOnlyCloseFields(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{{
		name: "Transposition",
		data: lines(nsHead, "  wayponit: {for: service}"),
		want: "t.yaml:5:3: MeshNamespace shop: spec.wayponit: unknown field; did you mean waypoint? `meshcd explain MeshNamespace.spec` lists the fields",
	}, {
		name: "WrongCase",
		data: lines(svcHead, "  Port: 8080", "  selector: {app: orders}"),
		want: "t.yaml:5:3: MeshService shop/orders: spec.Port: unknown field; did you mean port? `meshcd explain MeshService.spec` lists the fields",
	}, {
		name: "FarFromEveryField",
		data: lines(nsHead, "  replicas: 3"),
		want: "t.yaml:5:3: MeshNamespace shop: spec.replicas: unknown field; `meshcd explain MeshNamespace.spec` lists the fields",
	}, {
		name: "InsideAListItem",
		data: lines(svcHead, "  port: 8080", "  selector: {app: orders}", "  versions: {v1: {version: v1}}", "  routes:", "    - backend: {v1: 100}"),
		want: "t.yaml:9:7: MeshService shop/orders: spec.routes[0].backend: unknown field; did you mean backends? `meshcd explain MeshService.spec.routes` lists the fields",
	}, {
		name: "Metadata",
		data: lines("apiVersion: meshcd.dev/v1alpha1", "kind: MeshNamespace", "metadata: {name: shop, lables: {a: b}}"),
		want: "t.yaml:3:24: MeshNamespace shop: metadata.lables: unknown field; did you mean labels? only name, namespace, labels and annotations are read here",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load("t.yaml", tc.data)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
}
