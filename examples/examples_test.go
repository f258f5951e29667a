package examples_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/meshcd/meshcd/dataplane"
	"github.com/meshcd/meshcd/meshspec"
	"github.com/meshcd/meshcd/renderer"
	"github.com/meshcd/meshcd/renderer/rules"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// specs are the example directories, kustomize overlays included.
var specs = map[string]string{
	"helloworld-canary":          "helloworld-canary",
	"shop-zero-trust":            "shop-zero-trust",
	"payments-workload-waypoint": "payments-workload-waypoint",
	"kustomize-overlays-staging": "kustomize-overlays/overlays/staging",
	"kustomize-overlays-prod":    "kustomize-overlays/overlays/prod",
}

func TestExamples_RenderAsGolden(t *testing.T) {
	for name, dir := range specs {
		t.Run(name, func(t *testing.T) {
			b, err := renderer.Render(dir, renderer.DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			for _, o := range b.Objects {
				y, err := yaml.Marshal(o.Object)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&got, "---\n# from %s\n%s", b.Origin(o), y)
			}
			file := filepath.Join("testdata", name+".golden.yaml")
			if *update {
				if err := os.WriteFile(file, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test ./examples -update)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("%s renders differently from %s; run go test ./examples -update if intended", dir, file)
			}
		})
	}
}

func TestExamples_ValidateClean(t *testing.T) {
	for name, dir := range specs {
		t.Run(name, func(t *testing.T) {
			b, err := renderer.Render(dir, renderer.DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range rules.Check(b.Objects, rules.Options{Origin: b.Origin}) {
				t.Errorf("%s: %s %s %s: %s", dir, f.Severity, f.Rule, f.Object, f.Message)
			}
		})
	}
}

func TestExamples_OverlaysChangeOnlyTheWeights(t *testing.T) {
	weights := map[string][2]int64{}
	for _, env := range []string{"staging", "prod"} {
		b, err := renderer.Render("kustomize-overlays/overlays/"+env, renderer.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range b.Objects {
			if o.GetKind() != "HTTPRoute" {
				continue
			}
			rules, _, _ := unstructured.NestedSlice(o.Object, "spec", "rules")
			refs := rules[0].(map[string]any)["backendRefs"].([]any)
			weights[env] = [2]int64{refs[0].(map[string]any)["weight"].(int64), refs[1].(map[string]any)["weight"].(int64)}
		}
	}
	if weights["staging"] != [2]int64{50, 50} || weights["prod"] != [2]int64{95, 5} {
		t.Fatalf("weights per overlay: %v", weights)
	}
}

// An example's rollouts must start on the namespaces and waypoints the
// example itself renders.
func TestExamples_RolloutsStartOnTheirOwnNamespaces(t *testing.T) {
	for name, dir := range specs {
		t.Run(name, func(t *testing.T) {
			b, err := renderer.Render(dir, renderer.DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range dataplane.Moves(nil, b.Spec.Rollouts, b.Objects, nil) {
				if strings.Contains(l, "would not start") {
					t.Error(l)
				}
			}
		})
	}
}

// helloworld-canary, which `make demo` rolls out, shows every kind of
// stage: replace, weighted canary, manual approval, ztunnel node by node.
func TestExamples_TheDemoRolloutHasEveryKindOfStage(t *testing.T) {
	b, err := renderer.Render("helloworld-canary", renderer.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Spec.Rollouts) != 1 {
		t.Fatalf("want one DataplaneRollout, got %d", len(b.Spec.Rollouts))
	}
	r := b.Spec.Rollouts[0]
	kinds := map[string]bool{}
	for _, s := range r.Spec.Waypoints.Stages {
		kinds[string(s.Strategy)] = true
		if s.Approval == meshspec.ApprovalManual {
			kinds["manual"] = true
		}
	}
	if z := r.Spec.Ztunnel; z != nil {
		kinds[string(z.Strategy)] = true
	}
	for _, want := range []string{"replace", "canary", "manual", "node-by-node"} {
		if !kinds[want] {
			t.Errorf("the demo rollout has no %s stage", want)
		}
	}
	if r.Spec.Promote != "" {
		t.Errorf("the example leaves promote to the demo's second pull request, yet sets %q", r.Spec.Promote)
	}
}
