package plan

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/meshcd/meshcd/renderer/rules"
)

func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const ns = `apiVersion: meshcd.dev/v1alpha1
kind: MeshNamespace
metadata: {name: hello}
spec:
  waypoint: {}
`

func svc(v1, v2 int) string {
	return strings.NewReplacer("W1", strconv.Itoa(v1), "W2", strconv.Itoa(v2)).Replace(`apiVersion: meshcd.dev/v1alpha1
kind: MeshService
metadata: {name: hello, namespace: hello}
spec:
  port: 5000
  selector: {app: hello}
  versions: {v1: {version: v1}, v2: {version: v2}}
  routes:
    - backends: {v1: W1, v2: W2}
`)
}

func TestCompute_WeightChangeIsOneChangedRoute(t *testing.T) {
	base := writeDir(t, map[string]string{"ns.yaml": ns, "svc.yaml": svc(95, 5)})
	head := writeDir(t, map[string]string{"ns.yaml": ns, "svc.yaml": svc(50, 50)})
	p, err := Compute("main@sha1:aaa", base, "canary@sha1:bbb", head, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 1 || p.Changes[0].Object != "HTTPRoute hello/hello" || p.Changes[0].Action != Changed {
		t.Fatalf("changes: %+v", p.Changes)
	}
	d := p.Changes[0].Diff
	for _, want := range []string{"-      weight: 95", "+      weight: 50", "-      weight: 5", "+      weight: 50"} {
		if !strings.Contains(d, want) {
			t.Fatalf("diff lacks %q:\n%s", want, d)
		}
	}
	if !p.HasChanges() {
		t.Fatal("a changed route is a change")
	}
	same, err := Compute("a", base, "b", base, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if same.HasChanges() || len(same.Introduced)+len(same.Fixed) != 0 {
		t.Fatalf("identical revisions plan nothing: %+v", same)
	}
}

func TestCompute_AddedRemovedAndFindings(t *testing.T) {
	// The head drops the waypoint label on the namespace and adds a hand-written route
	// to a Service without a waypoint: a finding the head introduces.
	base := writeDir(t, map[string]string{"ns.yaml": ns, "svc.yaml": svc(95, 5)})
	head := writeDir(t, map[string]string{"svc.yaml": `apiVersion: v1
kind: Service
metadata: {name: lonely, namespace: other}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: other, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: lonely, namespace: other}
spec:
  parentRefs: [{group: "", kind: Service, name: lonely}]
  rules: [{backendRefs: [{name: lonely, port: 80}]}]
`})
	p, err := Compute("base", base, "head", head, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	actions := map[Action]int{}
	for _, c := range p.Changes {
		actions[c.Action]++
	}
	if actions[Added] != 3 || actions[Removed] == 0 {
		t.Fatalf("actions %v from %+v", actions, p.Changes)
	}
	found := false
	for _, f := range p.Introduced {
		found = found || (f.Rule == "AMB030" && f.Object == "HTTPRoute other/lonely")
	}
	if !found {
		t.Fatalf("the head introduces AMB030 for the route without a waypoint: %+v", p.Introduced)
	}
	reverse, err := Compute("head", head, "base", base, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(reverse.Fixed) != len(p.Introduced) {
		t.Fatalf("going back fixes what was introduced: %+v vs %+v", reverse.Fixed, p.Introduced)
	}
}

func TestMarkdown_FitsTheLimitLargestDiffsFirst(t *testing.T) {
	p := &Plan{Base: "main", Head: "big", Changes: []Change{
		{Object: "ConfigMap a/small", Action: Changed, Diff: strings.Repeat("+ small line\n", 10)},
		{Object: "ConfigMap a/huge", Action: Added, Diff: strings.Repeat("+ a very long line of yaml\n", 5000)},
		{Object: "ConfigMap a/large", Action: Added, Diff: strings.Repeat("+ a long line\n", 2000)},
	}, Introduced: []rules.Finding{}, Fixed: []rules.Finding{}}
	md := p.Markdown(MaxComment)
	if len(md) > MaxComment {
		t.Fatalf("comment is %d characters, over %d", len(md), MaxComment)
	}
	if !strings.Contains(md, "+ small line") {
		t.Fatal("small diffs are kept")
	}
	if !strings.Contains(md, "left out to fit the comment") || !strings.Contains(md, "ConfigMap a/huge") {
		t.Fatal("the comment says which diffs were left out")
	}
	if strings.Contains(md, "+ a very long line of yaml") {
		t.Fatal("the largest diff goes first")
	}
	if !strings.Contains(md, "+ a long line") {
		t.Fatal("the second largest fits once the largest is out, and stays")
	}
}

func rolloutSpec(bundle, promote, stages string) string {
	return `apiVersion: meshcd.dev/v1alpha1
kind: DataplaneRollout
metadata: {name: proxies}
spec:
  bundle: "` + bundle + `"
  promote: "` + promote + `"
  waypoints: {stages: [` + stages + `]}
  ztunnel: {strategy: node-by-node}
`
}

func TestCompute_SaysWhichRolloutStageAChangeMoves(t *testing.T) {
	shop := strings.ReplaceAll(ns, "hello", "shop")
	stages := `{name: canary, namespaces: [hello]}, {name: rest, namespaces: ["*"], approval: manual}`
	dir := func(bundle, promote, stages string) string {
		return writeDir(t, map[string]string{"ns.yaml": ns, "shop.yaml": shop, "rollout.yaml": rolloutSpec(bundle, promote, stages)})
	}
	p, err := Compute("main", dir("1.31.0", "", stages), "bump", dir("1.31.1", "", stages), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 0 || !p.HasChanges() {
		t.Fatalf("a bundle bump changes no object but is a change: %+v", p)
	}
	want := []string{
		"DataplaneRollout proxies: bundle 1.31.0 → 1.31.1, starting over from the first stage: waypoints to docker.io/istio/proxyv2:1.31.1, ztunnel to docker.io/istio/ztunnel:1.31.1",
		"DataplaneRollout proxies: stage 1 of 3, canary (hello): replace: each waypoint restarts on the new image; gates: programmed, ready, soak 0s, timeout 10m",
		"DataplaneRollout proxies: stage 2 of 3, rest (shop): manual, waits for a commit that sets `promote: rest`; then replace: each waypoint restarts on the new image; gates: programmed, ready, soak 0s, timeout 10m",
		"DataplaneRollout proxies: stage 3 of 3, ztunnel on every node: node by node, 1 at a time, in that order, each node's new pod Ready before the next; each replacement resets that node's long-lived connections",
		"DataplaneRollout proxies: merging starts stage canary (hello); then the rollout goes on by itself and stops before stage rest (shop) until a commit sets `promote: rest`",
	}
	if strings.Join(p.Rollouts, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rollout lines:\n%s\nwant:\n%s", strings.Join(p.Rollouts, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(p.Markdown(60000), "### Data plane rollouts") {
		t.Error("the PR comment has no rollout section")
	}

	p, err = Compute("main", dir("1.31.1", "", stages), "bad", dir("1.31.1", "", `{name: canary, namespaces: [nope]}`), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rollouts) != 1 || !strings.Contains(p.Rollouts[0], "would not start") || !strings.Contains(p.Rollouts[0], "namespace nope does not exist") {
		t.Fatalf("a rollout that cannot start says why: %q", p.Rollouts)
	}
}

// example copies examples/helloworld-canary, whose rollout `make demo`
// runs, without its rollout.yaml, or with it and promote set.
func example(t *testing.T, rollout bool, promote string) string {
	t.Helper()
	src := filepath.Join("..", "..", "examples", "helloworld-canary")
	files := map[string]string{}
	for _, name := range []string{"mesh.yaml", "apps.yaml", "rollout.yaml"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	if !rollout {
		delete(files, "rollout.yaml")
	} else if promote != "" {
		files["rollout.yaml"] = strings.Replace(files["rollout.yaml"], "  bundle: \"1.31.1\"\n", "  bundle: \"1.31.1\"\n  promote: "+promote+"\n", 1)
	}
	return writeDir(t, files)
}

func TestCompute_DescribesTheExampleRolloutStageByStage(t *testing.T) {
	nodes := []string{"kwok-node-0", "kwok-node-1", "kwok-node-2"}
	for _, tc := range []struct {
		name       string
		base, head string
		nodes      []string
	}{
		{"add", example(t, false, ""), example(t, true, ""), nodes},
		{"add-offline", example(t, false, ""), example(t, true, ""), nil},
		{"promote", example(t, true, ""), example(t, true, "rest"), nodes},
		{"remove", example(t, true, ""), example(t, false, ""), nodes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := DefaultOptions()
			opts.ZtunnelNodes = tc.nodes
			p, err := Compute("main", tc.base, "head", tc.head, opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Changes) != 0 {
				t.Fatalf("a DataplaneRollout renders no object, yet the plan changes %d", len(p.Changes))
			}
			golden(t, filepath.Join("testdata", "rollout", tc.name+".golden.txt"), p.Text()+"\n---- markdown\n"+p.Markdown(MaxComment))
		})
	}
}

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// golden compares got with the file, or rewrites it under -update.
func golden(t *testing.T, file, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./reconciler/plan -update)", err)
	}
	if got != string(want) {
		t.Fatalf("the plan differs from %s; run go test ./reconciler/plan -update if intended:\n%s", file, got)
	}
}

func TestCompute_ShowsTheWaypointOrder(t *testing.T) {
	plain := strings.Replace(ns, "  waypoint: {}\n", "", 1)
	renamed := strings.Replace(ns, "waypoint: {}", "waypoint: {name: waypoint-v2}", 1)
	for _, tc := range []struct {
		name, base, head string
		want             []string
	}{
		{"enroll", plain, ns, []string{"Namespace hello: istio.io/use-waypoint=waypoint is written only once waypoint hello/waypoint is Programmed with an available replica and a ready endpoint; istio.io/dataplane-mode goes first"}},
		{"rename", ns, renamed, []string{
			"Namespace hello: istio.io/use-waypoint=waypoint-v2 is written only once waypoint hello/waypoint-v2 is Programmed with an available replica and a ready endpoint; until then it stays waypoint",
			"Gateway hello/waypoint is deleted only after Namespace hello no longer name it: the labels move off first, so no traffic is sent to a waypoint that is gone",
		}},
		{"remove", ns, plain, []string{"Gateway hello/waypoint is deleted only after Namespace hello no longer name it: the labels move off first, so no traffic is sent to a waypoint that is gone"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compute("base", writeDir(t, map[string]string{"ns.yaml": tc.base}), "head", writeDir(t, map[string]string{"ns.yaml": tc.head}), DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(p.Order, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("order:\n%s\nwant:\n%s", strings.Join(p.Order, "\n"), strings.Join(tc.want, "\n"))
			}
			if md := p.Markdown(MaxComment); !strings.Contains(md, "### Waypoint order\n\n- "+tc.want[0]) {
				t.Fatalf("the Markdown plan lacks the order:\n%s", md)
			}
		})
	}
}

func TestCompute_WeightChangeShowsEachRuleSharesBeforeAndAfterWithItsMatch(t *testing.T) {
	canary := func(v1, v2 int) string {
		return svc(v1, v2) + "    - match: {headers: {x-canary: always}}\n      backends: {v2: 100}\n"
	}
	base := writeDir(t, map[string]string{"ns.yaml": ns, "svc.yaml": svc(95, 5)})
	head := writeDir(t, map[string]string{"ns.yaml": ns, "svc.yaml": strings.Replace(canary(90, 20), "    - backends: {v1: 90, v2: 20}\n", "", 1) + "    - backends: {v1: 90, v2: 20}\n"})
	p, err := Compute("main@sha1:aaa", base, "canary@sha1:bbb", head, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	want := []Shift{
		{Route: "HTTPRoute hello/hello", Match: "header x-canary=always", Before: "none", After: "hello-v2 100%"},
		{Route: "HTTPRoute hello/hello", Match: "every request", Before: "hello-v1 95%, hello-v2 5%", After: "hello-v1 81.8%, hello-v2 18.2%"},
	}
	if len(p.Traffic) != len(want) {
		t.Fatalf("traffic: %+v", p.Traffic)
	}
	for i := range want {
		if p.Traffic[i] != want[i] {
			t.Errorf("shift %d: %+v, want %+v", i, p.Traffic[i], want[i])
		}
	}
	md := p.Markdown(MaxComment)
	for _, line := range []string{
		"| HTTPRoute hello/hello | header x-canary=always | none | hello-v2 100% |",
		"| HTTPRoute hello/hello | every request | hello-v1 95%, hello-v2 5% | hello-v1 81.8%, hello-v2 18.2% |",
		"| AMB060 | warning | HTTPRoute hello/hello | svc.yaml:1 |",
	} {
		if !strings.Contains(md, line) {
			t.Errorf("markdown lacks %q:\n%s", line, md)
		}
	}
	if !strings.Contains(p.Text(), "traffic: HTTPRoute hello/hello (every request): hello-v1 95%, hello-v2 5% -> hello-v1 81.8%, hello-v2 18.2%\n") {
		t.Errorf("text:\n%s", p.Text())
	}
}

func TestCompute_UnchangedSharesAreNotShifts(t *testing.T) {
	base := writeDir(t, map[string]string{"ns.yaml": ns, "svc.yaml": svc(95, 5)})
	// The same shares written as other weights: the route changes, its traffic does not.
	head := writeDir(t, map[string]string{"ns.yaml": ns, "svc.yaml": svc(19, 1)})
	p, err := Compute("a", base, "b", head, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 1 || len(p.Traffic) != 0 {
		t.Fatalf("changes %d, traffic %+v", len(p.Changes), p.Traffic)
	}
}
