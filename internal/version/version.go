package version

import (
	"bufio"
	"bytes"
	_ "embed"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/meshcd/meshcd/dataplane"
)

// Version and Commit name a release build. Set them with
//
//	go build -ldflags "-X github.com/meshcd/meshcd/internal/version.Version=v0.4.0 -X github.com/meshcd/meshcd/internal/version.Commit=$(git rev-parse HEAD)"
//
// Left empty, they come from the build information Go records: the module
// version, and the commit of a build in a git checkout.
var (
	Version string
	Commit  string
)

// versionsEnv is a copy of hack/tools/versions.env, the versions the local
// control plane of the tests is built from; TestVersionsEnv keeps it equal.
//
//go:generate cp ../../hack/tools/versions.env versions.env
//go:embed versions.env
var versionsEnv []byte

// Unknown stands for what the build did not record.
const Unknown = "unknown"

// Info is what `meshcd version` prints.
type Info struct {
	// Version is meshcd's version: a release's tag, the module version of
	// `go install`, or "(devel)" for a build from a checkout.
	Version string `json:"version"`
	// Commit is the git commit built, Unknown when the build recorded none.
	Commit string `json:"commit"`
	// CommitTime is the commit's time, RFC 3339, when recorded.
	CommitTime string `json:"commitTime,omitempty"`
	// Modified is true when the checkout had uncommitted changes.
	Modified bool `json:"modified,omitempty"`
	// Go is the Go release that built the binary, Platform its GOOS/GOARCH.
	Go       string `json:"go"`
	Platform string `json:"platform"`
	// TestedWith are the versions meshcd's tests run against.
	TestedWith TestedWith `json:"testedWith"`
	// Bundles are the bundled proxy versions, oldest first.
	Bundles []string `json:"bundles"`
}

// TestedWith are the versions of the local control plane meshcd's tests
// run against.
type TestedWith struct {
	Kubernetes string `json:"kubernetes"`
	// Istio is the istio.io/istio module version istiod is built from.
	Istio      string `json:"istio"`
	GatewayAPI string `json:"gatewayAPI"`
}

// Get returns the running binary's Info.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return get(bi, Version, Commit)
}

// get builds an Info from bi (nil when the binary has none) and the
// release overrides.
func get(bi *debug.BuildInfo, version, commit string) Info {
	info := Info{Version: "(devel)", Commit: Unknown, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if bi.Main.Version != "" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Commit = s.Value
			case "vcs.time":
				info.CommitTime = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	if version != "" {
		info.Version = version
	}
	if commit != "" {
		info.Commit, info.CommitTime, info.Modified = commit, "", false
	}
	env := parseEnv(versionsEnv)
	info.TestedWith = TestedWith{Kubernetes: env["KUBE_VERSION"], Istio: env["ISTIO_VERSION"], GatewayAPI: env["GATEWAY_API_VERSION"]}
	for _, b := range dataplane.Catalogue() {
		info.Bundles = append(info.Bundles, b.Version)
	}
	return info
}

// parseEnv reads KEY=VALUE lines; blank lines and # comments are skipped,
// and a key it lacks reads as Unknown.
func parseEnv(data []byte) map[string]string {
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			env[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	for _, k := range []string{"KUBE_VERSION", "ISTIO_VERSION", "GATEWAY_API_VERSION"} {
		if env[k] == "" {
			env[k] = Unknown
		}
	}
	return env
}

// String is the text `meshcd version` prints.
func (i Info) String() string {
	commit := i.Commit
	switch {
	case commit == Unknown:
		commit += " (built without VCS information)"
	case i.Modified:
		commit += " (with uncommitted changes)"
	}
	if i.CommitTime != "" {
		commit += ", " + i.CommitTime
	}
	var b strings.Builder
	b.WriteString("meshcd:      " + i.Version + "\n")
	b.WriteString("commit:      " + commit + "\n")
	b.WriteString("go:          " + i.Go + " " + i.Platform + "\n")
	b.WriteString("tested with: Kubernetes " + i.TestedWith.Kubernetes + ", istiod from istio.io/istio@" + i.TestedWith.Istio + ", Gateway API " + i.TestedWith.GatewayAPI + "\n")
	b.WriteString("bundles:     " + strings.Join(i.Bundles, ", ") + " (meshcd bundle list shows their images)\n")
	return b.String()
}
