package staged_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/meshcd/meshcd/access"
	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/migrate"
	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/health"
	"github.com/meshcd/meshcd/reconciler/proof"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// The local cluster runs neither the sidecar injector's webhook nor
// istio-cni, so the test writes on each pod what they would. What istiod
// reads of it, in the pinned istio module:
//   - The injector labels every pod it gives a sidecar
//     security.istio.io/tlsMode=istio and annotates it sidecar.istio.io/status
//     (manifests/charts/istio-control/istio-discovery/files/injection-template.yaml).
//     The label is what the sidecar-era policies that migrate keeps through
//     the injection stage select on. The istio-proxy container itself
//     cannot be added to a running pod and istiod's ambient index does not
//     read containers, so it is left out.
//   - istio-cni annotates a pod it captured ambient.istio.io/redirection=enabled;
//     that annotation alone makes istiod send the pod to ztunnel with HBONE
//     (setTunnelProtocol in pilot/pkg/serviceregistry/ambient/workloads.go).
//
// So the minimum is: before the move, every pod carries the injector's
// label and annotation and no redirection; the restart after the injection
// stage is a rollout restart of every Deployment, whose new pods get
// neither (injection is off) and carry the redirection annotation
// (istio-cni captured them, the namespace being ambient).
const (
	labelTLSMode       = "security.istio.io/tlsMode"
	annotationStatus   = "sidecar.istio.io/status"
	annotationRedirect = "ambient.istio.io/redirection"
	workloads          = 4 // web, cart, orders-v1, orders-v2
)

// move is the source namespace on the cluster and its planned move.
type move struct {
	t   *testing.T
	ns  string
	c   client.Client
	res *migrate.Result
	out string
	rec *reconciler.Reconciler
}

// A sidecar-mode namespace (injection, a subset split with a header match,
// a selector policy with an L7 rule) moved stage by stage: at every stage
// the access model of what the cluster holds allows and denies what the
// sidecars did, for every (caller, Service, request) the report compares;
// while the pods have sidecars istiod leaves them out of ztunnel, and once
// restarted istiod's ztunnel config agrees with the model, behind the
// waypoint.
func TestMigrate_StagedPlanKeepsAccessOnTheCluster(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	m := &move{t: t, c: clustertest.Client(t), out: t.TempDir()}
	m.ns = clustertest.Namespace(t, map[string]string{"istio-injection": "enabled"})
	src := m.source()
	res, err := migrate.Migrate(src, migrate.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Write(m.out); err != nil {
		t.Fatal(err)
	}
	m.res = res
	var names []string
	for _, s := range res.Stages {
		names = append(names, s.Step)
	}
	if want := []string{"waypoint", "policies", "ambient", "injection", "prune"}; !slices.Equal(names, want) {
		t.Fatalf("want the stages %v, got %v", want, names)
	}
	t.Logf("migrate: %d stages, %d predicted differences (%d widen)", len(res.Stages), len(res.Access.Differences), res.Access.Widening())

	// The sidecar-era configuration, as kubectl applied it: istiod
	// accepts it, and every pod carries the injector's mark.
	for _, o := range decodeDir(t, src) {
		if o.GetKind() != "Namespace" {
			if err := m.c.Create(ctx, o); err != nil {
				t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
			}
		}
	}
	m.settlePods(true)
	before := m.model()

	opts := reconciler.DefaultOptions()
	opts.Name = m.ns
	opts.HealthTimeout = 30 * time.Second
	opts.HealthHold = 2 * time.Second
	opts.Apply.WaypointTimeout = 60 * time.Second
	opts.Apply.PollInterval = 200 * time.Millisecond
	// As the controller applies a merged stage (controller.go): the
	// injection stage changes the istio-injection label the namespace's
	// owner set, which without force is a conflict.
	opts.Apply.Force = true
	opts.IstiodXDS = clustertest.Cluster(t).IstiodXDSAddress()
	// The expected findings of the transitional stages (the report's
	// rule catalogue table says why each is there).
	for _, f := range res.Access.Findings {
		if f.Expected != "" {
			opts.AllowFindings = append(opts.AllowFindings, f.Finding.Rule)
		}
	}
	m.rec = reconciler.New(m.c, opts)

	for _, s := range res.Stages {
		m.beforeStage(s)
		t0 := time.Now()
		r, err := m.rec.Reconcile(ctx, filepath.Join(m.out, "stages", s.Name))
		if err != nil {
			t.Fatalf("stage %s: %v (health %v)", s.Name, err, r.Health)
		}
		// istiod marks the sidecar-era policy with an L7 rule
		// UnsupportedValue for ztunnel as long as it exists, sidecars or
		// not, until the prune stage removes it; and in the policies stage
		// the waypoint's policies are not accepted yet, since no Service is
		// bound to the waypoint before the ambient stage
		// (WaypointPolicyStatusCollection in
		// pilot/pkg/serviceregistry/ambient/policies.go). Those are the
		// unhealthy reports a stage may have.
		var unexpected []health.Report
		for _, h := range r.Health {
			oldL7 := h.Object == "AuthorizationPolicy "+m.ns+"/orders" && strings.Contains(h.Message, "UnsupportedValue") && s.Step != "prune"
			unbound := s.Step == "policies" && strings.HasPrefix(h.Message, "WaypointAccepted (False")
			if !h.Healthy && !oldL7 && !unbound {
				unexpected = append(unexpected, h)
			}
		}
		if len(unexpected) > 0 || r.Reason != reconciler.ReasonSucceeded && r.Reason != reconciler.ReasonUnhealthy {
			t.Fatalf("stage %s: %s, unexpected health %v", s.Name, r.Reason, unexpected)
		}
		for _, h := range r.Health {
			if h.Object == proof.ReportObject {
				t.Logf("%s: %s, reconciler's read-back: %s", s.Name, r.Reason, h.Message)
			}
		}
		if s.Step == "injection" {
			// What the stage says to do next: restart the workloads.
			m.restart()
		}
		m.afterStage(s, before, time.Since(t0))
	}
	t.Logf("the move took %s", time.Since(start).Round(time.Millisecond))
}

// source writes the testdata's source with the test's namespace.
func (m *move) source() string {
	dir := m.t.TempDir()
	files, err := filepath.Glob("testdata/shop/*.yaml")
	if err != nil || len(files) == 0 {
		m.t.Fatalf("no source in testdata/shop: %v", err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			m.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), []byte(strings.ReplaceAll(string(raw), "SHOP", m.ns)), 0o644); err != nil {
			m.t.Fatal(err)
		}
	}
	return dir
}

func decodeDir(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	var out []*unstructured.Unstructured
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(raw), "\n---\n") {
			o := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &o.Object); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(o.Object) > 0 {
				out = append(out, o)
			}
		}
	}
	return out
}

// settlePods waits until the namespace has exactly its workloads' pods,
// running, marking each as the injector (sidecar) or istio-cni (ambient)
// would have.
func (m *move) settlePods(sidecar bool) {
	ctx := context.Background()
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var pods corev1.PodList
		if err := m.c.List(ctx, &pods, client.InNamespace(m.ns)); err != nil {
			m.t.Fatal(err)
		}
		settled, other := 0, 0
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp != nil {
				continue
			}
			_, tls := p.Labels[labelTLSMode]
			marked := tls && sidecar || !tls && p.Annotations[annotationRedirect] == "enabled" && !sidecar
			if !marked && !(tls && !sidecar) { // an old pod with its sidecar is on its way out
				patch := client.MergeFrom(p.DeepCopy())
				if p.Annotations == nil {
					p.Annotations = map[string]string{}
				}
				if sidecar {
					p.Labels[labelTLSMode] = "istio"
					p.Annotations[annotationStatus] = `{"containers":["istio-proxy"]}`
				} else {
					p.Annotations[annotationRedirect] = "enabled"
				}
				if err := m.c.Patch(ctx, p, patch); err != nil {
					m.t.Fatalf("mark pod %s: %v", p.Name, err)
				}
			}
			if p.Status.Phase == corev1.PodRunning && (tls == sidecar) {
				settled++
			} else {
				other++
			}
		}
		// A Deployment may briefly run a surge pod besides its own.
		if settled >= workloads && other == 0 {
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("want %d running pods (sidecar %v), got %d of %d", workloads, sidecar, settled, len(pods.Items))
		}
	}
}

// restart is `kubectl rollout restart deployment` and the wait until no
// pod has a sidecar.
func (m *move) restart() {
	ctx := context.Background()
	for _, name := range []string{"web", "cart", "orders-v1", "orders-v2"} {
		d := &unstructured.Unstructured{}
		d.SetAPIVersion("apps/v1")
		d.SetKind("Deployment")
		d.SetNamespace(m.ns)
		d.SetName(name)
		patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339))
		if err := m.c.Patch(ctx, d, client.RawPatch("application/merge-patch+json", []byte(patch))); err != nil {
			m.t.Fatalf("restart %s: %v", name, err)
		}
	}
	m.settlePods(false)
}

var liveKinds = []schema.GroupVersionKind{
	{Version: "v1", Kind: "ServiceAccount"}, {Version: "v1", Kind: "Service"}, {Version: "v1", Kind: "Pod"},
	{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "Gateway"},
	{Group: "security.istio.io", Version: "v1", Kind: "AuthorizationPolicy"},
	{Group: "security.istio.io", Version: "v1", Kind: "PeerAuthentication"},
}

// live reads what the cluster holds in the namespace that the access
// model reads; pods on their way out are left out.
func (m *move) live() []*unstructured.Unstructured {
	ctx := context.Background()
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	if err := m.c.Get(ctx, client.ObjectKey{Name: m.ns}, ns); err != nil {
		m.t.Fatal(err)
	}
	out := []*unstructured.Unstructured{ns}
	for _, gvk := range liveKinds {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := m.c.List(ctx, l, client.InNamespace(m.ns)); err != nil {
			m.t.Fatal(err)
		}
		for i := range l.Items {
			if l.Items[i].GetDeletionTimestamp() == nil {
				out = append(out, &l.Items[i])
			}
		}
	}
	return out
}

// model is the access model of what the cluster holds, with sidecar
// semantics.
func (m *move) model() *access.Model {
	opts := access.DefaultOptions()
	opts.Sidecars = true
	model, err := access.Build(m.live(), opts)
	if err != nil {
		m.t.Fatal(err)
	}
	return model
}

// get reads one object of the namespace.
func (m *move) get(apiVersion, kind, name string) *unstructured.Unstructured {
	o := &unstructured.Unstructured{}
	o.SetAPIVersion(apiVersion)
	o.SetKind(kind)
	if err := m.c.Get(context.Background(), client.ObjectKey{Namespace: m.ns, Name: name}, o); err != nil {
		return nil
	}
	return o
}

// beforeStage checks the order as the cluster shows it: a stage that
// sends traffic to the waypoint comes after the waypoint is Programmed
// and after the policies it enforces are there.
func (m *move) beforeStage(s migrate.Stage) {
	if s.Step != "ambient" {
		return
	}
	gw := m.get("gateway.networking.k8s.io/v1", "Gateway", "waypoint")
	if gw == nil || !programmed(gw) {
		m.t.Fatalf("stage %s: want Gateway %s/waypoint Programmed before the namespace is sent to it", s.Name, m.ns)
	}
	if attached := m.waypointPolicies(); len(attached) == 0 {
		m.t.Fatalf("stage %s: want the waypoint's policies in place before the namespace is sent to it, none is", s.Name)
	} else {
		m.t.Logf("before %s: waypoint Programmed, its policies in place: %v", s.Name, attached)
	}
}

func programmed(gw *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(gw.Object, "status", "conditions")
	for _, c := range conds {
		if c, _ := c.(map[string]any); c["type"] == "Programmed" && c["status"] == "True" {
			return true
		}
	}
	return false
}

// waypointPolicies are the AuthorizationPolicies the waypoint enforces:
// those with targetRefs (on the waypoint or the Services it serves).
func (m *move) waypointPolicies() []string {
	l := &unstructured.UnstructuredList{}
	l.SetAPIVersion("security.istio.io/v1")
	l.SetKind("AuthorizationPolicyList")
	if err := m.c.List(context.Background(), l, client.InNamespace(m.ns)); err != nil {
		m.t.Fatal(err)
	}
	var out []string
	for _, p := range l.Items {
		if refs, _, _ := unstructured.NestedSlice(p.Object, "spec", "targetRefs"); len(refs) > 0 {
			out = append(out, p.GetName())
		}
	}
	slices.Sort(out)
	return out
}

// afterStage compares the stage as the cluster holds it with the sidecar
// configuration, by the model and by istiod's ztunnel config.
func (m *move) afterStage(s migrate.Stage, before *access.Model, took time.Duration) {
	t := m.t
	after := m.model()
	predicted := map[string]bool{}
	for _, d := range m.res.Access.Differences {
		if d.Stage == s.Name {
			predicted[diffKey(d.From, d.To, d.Request, d.After.Decision)] = true
		}
	}
	got := map[string]bool{}
	verdicts, sidecars, ambientHops := 0, 0, 0
	for _, to := range before.Destinations() {
		for _, from := range before.Identities() {
			for _, req := range m.res.Access.Requests {
				bv, av := before.Check(from, to, req), after.Check(from, to, req)
				verdicts++
				switch av.EnforcedAt {
				case access.AtSidecar:
					sidecars++
				case access.AtZtunnel, access.AtWaypoint:
					ambientHops++
				}
				if bv.Decision != av.Decision {
					got[diffKey(from, to, req, av.Decision)] = true
				}
			}
		}
	}
	for k := range got {
		if !predicted[k] {
			t.Errorf("stage %s: the cluster decides %s otherwise than the sidecars did, which the report does not predict", s.Name, k)
		}
	}
	for k := range predicted {
		if !got[k] {
			t.Errorf("stage %s: the report predicts %s, the cluster does not show it", s.Name, k)
		}
	}

	nsObj := m.live()[0]
	sidecarEra := nsObj.GetLabels()["istio-injection"] == "enabled"
	r := m.istiod(after, !sidecarEra)
	srcDests := before.Destinations()
	wp := m.ns + "/waypoint"
	uncaptured, behind := 0, 0
	var differ []proof.Pair
	for _, p := range r.Mismatches {
		if slices.Contains(srcDests, p.To) && slices.Contains(before.Identities(), p.From) {
			differ = append(differ, p)
		}
	}
	for _, p := range slices.Concat(r.AgreedPairs, r.Mismatches, r.Skipped) {
		if !slices.Contains(srcDests, p.To) || !slices.Contains(before.Identities(), p.From) {
			continue
		}
		if strings.Contains(p.Istiod.Reason, "istiod does not send it through ztunnel") {
			uncaptured++
		}
		if p.To.Service == "orders" && p.Istiod.Waypoint == wp && slices.Equal(p.Istiod.Callers, []string{wp}) {
			behind++
		}
	}
	pairs := len(srcDests) * len(before.Identities())
	switch {
	case sidecarEra:
		// The sidecars enforce; istiod gives ztunnel nothing to do.
		if uncaptured != pairs || ambientHops > 0 || sidecars == 0 {
			t.Errorf("stage %s: want every pair to the source's Services left to the sidecars (%d), got %d uncaptured by istiod, %d verdicts at the sidecar, %d at ztunnel or a waypoint", s.Name, pairs, uncaptured, sidecars, ambientHops)
		}
	default:
		if uncaptured > 0 || len(differ) > 0 || sidecars > 0 {
			t.Errorf("stage %s: want every pod in ztunnel and istiod agreeing with the model, got %d uncaptured pairs, %d at a sidecar, mismatches %v", s.Name, uncaptured, sidecars, differ)
		}
		if ids := len(before.Identities()); behind != ids {
			t.Errorf("stage %s: want istiod to send every caller's calls to orders through %s (%d), got %d", s.Name, wp, ids, behind)
		}
	}
	if s.Step == "prune" {
		if m.get("security.istio.io/v1", "AuthorizationPolicy", "orders") != nil {
			t.Errorf("stage %s: want the sidecar-era AuthorizationPolicy orders pruned", s.Name)
		}
	}
	t.Logf("%s (%s): sidecar era %v; model: %d verdicts, %d differences (%d predicted), %d at a sidecar; istiod: %d pairs agree, %d differ (%d of the source's pairs), %d not compared, %d pairs uncaptured, %d to orders behind the waypoint",
		s.Name, took.Round(time.Millisecond), sidecarEra, verdicts, len(got), len(predicted), sidecars, r.Agreed, len(r.Mismatches), len(differ), len(r.Skipped), uncaptured, behind)
}

func diffKey(from access.Identity, to access.Destination, req access.Request, after access.Decision) string {
	return fmt.Sprintf("%s → %s %s %s: %s", from, to, req.Method, req.Path, after)
}

// istiod reads istiod's ztunnel config and compares it with model; when
// agree is set it reads again until they agree (istiod pushes moments
// after a change), for at most 20 s.
func (m *move) istiod(model *access.Model, agree bool) *proof.Result {
	src := proof.Source{Address: clustertest.Cluster(m.t).IstiodXDSAddress(), ClusterID: "Kubernetes", Timeout: 10 * time.Second}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		cfg, err := proof.Fetch(context.Background(), src)
		if err != nil {
			m.t.Fatal(err)
		}
		r := proof.Compare(model, cfg, proof.Options{TrustDomain: "cluster.local", KeepAgreed: true})
		if !agree || len(r.Mismatches) == 0 || time.Now().After(deadline) {
			return r
		}
	}
}
