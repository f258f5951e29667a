package access

import "testing"

func TestPatternCovers_AsIstioMatchesStrings(t *testing.T) {
	for _, tc := range []struct {
		p, v string
		want bool
	}{
		{"*", "/anything", true},
		{"/api/*", "/api/orders", true},
		{"/api/*", "/api/v1/*", true},
		{"/api/*", "/*", false},
		{"/api/*", "*/api", false},
		{"*.example.com", "shop.example.com", true},
		{"*.example.com", "*.com", false},
		{"GET", "GET", true},
		{"GET", "POST", false},
	} {
		if got := patternCovers(tc.p, tc.v); got != tc.want {
			t.Errorf("patternCovers(%q, %q) = %v, want %v", tc.p, tc.v, got, tc.want)
		}
	}
}

// covers judges one rule against another the way the OR of ALLOW rules
// works: b covers a when every request a admits, b admits.
func TestCovers_BroaderRuleForTheSameCallers(t *testing.T) {
	web := "from: [{source: {principals: [cluster.local/ns/shop/sa/web]}}]"
	for _, tc := range []struct {
		name, b, a string
		want       bool
	}{
		{"an L4 rule covers an L7 rule for the same caller", "{" + web + "}", "{" + web + ", to: [{operation: {methods: [GET]}}]}", true},
		{"not the reverse", "{" + web + ", to: [{operation: {methods: [GET]}}]}", "{" + web + "}", false},
		{"a namespace covers its service accounts", "{from: [{source: {namespaces: [shop]}}]}", "{from: [{source: {serviceAccounts: [web]}}]}", true},
		{"another namespace does not", "{from: [{source: {namespaces: [billing]}}]}", "{from: [{source: {serviceAccounts: [web]}}]}", false},
		{"a rule that excludes a caller covers nothing it does not exclude too", "{from: [{source: {namespaces: [shop], notPrincipals: [cluster.local/ns/shop/sa/web]}}]}", "{" + web + "}", false},
		{"a when condition narrows", "{" + web + ", when: [{key: 'request.headers[x]', values: [a]}]}", "{" + web + "}", false},
		{"paths by prefix", "{to: [{operation: {paths: [/api/*]}}]}", "{to: [{operation: {paths: [/api/orders, /api/carts/*]}}]}", true},
		{"ports must all be covered", "{to: [{operation: {ports: ['80']}}]}", "{to: [{operation: {ports: ['80', '81']}}]}", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := build(t, "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: shop}\nspec:\n  rules: ["+tc.b+", "+tc.a+"]\n")
			r := m.policies[0].spec.Rules
			if got := covers(r[0], "shop", r[1], "shop", "cluster.local"); got != tc.want {
				t.Fatalf("covers = %v, want %v", got, tc.want)
			}
		})
	}
}
