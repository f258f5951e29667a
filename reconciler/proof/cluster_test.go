package proof_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/meshcd/meshcd/access"
	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/health"
	"github.com/meshcd/meshcd/reconciler/proof"
	"github.com/meshcd/meshcd/renderer"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// mesh is a spec applied to the package's cluster, its namespaces by the
// placeholder that stands for them in testdata.
type mesh struct {
	t   *testing.T
	ns  map[string]string
	dir string
	c   client.Client
	rec *reconciler.Reconciler
}

func newMesh(t *testing.T, file string, placeholders ...string) *mesh {
	t.Helper()
	m := &mesh{t: t, ns: map[string]string{}, dir: t.TempDir(), c: clustertest.Client(t)}
	raw, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	spec := string(raw)
	for _, p := range placeholders {
		m.ns[p] = clustertest.Namespace(t, nil)
		spec = strings.ReplaceAll(spec, p, m.ns[p])
	}
	if err := os.WriteFile(filepath.Join(m.dir, "mesh.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := reconciler.DefaultOptions()
	opts.Name = m.ns[placeholders[0]]
	opts.AllowFindings = []string{"AMB020"} // the L7 rules at ztunnel are the point
	opts.HealthTimeout = 90 * time.Second
	opts.Apply.WaypointTimeout = 90 * time.Second
	opts.Apply.PollInterval = 200 * time.Millisecond
	opts.IstiodXDS = clustertest.Cluster(t).IstiodXDSAddress()
	m.rec = reconciler.New(m.c, opts)
	return m
}

// id and dest spell identities and destinations with placeholders.
func (m *mesh) id(placeholder, sa string) access.Identity {
	return access.Identity{Namespace: m.ns[placeholder], ServiceAccount: sa}
}

func (m *mesh) dest(placeholder, svc string, port int32) access.Destination {
	return access.Destination{Namespace: m.ns[placeholder], Service: svc, Port: port}
}

// compare reads istiod's config now and compares it with the spec's model.
func (m *mesh) compare(t *testing.T) (*proof.Result, *proof.Config) {
	t.Helper()
	b, err := renderer.Render(m.dir, renderer.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	model, err := access.Build(b.Objects, access.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := proof.Fetch(context.Background(), proof.Source{Address: clustertest.Cluster(t).IstiodXDSAddress(), ClusterID: "Kubernetes", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return proof.Compare(model, cfg, proof.Options{TrustDomain: "cluster.local", KeepAgreed: true}), cfg
}

// create makes the object of a YAML document.
func (m *mesh) create(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	o := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &o.Object); err != nil {
		t.Fatal(err)
	}
	if err := m.c.Create(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	return o
}

// find returns the pair from → to of any of r's lists.
func find(t *testing.T, r *proof.Result, from access.Identity, to access.Destination) proof.Pair {
	t.Helper()
	for _, list := range [][]proof.Pair{r.AgreedPairs, r.Mismatches, r.Skipped} {
		for _, p := range list {
			if p.From == from && p.To == to {
				return p
			}
		}
	}
	t.Fatalf("no pair %s → %s", from, to)
	return proof.Pair{}
}

// summary returns the proof's summary report among reports.
func summary(t *testing.T, reports []health.Report) health.Report {
	t.Helper()
	for _, r := range reports {
		if r.Object == proof.ReportObject {
			return r
		}
	}
	t.Fatalf("no %q report among %v", proof.ReportObject, reports)
	return health.Report{}
}

func unhealthyAccess(reports []health.Report) []health.Report {
	var out []health.Report
	for _, r := range reports {
		if strings.HasPrefix(r.Object, "access ") && r.Object != proof.ReportObject && !r.Healthy {
			out = append(out, r)
		}
	}
	return out
}

func expectBoth(t *testing.T, p proof.Pair, want access.Decision) {
	t.Helper()
	if p.Model.Decision != want || p.Istiod.Decision != want {
		t.Errorf("%s → %s: model %s, istiod %s; want both %s", p.From, p.To, p.Model, p.Istiod, want)
	}
}

func TestProve_MixedSpecAgreesWithIstiodThenAPolicyOutsideTheSpecIsReported(t *testing.T) {
	m := newMesh(t, "mixed.yaml", "FRONT", "SHOP", "GUEST")
	ctx := context.Background()
	start := time.Now()
	res, err := m.rec.Reconcile(ctx, m.dir)
	if err != nil {
		t.Fatalf("reconcile: %v (health %v)", err, res.Health)
	}
	t.Logf("applied and proved in %s", time.Since(start).Round(time.Millisecond))
	sum := summary(t, res.Health)
	t.Logf("read-back: %s", sum.Message)
	if !sum.Healthy || len(unhealthyAccess(res.Health)) > 0 {
		t.Fatalf("want the proof healthy, got %s; health %v", sum.Message, res.Health)
	}
	// The two policies with HTTP attributes at ztunnel are unhealthy by
	// istiod's own word (UnsupportedValue); nothing else is.
	for _, h := range res.Health {
		ledger, reports := m.ns["FRONT"]+"/ledger-deny", m.ns["FRONT"]+"/reports-allow"
		if !h.Healthy && !strings.HasSuffix(h.Object, ledger) && !strings.HasSuffix(h.Object, reports) {
			t.Errorf("unexpected unhealthy report %s: %s", h.Object, h.Message)
		}
	}

	r, cfg := m.compare(t)
	if len(r.Mismatches) > 0 || r.Agreed < 150 {
		t.Fatalf("want ≥ 150 pairs agreeing and none differing, got %d agreeing, mismatches %v", r.Agreed, r.Mismatches)
	}
	t.Logf("%d pairs agree, %d not compared", r.Agreed, len(r.Skipped))
	for _, p := range r.Skipped {
		t.Logf("not compared: %s → %s: model %s; istiod %s", p.From, p.To, p.Model, p.Istiod)
	}

	t.Run("an ALLOW rule with an HTTP attribute is omitted at ztunnel", func(t *testing.T) {
		pol := cfg.Policies[m.ns["FRONT"]+"/reports-allow"]
		if pol == nil || len(pol.GetGroups()) != 1 {
			t.Fatalf("want istiod to keep 1 of the 2 rules of reports-allow, got %v", pol)
		}
		expectBoth(t, find(t, r, m.id("FRONT", "admin"), m.dest("FRONT", "reports", 8080)), access.Allow)
		expectBoth(t, find(t, r, m.id("GUEST", "guest"), m.dest("FRONT", "reports", 8080)), access.Deny)
	})
	t.Run("a DENY with a header condition refuses every call it names", func(t *testing.T) {
		pol := cfg.Policies[m.ns["FRONT"]+"/ledger-deny"]
		if pol == nil || len(pol.GetGroups()) != 1 || len(pol.GetGroups()[0].GetRules()) != 2 {
			t.Fatalf("want ledger-deny as one group of two rules (namespace, and the header dropped to match-all), got %v", pol)
		}
		expectBoth(t, find(t, r, m.id("GUEST", "guest"), m.dest("FRONT", "ledger", 8080)), access.Deny)
		expectBoth(t, find(t, r, m.id("FRONT", "web"), m.dest("FRONT", "ledger", 8080)), access.Allow)
	})
	t.Run("a principal-only rule", func(t *testing.T) {
		expectBoth(t, find(t, r, m.id("FRONT", "admin"), m.dest("FRONT", "audit", 8080)), access.Allow)
		expectBoth(t, find(t, r, m.id("FRONT", "web"), m.dest("FRONT", "audit", 8080)), access.Deny)
	})
	t.Run("ztunnel compares the target port", func(t *testing.T) {
		expectBoth(t, find(t, r, m.id("FRONT", "web"), m.dest("FRONT", "metrics", 80)), access.Allow)
		expectBoth(t, find(t, r, m.id("GUEST", "guest"), m.dest("FRONT", "metrics", 80)), access.Deny)
	})
	t.Run("serviceAccounts and notNamespaces", func(t *testing.T) {
		expectBoth(t, find(t, r, m.id("FRONT", "web"), m.dest("GUEST", "catalog", 8080)), access.Allow)
		expectBoth(t, find(t, r, m.id("GUEST", "inventory"), m.dest("GUEST", "catalog", 8080)), access.Deny)
		expectBoth(t, find(t, r, m.id("SHOP", "cart"), m.dest("GUEST", "inventory", 8080)), access.Deny)
		expectBoth(t, find(t, r, m.id("FRONT", "admin"), m.dest("GUEST", "inventory", 8080)), access.Allow)
	})
	t.Run("behind the waypoint ztunnel admits the waypoint only", func(t *testing.T) {
		wp := m.ns["SHOP"] + "/waypoint"
		p := find(t, r, m.id("GUEST", "guest"), m.dest("SHOP", "orders", 8080))
		expectBoth(t, p, access.Allow)
		if p.Istiod.Waypoint != wp || p.Model.Waypoint != wp || strings.Join(p.Istiod.Callers, ",") != wp {
			t.Errorf("want istiod to send orders through %s and ztunnel to see it, got %s", wp, p.Istiod)
		}
		want := []string{m.ns["SHOP"] + "/allow-waypoint", m.ns["SHOP"] + "/orders-allow-waypoint"}
		if !slices.Equal(p.Istiod.Policies, want) || !slices.Equal(p.Model.Policies, want) {
			t.Errorf("want ztunnel to admit the waypoint by %v in both views, got model %s; istiod %s", want, p.Model, p.Istiod)
		}
	})

	t.Run("a pod ztunnel does not capture is reported", func(t *testing.T) {
		// A pod of audit outside the spec, without istio-cni's redirection:
		// istiod sends it with no tunnel, so audit-allow does not guard it.
		pod := m.create(t, `apiVersion: v1
kind: Pod
metadata: {name: audit-debug, namespace: `+m.ns["FRONT"]+`, labels: {app: audit}}
spec:
  serviceAccountName: audit
  containers: [{name: app, image: registry.example.com/audit:1, ports: [{containerPort: 8080}]}]
`)
		// audit as istiod sends it, once it differs from want or after 30 s.
		audit := func(want access.Decision) proof.Pair {
			var p proof.Pair
			for wait := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
				r, _ := m.compare(t)
				if p = find(t, r, m.id("FRONT", "web"), m.dest("FRONT", "audit", 8080)); p.Istiod.Decision != want || time.Now().After(wait) {
					return p
				}
			}
		}
		p := audit(access.Deny)
		if p.Model.Decision != access.Deny || p.Istiod.Decision != proof.Split || !strings.Contains(p.Istiod.Reason, "audit-debug: istiod does not send it through ztunnel") {
			t.Fatalf("want the model's deny against istiod's split with the uncaptured pod named, got model %s; istiod %s", p.Model, p.Istiod)
		}
		t.Logf("istiod: %s", p.Istiod)
		if err := m.c.Delete(ctx, pod, client.GracePeriodSeconds(0)); err != nil {
			t.Fatal(err)
		}
		if p := audit(proof.Split); p.Istiod.Decision != access.Deny {
			t.Fatalf("want the pod gone from istiod's config, got %s", p.Istiod)
		}
	})

	t.Run("a policy attached to the waypoint outside the spec is reported", func(t *testing.T) {
		extra := m.create(t, `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: hand-written-l7, namespace: `+m.ns["SHOP"]+`}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}]
  action: DENY
  rules: [{to: [{operation: {methods: [DELETE]}}]}]
`)
		var bad []health.Report
		for wait := time.Now().Add(30 * time.Second); len(bad) < 3 && time.Now().Before(wait); time.Sleep(200 * time.Millisecond) {
			st, err := m.rec.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			bad = unhealthyAccess(st.Health)
		}
		shop := m.ns["SHOP"]
		for _, svc := range []string{"orders", "cart", "payments"} {
			want := "access policies of waypoint " + shop + "/waypoint for " + shop + "/" + svc + ":8080"
			i := slices.IndexFunc(bad, func(r health.Report) bool { return r.Object == want })
			if i < 0 {
				t.Fatalf("want an unhealthy %q report, got %v", want, bad)
			}
			if msg := bad[i].Message; !strings.Contains(msg, "the model attaches "+shop+"/"+svc+"-l7;") || !strings.Contains(msg, shop+"/hand-written-l7") {
				t.Errorf("report %q lacks the model's %s-l7 or istiod's hand-written-l7", msg, svc)
			}
		}
		if len(bad) != 3 {
			t.Errorf("want 3 unhealthy reports (the waypoint's three Services), got %v", bad)
		}
		if err := m.c.Delete(ctx, extra); err != nil {
			t.Fatal(err)
		}
		for wait := time.Now().Add(30 * time.Second); len(bad) > 0 && time.Now().Before(wait); time.Sleep(200 * time.Millisecond) {
			st, err := m.rec.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			bad = unhealthyAccess(st.Health)
		}
		if len(bad) > 0 {
			t.Fatalf("want the proof healthy again once the policy is gone, got %v", bad)
		}
	})

	t.Run("a policy written outside the spec is reported with both views", func(t *testing.T) {
		extra := m.create(t, `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: hand-written-deny, namespace: `+m.ns["FRONT"]+`}
spec:
  selector: {matchLabels: {app: web}}
  action: DENY
  rules: [{from: [{source: {namespaces: [`+m.ns["GUEST"]+`]}}]}]
`)
		t.Cleanup(func() { _ = m.c.Delete(ctx, extra) })
		var st *reconciler.Status
		deadline := time.Now().Add(30 * time.Second)
		for {
			st, err = m.rec.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(unhealthyAccess(st.Health)) > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		bad := unhealthyAccess(st.Health)
		want := "access " + m.ns["GUEST"] + "/guest → " + m.ns["FRONT"] + "/web:8080"
		var found *health.Report
		for i := range bad {
			if bad[i].Object == want {
				found = &bad[i]
			}
		}
		if found == nil {
			t.Fatalf("want an unhealthy %q report, got %v", want, bad)
		}
		for _, part := range []string{"the model says allow", "istiod's ztunnel config says deny by " + m.ns["FRONT"] + "/hand-written-deny"} {
			if !strings.Contains(found.Message, part) {
				t.Errorf("report %q lacks %q", found.Message, part)
			}
		}
		if len(bad) != 3 { // every identity of GUEST: guest, catalog, inventory
			t.Errorf("want 3 mismatches (GUEST's identities → web), got %d: %v", len(bad), bad)
		}
		if s := summary(t, st.Health); s.Healthy {
			t.Errorf("want the summary unhealthy, got %s", s.Message)
		}
	})
}

func TestProve_CanaryWaypointDuringARolloutAgreesWithIstiod(t *testing.T) {
	m := newMesh(t, "canary.yaml", "FRONT", "SHOP")
	ctx := context.Background()
	if res, err := m.rec.Reconcile(ctx, m.dir); err != nil || res.Reason != reconciler.ReasonSucceeded {
		t.Fatalf("before the rollout: %v %s %v", err, res.Reason, res.Health)
	}
	rollout := `---
apiVersion: meshcd.dev/v1alpha1
kind: DataplaneRollout
metadata: {name: proxies}
spec:
  bundle: "1.31.1"
  waypoints:
    stages:
      - {name: shop, namespaces: [` + m.ns["SHOP"] + `], strategy: canary, steps: [50, 100], gates: {timeout: 90s}}
`
	f, err := os.OpenFile(filepath.Join(m.dir, "mesh.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(rollout); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	// Step the rollout until the canary carries half of SHOP's connections.
	var last []health.Report
	deadline := time.Now().Add(3 * time.Minute)
	for {
		res, err := m.rec.Reconcile(ctx, m.dir)
		if err != nil {
			t.Fatalf("reconcile: %v (health %v)", err, res.Health)
		}
		last = res.Health
		if s := summary(t, last); !s.Healthy {
			t.Fatalf("the proof failed during the rollout: %s; %v", s.Message, unhealthyAccess(last))
		}
		ns := &unstructured.Unstructured{}
		ns.SetAPIVersion("v1")
		ns.SetKind("Namespace")
		if err := m.c.Get(ctx, client.ObjectKey{Name: m.ns["SHOP"]}, ns); err != nil {
			t.Fatal(err)
		}
		if ns.GetLabels()["istio.io/use-waypoint-canary"] != "" && ns.GetAnnotations()["istio.io/use-waypoint-canary-weight"] == "50" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the canary never reached weight 50: labels %v annotations %v, health %v", ns.GetLabels(), ns.GetAnnotations(), res.Health)
		}
	}
	// That reconcile's read-back came before its rollout step: read the
	// status, which proves again without stepping.
	st, err := m.rec.Status(ctx)
	if err != nil {
		t.Fatalf("status at weight 50: %v", err)
	}
	last = st.Health
	if s := summary(t, last); !s.Healthy || len(unhealthyAccess(last)) > 0 {
		t.Fatalf("want the proof healthy at weight 50, got %s; %v", s.Message, unhealthyAccess(last))
	} else {
		t.Logf("read-back at weight 50: %s", s.Message)
	}

	wp, canary := m.ns["SHOP"]+"/waypoint", m.ns["SHOP"]+"/waypoint-canary"
	// istiod pushes the weights moments after the label.
	var r *proof.Result
	for wait := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r, _ = m.compare(t)
		if p := find(t, r, m.id("FRONT", "web"), m.dest("SHOP", "cart", 8080)); len(p.Istiod.Weighted) > 0 || time.Now().After(wait) {
			break
		}
	}
	for _, svc := range []string{"orders", "cart"} {
		p := find(t, r, m.id("FRONT", "web"), m.dest("SHOP", svc, 8080))
		expectBoth(t, p, access.Allow)
		if p.Istiod.Waypoint != wp || !slices.Equal(p.Istiod.Weighted, []string{wp + "=50", canary + "=50"}) || !slices.Equal(p.Istiod.Callers, []string{wp, canary}) {
			t.Errorf("%s: want istiod to weigh %s and %s 50/50 and ztunnel to admit both, got %s", svc, wp, canary, p.Istiod)
		}
		if p.Model.Waypoint != wp {
			t.Errorf("%s: want the model to name the primary %s, got %q", svc, wp, p.Model.Waypoint)
		}
	}
	if len(r.Mismatches) > 0 {
		t.Errorf("want no mismatch during the canary, got %v", r.Mismatches)
	}
}
