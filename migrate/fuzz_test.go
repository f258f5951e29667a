package migrate

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzMigrate feeds a document beside a Service and its pods: Migrate may
// refuse it, never panic.
func FuzzMigrate(f *testing.F) {
	for _, seed := range []string{
		"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a, namespace: shop}\nspec: {hosts: [api], http: [{route: [1]}]}\n",
		"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a, namespace: shop}\nspec: {gateways: [gw], hosts: ['*'], http: [x, {route: [y]}]}\n",
		"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a, namespace: shop}\nspec: {hosts: [api], http: [{match: [{uri: {prefix: /a}, headers: {x: {exact: y}}}], fault: {abort: {httpStatus: 503}}, route: [{destination: {host: api, subset: v1}}]}]}\n",
		"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a, namespace: shop}\nspec: {host: api, trafficPolicy: {tls: x, outlierDetection: {interval: nope}}, subsets: [{name: v1, labels: {version: v1}}, 3]}\n",
		"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a, namespace: shop}\nspec: {selector: {matchLabels: {app: api}}, rules: [{from: [{source: {principals: [cluster.local/ns/a/sa/b]}}], to: [{operation: {methods: [GET], paths: ['/x*']}}]}]}\n",
		"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a, namespace: shop}\nspec: {action: DENY, rules: [{to: [x]}]}\n",
		"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: a, namespace: shop}\nspec: {mtls: 3}\n",
		"apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: a, namespace: shop}\nspec: {selector: {matchLabels: {app: api}}}\n",
		"apiVersion: networking.istio.io/v1\nkind: EnvoyFilter\nmetadata: {name: a, namespace: shop}\n",
	} {
		f.Add(seed)
	}
	const app = `apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec: {selector: {app: api}, ports: [{name: http, port: 8080}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api-v1, namespace: shop}
spec: {template: {metadata: {labels: {app: api, version: v1}}, spec: {containers: [{name: api, image: api}]}}}
`
	f.Fuzz(func(t *testing.T, doc string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "app.yaml"), []byte(app), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "doc.yaml"), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Migrate(dir, DefaultOptions())
		if err == nil && r == nil {
			t.Fatal("no result and no error")
		}
	})
}
