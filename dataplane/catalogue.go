package dataplane

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Bundle pins the images of one Istio release.
type Bundle struct {
	// Version is the Istio release, such as "1.31.1".
	Version string `json:"version"`
	// Ztunnel is the per-node L4 proxy image.
	Ztunnel string `json:"ztunnel"`
	// Proxy is the proxyv2 image that waypoints run.
	Proxy string `json:"proxy"`
	// CNI is the install-cni image.
	CNI string `json:"cni"`
	// Pilot is the istiod image the bundle was released with.
	Pilot string `json:"pilot"`
}

//go:embed bundles.yaml
var bundlesYAML []byte

// Catalogue returns the bundled releases, oldest first.
func Catalogue() []Bundle {
	var c struct {
		Bundles []Bundle `json:"bundles"`
	}
	if err := yaml.UnmarshalStrict(bundlesYAML, &c); err != nil {
		panic(fmt.Sprintf("the embedded bundles.yaml is invalid: %v", err)) // caught by TestCatalogue
	}
	return c.Bundles
}

// Lookup returns the bundle of version.
func Lookup(version string) (Bundle, error) {
	var known []string
	for _, b := range Catalogue() {
		if b.Version == version {
			return b, nil
		}
		known = append(known, b.Version)
	}
	return Bundle{}, fmt.Errorf("no bundle %q; meshcd bundles %s (see `meshcd bundle list`)", version, strings.Join(known, ", "))
}

// SkewRule is the supported version skew between istiod and the data plane.
const SkewRule = "istiod must be at least as new as ztunnel and CNI, and at most one minor version ahead"

// CheckSkew refuses a data plane version that istiod cannot serve:
// istiod must be at least as new and at most one minor version ahead.
func CheckSkew(istiod, dataplane string) error {
	cMaj, cMin, err := minor(istiod)
	if err != nil {
		return fmt.Errorf("istiod version: %w", err)
	}
	dMaj, dMin, err := minor(dataplane)
	if err != nil {
		return fmt.Errorf("bundle version: %w", err)
	}
	switch {
	case cMaj != dMaj:
		return fmt.Errorf("istiod %s and bundle %s differ in major version; %s", istiod, dataplane, SkewRule)
	case dMin > cMin:
		return fmt.Errorf("bundle %s is newer than istiod %s; upgrade istiod first: %s", dataplane, istiod, SkewRule)
	case cMin-dMin > 1:
		return fmt.Errorf("bundle %s is %d minor versions behind istiod %s; %s", dataplane, cMin-dMin, istiod, SkewRule)
	}
	return nil
}

// minor parses the major and minor numbers of "1.31", "1.31.1" or
// "1.31-dev".
func minor(v string) (int, int, error) {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return 0, 0, fmt.Errorf("%q is not a version like 1.31.1", v)
	}
	maj, err := strconv.Atoi(parts[0])
	if err != nil {
		return 0, 0, fmt.Errorf("%q is not a version like 1.31.1", v)
	}
	mi, err := strconv.Atoi(strings.SplitN(parts[1], "-", 2)[0])
	if err != nil {
		return 0, 0, fmt.Errorf("%q is not a version like 1.31.1", v)
	}
	return maj, mi, nil
}
