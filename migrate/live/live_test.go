package live

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/migrate"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

const sidecarNamespace = `apiVersion: v1
kind: Service
metadata: {name: reviews}
spec: {selector: {app: reviews}, ports: [{name: http, port: 9080}]}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: reviews}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1}
spec:
  selector: {matchLabels: {app: reviews, version: v1}}
  template:
    metadata: {labels: {app: reviews, version: v1}}
    spec: {serviceAccountName: reviews, containers: [{name: reviews, image: reviews:1}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v2}
spec:
  selector: {matchLabels: {app: reviews, version: v2}}
  template:
    metadata: {labels: {app: reviews, version: v2}}
    spec: {serviceAccountName: reviews, containers: [{name: reviews, image: reviews:2}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v1}, weight: 90}, {destination: {host: reviews, subset: v2}, weight: 10}]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default}
spec: {egress: [{hosts: ["./*"]}]}
`

// Read lists a sidecar-mode namespace istiod accepted, writes nothing to
// the cluster, and leaves files migrate reads: the 90/10 split becomes the
// MeshService's route and the Sidecar an item at its file and line.
func TestRead_ListsWithoutWritingAndMigrateReadsIt(t *testing.T) {
	ctx := context.Background()
	c := clustertest.Client(t)
	ns := clustertest.Namespace(t, map[string]string{"istio-injection": "enabled"})
	for _, doc := range strings.Split(sidecarNamespace, "\n---\n") {
		o := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &o.Object); err != nil {
			t.Fatal(err)
		}
		o.SetNamespace(ns)
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("create %s: %v", o.GetKind(), err)
		}
	}
	writes := &clustertest.Writes{}
	cfg := clustertest.Cluster(t).RESTConfig()
	cfg.WrapTransport = writes.Wrap
	reader, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "source")
	if err := Read(ctx, reader, dir); err != nil {
		t.Fatal(err)
	}
	if n, seen := writes.Take(); n != 0 {
		t.Fatalf("Read wrote to the cluster: %v", seen)
	}
	for _, f := range []string{"virtualservice.yaml", "destinationrule.yaml", "deployment.yaml", "service.yaml", "sidecar.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, ns, f)); err != nil {
			t.Errorf("%s/%s was not written: %v", ns, f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "kube-system")); err == nil {
		t.Error("kube-system was read")
	}
	r, err := migrate.Migrate(dir, migrate.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	var mesh string
	for _, d := range r.Spec {
		if d.Object.GetKind() == "MeshService" && d.Object.GetNamespace() == ns {
			out, _ := yaml.Marshal(d.Object.Object)
			mesh = string(out)
		}
	}
	if !strings.Contains(mesh, "v1: 90") || !strings.Contains(mesh, "v2: 10") {
		t.Errorf("the 90/10 split should be the MeshService's route:\n%s", mesh)
	}
	found := false
	for _, it := range r.Items {
		if it.Object == "Sidecar "+ns+"/default" && it.Position.File == ns+"/sidecar.yaml" && it.Position.Line == 1 {
			found = true
		}
	}
	if !found {
		t.Errorf("the Sidecar should be an item at %s/sidecar.yaml:1: %+v", ns, r.Items)
	}
	// The cluster's other namespaces come along: istio-system is outside
	// the mesh, and whether a call without identity passes a waypoint is
	// beyond the access model, which says so rather than guess.
	if r.Access.Widening() != 0 || len(r.Access.Unexpected()) != 0 {
		t.Errorf("%d differences widen access, %d unexpected findings", r.Access.Widening(), len(r.Access.Unexpected()))
	}
	for _, d := range r.Access.Differences {
		if d.After.Decision != "undecided" || !strings.Contains(d.After.Reason, "outside the mesh") {
			t.Errorf("%s: %s → %s: %s, was %s (%s)", d.Stage, d.From, d.To, d.After.Decision, d.Before.Decision, d.After.Reason)
		}
	}
	if err := Read(ctx, reader, dir); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("a second Read into the same directory should be refused, got %v", err)
	}
}
