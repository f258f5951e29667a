package proof

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"istio.io/istio/pkg/workloadapi"
	"istio.io/istio/pkg/workloadapi/security"

	"github.com/meshcd/meshcd/access"
)

// BenchmarkCompare_100NamespacesBy5Services compares 500 identities with
// 500 Service ports (250,000 pairs), each namespace open to its own
// namespace only.
func BenchmarkCompare_100NamespacesBy5Services(b *testing.B) {
	const namespaces, services = 100, 5
	var docs []string
	var pols []*security.Authorization
	var addrs []*workloadapi.Address
	for i := range namespaces {
		ns := fmt.Sprintf("ns%03d", i)
		docs = append(docs, fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s, labels: {istio.io/dataplane-mode: ambient}}", ns),
			fmt.Sprintf("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: same-namespace, namespace: %s}\nspec: {rules: [{from: [{source: {namespaces: [%s]}}]}]}", ns, ns))
		pols = append(pols, policy(ns, "same-namespace", security.Scope_NAMESPACE, security.Action_ALLOW, group([]*security.Match{{Namespaces: exact(ns)}})))
		for j := range services {
			name := fmt.Sprintf("svc%d", j)
			docs = append(docs,
				fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: %s}\nspec: {selector: {app: %s}, ports: [{port: 80, targetPort: 8080}]}", name, ns, name),
				fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: %s, namespace: %s}\nspec: {template: {metadata: {labels: {app: %s}}, spec: {serviceAccountName: %s}}}", name, ns, name, name))
			addrs = append(addrs, service(ns, name, byte(j), nil), workload(pod(ns, name, 8080)))
		}
	}
	var objs []*unstructured.Unstructured
	for _, d := range docs {
		o := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(d), &o.Object); err != nil {
			b.Fatal(err)
		}
		objs = append(objs, o)
	}
	m, err := access.Build(objs, access.DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	// service() and pod() name the Service's port 80 and the pod's services
	// map by the Service's hostname.
	for _, a := range addrs {
		if s := a.GetService(); s != nil {
			s.Ports[0].ServicePort = 80
		}
	}
	b.ResetTimer()
	for b.Loop() {
		r := Compare(m, NewConfig(pols, addrs), Options{TrustDomain: "cluster.local"})
		if len(r.Mismatches) > 0 || r.Agreed != namespaces*services*namespaces*services {
			b.Fatalf("got %d agreed, %d mismatches (%s), %d skipped", r.Agreed, len(r.Mismatches), strings.Join(mismatchRefs(r), " "), len(r.Skipped))
		}
	}
}

func mismatchRefs(r *Result) []string {
	var out []string
	for i, p := range r.Mismatches {
		if i == 3 {
			break
		}
		out = append(out, p.From.String()+"→"+p.To.String()+": "+p.Model.String()+" / "+p.Istiod.String())
	}
	return out
}
