package rules

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/meshspec"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/corpus/*.golden")

// corpusSources are the real-world manifests the catalogue is run over:
// every YAML file under these directories of the Go modules `make tools`
// downloads, at the versions of hack/tools/versions.env.
var corpusSources = []struct{ name, module, version, dir string }{
	{"istio-samples", "istio.io/istio", "ISTIO_VERSION", "samples"},
	{"gateway-api-examples", "sigs.k8s.io/gateway-api", "GATEWAY_API_VERSION", "examples"},
	{"gateway-api-mesh-conformance", "sigs.k8s.io/gateway-api/conformance", "GATEWAY_API_VERSION", "tests/mesh"},
	{"gateway-api-mesh-base", "sigs.k8s.io/gateway-api/conformance", "GATEWAY_API_VERSION", "mesh"},
}

// TestCorpus_RealWorldManifestsHaveOnlyReviewedFindings runs the catalogue
// over each file as written and compares the findings with
// testdata/corpus/<source>.golden (rewritten by -update-corpus). Every
// finding must be judged in testdata/corpus/reviewed.txt: a true finding
// with a one-line reason, or a false positive, which fails the test.
func TestCorpus_RealWorldManifestsHaveOnlyReviewedFindings(t *testing.T) {
	versions := readVersions(t)
	cache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOMODCACHE: %v", err)
	}
	reviewed := readReviewed(t)
	var files, objects, loadErrors, findings, falsePositives int
	seen := map[string]bool{}
	for _, src := range corpusSources {
		version := versions[src.version]
		root := filepath.Join(strings.TrimSpace(string(cache)), src.module+"@"+version, src.dir)
		if _, err := os.Stat(root); err != nil {
			t.Fatalf("%s@%s is not in the Go module cache (%v): run make tools, which downloads it", src.module, version, err)
		}
		var out bytes.Buffer
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || (!strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml")) {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			name := src.name + "/" + filepath.ToSlash(rel)
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files++
			set, err := meshspec.Load(name, data)
			if err != nil {
				loadErrors++
				fmt.Fprintf(&out, "%s: not loaded: %s\n", name, strings.SplitN(err.Error(), "\n", 2)[0])
				return nil
			}
			objects += len(set.Manifests)
			for _, f := range Check(set.Manifests, Options{Origin: func(o *unstructured.Unstructured) meshspec.Position {
				p, _ := set.Origin(meshspec.RefOf(o))
				return p
			}}) {
				findings++
				what, _, _ := strings.Cut(f.Message, ",")
				id := fmt.Sprintf("%s %s %s: %s", f.File, f.Rule, f.Object, what)
				fmt.Fprintf(&out, "%s:%d: %s %s %s: %s\n", f.File, f.Line, f.Severity, f.Rule, f.Object, f.Message)
				verdict, ok := reviewed[id]
				switch {
				case !ok:
					t.Errorf("finding not reviewed; judge it in testdata/corpus/reviewed.txt: %s", id)
				case strings.HasPrefix(verdict, "FALSE POSITIVE"):
					falsePositives++
					t.Errorf("false positive: %s # %s", id, verdict)
				}
				seen[id] = true
			}
			return nil
		})
		if err != nil {
			t.Fatalf("read %s: %v", root, err)
		}
		golden := filepath.Join("testdata", "corpus", src.name+".golden")
		if *updateCorpus {
			if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if want, err := os.ReadFile(golden); err != nil || !bytes.Equal(want, out.Bytes()) {
			t.Errorf("%s differs from what the catalogue finds now (%v); review the change and run go test ./renderer/rules -run TestCorpus -update-corpus\n%s", golden, err, out.String())
		}
	}
	for id := range reviewed {
		if !seen[id] {
			t.Errorf("reviewed.txt judges a finding that no longer occurs: %s", id)
		}
	}
	if files == 0 {
		t.Fatal("the corpus holds no file")
	}
	fmt.Printf("corpus: %d files, %d objects, %d files not loadable, %d findings, %d false positives\n", files, objects, loadErrors, findings, falsePositives)
}

// readVersions reads hack/tools/versions.env.
func readVersions(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "hack", "tools", "versions.env"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok && !strings.HasPrefix(k, "#") {
			out[k] = v
		}
	}
	return out
}

// readReviewed reads testdata/corpus/reviewed.txt: one finding a line,
// "file RULE Kind namespace/name: message up to its first comma # reason".
func readReviewed(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "corpus", "reviewed.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	s := bufio.NewScanner(f)
	for n := 1; s.Scan(); n++ {
		l := strings.TrimSpace(s.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		id, reason, ok := strings.Cut(l, " # ")
		if !ok || strings.TrimSpace(reason) == "" {
			t.Fatalf("reviewed.txt:%d: a finding needs a reason after \" # \": %s", n, l)
		}
		out[strings.TrimSpace(id)] = strings.TrimSpace(reason)
	}
	return out
}
