package migrate

import (
	"bytes"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/meshcd/meshcd/renderer"
	"github.com/meshcd/meshcd/renderer/rules"
)

var update = flag.Bool("update", false, "rewrite the golden reports")

// istioModule is the pinned istio module, whose samples are sidecar-mode
// configurations.
const istioModule = "istio.io/istio@v0.0.0-20260827124520-eed52ebb66ad"

// samplesDir returns the istio module's samples directory, downloading
// the module into the module cache if it is not there.
func samplesDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", istioModule).Output()
	if err != nil {
		t.Skipf("the istio module is not in the module cache and cannot be downloaded: %v", err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download -json %s: %s", istioModule, out)
	}
	return filepath.Join(mod.Dir, "samples")
}

// sampleCase is a sidecar-mode configuration made of sample files.
type sampleCase struct {
	name  string
	files []string // relative to samples/
}

// bookinfoCases migrates every file of Bookinfo's platform/kube alone,
// and every file of networking/ applied over bookinfo.yaml with
// destination-rule-all.yaml, as Istio's tasks apply them.
func bookinfoCases(t *testing.T, samples string) []sampleCase {
	var cases []sampleCase
	kube, _ := filepath.Glob(filepath.Join(samples, "bookinfo/platform/kube/*.yaml"))
	for _, f := range kube {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		cases = append(cases, sampleCase{"kube-" + name, []string{"bookinfo/platform/kube/" + filepath.Base(f)}})
	}
	networking, _ := filepath.Glob(filepath.Join(samples, "bookinfo/networking/*.yaml"))
	for _, f := range networking {
		base := filepath.Base(f)
		files := []string{"bookinfo/platform/kube/bookinfo.yaml", "bookinfo/networking/" + base}
		if !strings.HasPrefix(base, "destination-rule-") && !strings.Contains(base, "fault-injection") {
			files = append(files, "bookinfo/networking/destination-rule-all.yaml")
		}
		cases = append(cases, sampleCase{"networking-" + strings.TrimSuffix(base, ".yaml"), files})
	}
	if len(kube) < 10 || len(networking) < 10 {
		t.Fatalf("found %d platform/kube and %d networking files in %s: the samples moved", len(kube), len(networking), samples)
	}
	return cases
}

func TestMigrate_IstioSamples(t *testing.T) {
	samples := samplesDir(t)
	groups := map[string][]sampleCase{
		"bookinfo": bookinfoCases(t, samples),
		"helloworld": {
			{"helloworld", []string{"helloworld/helloworld.yaml", "helloworld/helloworld-gateway.yaml"}},
			{"helloworld-gateway-api", []string{"helloworld/helloworld.yaml", "helloworld/gateway-api/helloworld-gateway.yaml"}},
			{"helloworld-gateway-api-versions", []string{"helloworld/helloworld.yaml", "helloworld/gateway-api/helloworld-versions.yaml", "helloworld/gateway-api/helloworld-route.yaml"}},
		},
		"httpbin": {
			{"httpbin", []string{"httpbin/httpbin.yaml", "httpbin/httpbin-gateway.yaml", "httpbin/sample-client/fortio-deploy.yaml"}},
			{"httpbin-gateway-api", []string{"httpbin/httpbin.yaml", "httpbin/gateway-api/httpbin-gateway.yaml"}},
			{"httpbin-nodeport", []string{"httpbin/httpbin-nodeport.yaml"}},
		},
	}
	for _, group := range slices.Sorted(maps.Keys(groups)) {
		t.Run(group, func(t *testing.T) {
			var report bytes.Buffer
			for _, c := range groups[group] {
				dir := filepath.Join(t.TempDir(), c.name)
				copyFiles(t, samples, dir, c.files)
				r := migrateClean(t, dir)
				report.WriteString("<!-- " + strings.Join(c.files, " + ") + " -->\n")
				if err := r.WriteReport(&report); err != nil {
					t.Fatal(err)
				}
				report.WriteString("\n")
			}
			golden(t, filepath.Join("testdata", group+".golden.md"), report.Bytes())
		})
	}
}

// The policies of istio.io's HTTP authorization task over Bookinfo, with
// a header-matched route on reviews: access rules with methods, a policy
// for every caller the spec cannot say, an allow-nothing default deny.
func TestMigrate_BookinfoAuthorization(t *testing.T) {
	samples := samplesDir(t)
	dir := filepath.Join(t.TempDir(), "bookinfo-authz")
	copyFiles(t, samples, dir, []string{"bookinfo/platform/kube/bookinfo.yaml", "bookinfo/networking/destination-rule-all.yaml",
		"bookinfo/networking/virtual-service-reviews-jason-v2-v3.yaml", "bookinfo/networking/bookinfo-gateway.yaml"})
	copyFiles(t, "testdata/bookinfo-authz", dir, []string{"policies.yaml"})
	r := migrateClean(t, dir)
	if len(r.Access.Requests) < 2 || r.Access.Checked == 0 {
		t.Fatalf("compared %d requests, %d verdicts: the comparison did not run", len(r.Access.Requests), r.Access.Checked)
	}
	var report bytes.Buffer
	if err := r.WriteReport(&report); err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/bookinfo-authz.golden.md", report.Bytes())
}

// migrateClean migrates dir and checks what every migration must hold:
// the spec renders and validates with no error finding, no stage has an
// error finding it does not explain, and access does not change.
func migrateClean(t *testing.T, dir string) *Result {
	t.Helper()
	r, err := Migrate(dir, DefaultOptions())
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(dir), err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := r.Write(out); err != nil {
		t.Fatal(err)
	}
	b, err := renderer.Render(filepath.Join(out, "spec"), renderer.DefaultOptions())
	if err != nil {
		t.Fatalf("%s: the spec does not render: %v", filepath.Base(dir), err)
	}
	for _, f := range rules.Check(b.Objects, rules.Options{Origin: b.Origin, Context: r.context()}) {
		if f.Severity == rules.SeverityError {
			t.Errorf("%s: the spec has an error finding: %s %s: %s", filepath.Base(dir), f.Rule, f.Object, f.Message)
		}
	}
	for _, f := range r.Access.Unexpected() {
		t.Errorf("%s: stage %s has an unexpected error finding: %s %s: %s", filepath.Base(dir), f.Stage, f.Finding.Rule, f.Finding.Object, f.Finding.Message)
	}
	for _, d := range r.Access.Differences {
		t.Errorf("%s: stage %s changes access: %s → %s %s %s: %s, was %s", filepath.Base(dir), d.Stage, d.From, d.To, d.Request.Method, d.Request.Path, verdict(d.After), verdict(d.Before))
	}
	if len(r.Stages) > 0 {
		last := r.Stages[len(r.Stages)-1].Docs
		if len(last) != len(r.Spec) {
			t.Errorf("%s: the last stage holds %d documents, the spec %d", filepath.Base(dir), len(last), len(r.Spec))
		}
	}
	return r
}

func copyFiles(t *testing.T, from, to string, files []string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(from, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: run go test ./migrate -update and review the file", err)
	}
	if !bytes.Equal(got, want) {
		gotLines, wantLines := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range max(len(gotLines), len(wantLines)) {
			var g, w string
			if i < len(gotLines) {
				g = gotLines[i]
			}
			if i < len(wantLines) {
				w = wantLines[i]
			}
			if g != w {
				t.Fatalf("%s differs at line %d:\n got: %s\nwant: %s\n(go test ./migrate -update rewrites it; review the diff)", path, i+1, g, w)
			}
		}
	}
}
