package version

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/meshcd/meshcd/dataplane"
)

func TestVersionsEnv_IsTheCopyOfHackTools(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("..", "..", "hack", "tools", "versions.env"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(versionsEnv, want) {
		t.Fatal("internal/version/versions.env differs from hack/tools/versions.env: run go generate ./internal/version")
	}
}

func TestGet_TestedWithComesFromVersionsEnvAndBundlesFromTheCatalogue(t *testing.T) {
	info := get(nil, "", "")
	env := parseEnv(versionsEnv)
	if got := info.TestedWith; got.Kubernetes != env["KUBE_VERSION"] || got.Istio != env["ISTIO_VERSION"] || got.GatewayAPI != env["GATEWAY_API_VERSION"] {
		t.Fatalf("tested with %+v, versions.env says %v", got, env)
	}
	for _, v := range []string{info.TestedWith.Kubernetes, info.TestedWith.Istio, info.TestedWith.GatewayAPI} {
		if v == Unknown || !strings.HasPrefix(v, "v") {
			t.Fatalf("versions.env lacks a version: %+v", info.TestedWith)
		}
	}
	var bundles []string
	for _, b := range dataplane.Catalogue() {
		bundles = append(bundles, b.Version)
	}
	if len(bundles) == 0 || !slices.Equal(info.Bundles, bundles) {
		t.Fatalf("bundles %v, catalogue %v", info.Bundles, bundles)
	}
	if info.Go != runtime.Version() || info.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Fatalf("go %q on %q", info.Go, info.Platform)
	}
}

func TestGet_VersionAndCommitFromTheBuildInformation(t *testing.T) {
	bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/meshcd/meshcd", Version: "v0.3.1-0.20261201120000-0123456789ab+dirty"}, Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-12-01T12:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	info := get(bi, "", "")
	if info.Version != "v0.3.1-0.20261201120000-0123456789ab+dirty" || info.Commit != "0123456789abcdef0123456789abcdef01234567" ||
		info.CommitTime != "2026-12-01T12:00:00Z" || !info.Modified {
		t.Fatalf("from build info: %+v", info)
	}
	if s := info.String(); !strings.Contains(s, "commit:      0123456789abcdef0123456789abcdef01234567 (with uncommitted changes), 2026-12-01T12:00:00Z\n") {
		t.Fatalf("text:\n%s", s)
	}

	release := get(bi, "v0.4.0", "fedcba9876543210fedcba9876543210fedcba98")
	if release.Version != "v0.4.0" || release.Commit != "fedcba9876543210fedcba9876543210fedcba98" || release.Modified || release.CommitTime != "" {
		t.Fatalf("the -ldflags -X values of a release win: %+v", release)
	}

	bare := get(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "", "")
	if bare.Version != "(devel)" || bare.Commit != Unknown || !strings.Contains(bare.String(), "commit:      unknown (built without VCS information)\n") {
		t.Fatalf("a build without VCS information: %+v\n%s", bare, bare.String())
	}
}

func TestParseEnv_SkipsCommentsAndNamesWhatIsMissing(t *testing.T) {
	env := parseEnv([]byte("# KUBE_VERSION=v0.0.1\n\nKUBE_VERSION = v1.2.3\nISTIO_VERSION=\n"))
	if env["KUBE_VERSION"] != "v1.2.3" || env["ISTIO_VERSION"] != Unknown || env["GATEWAY_API_VERSION"] != Unknown {
		t.Fatalf("%v", env)
	}
}
