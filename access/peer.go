package access

import (
	"strconv"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

type peerAuthentication struct {
	namespace, name string
	spec            struct {
		Selector *struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Mtls *struct {
			Mode string `json:"mode"`
		} `json:"mtls"`
		PortLevelMtls map[string]struct {
			Mode string `json:"mode"`
		} `json:"portLevelMtls"`
	}
}

func readPeerAuthentication(o *unstructured.Unstructured) (*peerAuthentication, error) {
	pa := &peerAuthentication{namespace: o.GetNamespace(), name: o.GetName()}
	return pa, decodeSpec(o, &pa.spec)
}

func (pa *peerAuthentication) ref() string { return pa.namespace + "/" + pa.name }

func (pa *peerAuthentication) mode() string {
	if pa.spec.Mtls == nil || pa.spec.Mtls.Mode == "UNSET" {
		return ""
	}
	return pa.spec.Mtls.Mode
}

func (pa *peerAuthentication) selected() bool {
	return pa.spec.Selector != nil && len(pa.spec.Selector.MatchLabels) > 0
}

// mtlsMode is the effective mTLS mode on a workload port.
type mtlsMode struct {
	strict bool
	// by names the PeerAuthentication that set the mode; empty for the
	// default, PERMISSIVE.
	by string
	// undecided says why the mode is not known.
	undecided string
}

// effectiveMTLS follows convertedSelectorPeerAuthentications in
// pilot/pkg/serviceregistry/ambient/authorization.go: the mesh policy (root
// namespace, no selector), overridden by the namespace policy unless UNSET,
// overridden by a workload policy (not in the root namespace) and its
// port-level mode for the port. With none, the mode is PERMISSIVE. istiod
// keeps the oldest of two policies at one level; the input has no creation
// times, so two that disagree leave the mode undecided.
func (m *Model) effectiveMTLS(w *workload, targetPort int32) mtlsMode {
	var levels [3][]*peerAuthentication
	for _, pa := range m.peerAuths {
		switch {
		case !pa.selected() && pa.namespace == m.opts.RootNamespace:
			levels[0] = append(levels[0], pa)
		case !pa.selected() && pa.namespace == w.namespace:
			levels[1] = append(levels[1], pa)
		case pa.selected() && pa.namespace == w.namespace && pa.namespace != m.opts.RootNamespace &&
			selects(pa.spec.Selector.MatchLabels, w.labels):
			levels[2] = append(levels[2], pa)
		}
	}
	var out mtlsMode
	for _, level := range levels {
		if len(level) == 0 {
			continue
		}
		pa := level[0]
		for _, other := range level[1:] {
			if other.mode() != pa.mode() || len(other.spec.PortLevelMtls) > 0 || len(pa.spec.PortLevelMtls) > 0 {
				out.undecided = "PeerAuthentications " + pa.ref() + " and " + other.ref() + " both apply; istiod keeps the oldest, which the input does not say"
				return out
			}
		}
		mode := pa.mode()
		if port, ok := pa.spec.PortLevelMtls[strconv.Itoa(int(targetPort))]; ok && port.Mode != "" && port.Mode != "UNSET" {
			mode = port.Mode
		}
		if mode != "" {
			out.strict, out.by = mode == "STRICT", pa.ref()
		}
	}
	return out
}
