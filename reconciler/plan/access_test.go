package plan

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// shop is namespace shop with a waypoint and default deny, and orders with
// two versions and the access list ACCESS; WAYPOINT names the waypoint.
const shop = `apiVersion: meshcd.dev/v1alpha1
kind: MeshNamespace
metadata: {name: shop}
spec:
  waypoint: {name: WAYPOINT, for: service}
  useWaypoint: namespace
  mtls: STRICT
  defaultDeny: true
---
apiVersion: meshcd.dev/v1alpha1
kind: MeshService
metadata: {name: orders, namespace: shop}
spec:
  port: 8080
  selector: {app: orders}
  versions: {v1: {version: v1}, v2: {version: v2}}
  routes: [{backends: {v1: 90, v2: 10}}]
  access:
ACCESS`

const shopApps = `apiVersion: apps/v1
kind: Deployment
metadata: {name: orders-v1, namespace: shop}
spec:
  selector: {matchLabels: {app: orders, version: v1}}
  template:
    metadata: {labels: {app: orders, version: v1}}
    spec: {serviceAccountName: orders, containers: [{name: orders, image: orders, ports: [{containerPort: 8080}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders-v2, namespace: shop}
spec:
  selector: {matchLabels: {app: orders, version: v2}}
  template:
    metadata: {labels: {app: orders, version: v2}}
    spec: {serviceAccountName: orders, containers: [{name: orders, image: orders, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: orders, namespace: shop}
spec: {selector: {app: orders}, ports: [{name: http, port: 8080}]}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: shop}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: cart, namespace: shop}
`

const (
	webGetPost  = "    - from: {serviceAccounts: [shop/web]}\n      methods: [GET, POST]\n      paths: [/api/*]\n"
	cartL4      = "    - from: {serviceAccounts: [shop/cart]}\n"
	jwtRequired = "  jwt: {issuer: https://accounts.example.com, jwksUri: https://accounts.example.com/jwks, required: true}\n"
)

func shopDir(t *testing.T, waypoint, access string) string {
	t.Helper()
	return writeDir(t, map[string]string{
		"mesh.yaml": strings.NewReplacer("WAYPOINT", waypoint, "ACCESS", access).Replace(shop),
		"apps.yaml": shopApps,
	})
}

// TestMarkdown_AccessChangesGolden renders the plan of each change as the
// pull-request comment and compares it with testdata/<case>.md
// (go test ./reconciler/plan -update rewrites them).
func TestMarkdown_AccessChangesGolden(t *testing.T) {
	for _, tc := range []struct {
		name       string
		base, head [2]string // waypoint, access
		want       []string  // lines the access section must hold
	}{
		{"delete-added", [2]string{"waypoint", webGetPost + cartL4}, [2]string{"waypoint", strings.Replace(webGetPost, "GET, POST", "GET, POST, DELETE", 1) + cartL4},
			[]string{"+ shop/web → shop/orders, shop/orders-v1, shop/orders-v2: DELETE /api/* (waypoint)"}},
		{"caller-removed", [2]string{"waypoint", webGetPost + cartL4}, [2]string{"waypoint", webGetPost},
			[]string{"- shop/cart → shop/orders, shop/orders-v1, shop/orders-v2: every request (waypoint)"}},
		{"jwt-required", [2]string{"waypoint", webGetPost + cartL4}, [2]string{"waypoint", webGetPost + cartL4 + jwtRequired},
			[]string{"~ shop/cart → shop/orders, shop/orders-v1, shop/orders-v2: every request: allow → depends (waypoint)"}},
		{"waypoint-renamed", [2]string{"waypoint", webGetPost}, [2]string{"waypoint-v2", webGetPost}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compute("main@sha1:1111111", shopDir(t, tc.base[0], tc.base[1]), "change@sha1:2222222", shopDir(t, tc.head[0], tc.head[1]), DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.want {
				if !strings.Contains(strings.Join(p.Access, "\n"), want) {
					t.Errorf("the access changes lack %q:\n%s", want, strings.Join(p.Access, "\n"))
				}
			}
			md := p.Markdown(MaxComment)
			if i, j := strings.Index(md, "### Access changes"), strings.Index(md, "### Objects"); len(p.Access) > 0 && (i < 0 || j < 0 || i > j) {
				t.Errorf("the access changes come before the objects:\n%s", md)
			}
			golden(t, filepath.Join("testdata", tc.name+".md"), md)
		})
	}
}

func TestCompute_IdenticalRevisionsChangeNoAccess(t *testing.T) {
	dir := shopDir(t, "waypoint", webGetPost+cartL4)
	p, err := Compute("a", dir, "b", dir, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Access) != 0 {
		t.Fatalf("no access changes between identical revisions, got %q", p.Access)
	}
}

func TestMarkdown_AccessChangesFitTheLimit(t *testing.T) {
	p := &Plan{Base: "main", Head: "big"}
	for i := 0; i < 5000; i++ {
		p.Access = append(p.Access, fmt.Sprintf("+ team/caller-%d%s → team/service: every request (waypoint)", i, strings.Repeat("x", i%40)))
	}
	md := p.Markdown(MaxComment)
	if len(md) > MaxComment || strings.HasSuffix(md, cut) {
		t.Fatalf("comment is %d bytes (limit %d), truncated %v", len(md), MaxComment, strings.HasSuffix(md, cut))
	}
	if !strings.Contains(md, p.Access[0]) || strings.Contains(md, p.Access[len(p.Access)-1]+"\n") {
		t.Fatal("the first access changes are kept and the last left out")
	}
	if !strings.Contains(md, "access changes were left out to fit the comment") {
		t.Fatal("the comment says how many access changes were left out")
	}
	kept := strings.Count(md, "\n+ team/")
	if bigger := p.markdown(map[int]bool{}, kept+1); len(bigger) <= MaxComment {
		t.Fatalf("%d access changes are kept though %d fit", kept, kept+1)
	}
}
