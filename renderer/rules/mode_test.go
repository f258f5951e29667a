package rules

import (
	"strings"
	"testing"
)

// labels parses "k=v,k2=v2".
func labels(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func TestPodMode_FollowsTheInjectorAndIstioCNI(t *testing.T) {
	for _, tc := range []struct {
		name, ns, nsLabels, pod, annotations string
		hostNetwork                          bool
		want                                 Mode
	}{
		{"unlabelled namespace", "shop", "", "", "", false, ModeNone},
		{"ambient namespace", "shop", "istio.io/dataplane-mode=ambient", "", "", false, ModeAmbient},
		{"namespace labelled none", "shop", "istio.io/dataplane-mode=none", "", "", false, ModeNone},
		{"injected namespace", "shop", "istio-injection=enabled", "", "", false, ModeSidecar},
		{"revision namespace", "shop", "istio.io/rev=canary", "", "", false, ModeSidecar},
		{"ambient and injected: the sidecar wins", "shop", "istio.io/dataplane-mode=ambient,istio-injection=enabled", "", "", false, ModeSidecar},
		{"ambient and revision: the sidecar wins", "shop", "istio.io/dataplane-mode=ambient,istio.io/rev=canary", "", "", false, ModeSidecar},
		{"ambient with injection disabled", "shop", "istio.io/dataplane-mode=ambient,istio-injection=disabled", "", "", false, ModeAmbient},
		{"injection disabled wins over a revision", "shop", "istio.io/rev=canary,istio-injection=disabled", "", "", false, ModeNone},
		{"injection label other than enabled", "shop", "istio-injection=true", "", "", false, ModeNone},
		{"pod opts out of injection by label", "shop", "istio-injection=enabled,istio.io/dataplane-mode=ambient", "sidecar.istio.io/inject=false", "", false, ModeAmbient},
		{"pod opts out of injection by annotation", "shop", "istio-injection=enabled", "", "sidecar.istio.io/inject=false", false, ModeNone},
		{"the label wins over the annotation", "shop", "istio-injection=enabled", "sidecar.istio.io/inject=true", "sidecar.istio.io/inject=false", false, ModeSidecar},
		{"pod asks for a sidecar by label in an ambient namespace", "shop", "istio.io/dataplane-mode=ambient", "sidecar.istio.io/inject=true", "", false, ModeSidecar},
		{"pod asks for a sidecar by annotation only: the webhook is not called", "shop", "istio.io/dataplane-mode=ambient", "", "sidecar.istio.io/inject=true", false, ModeAmbient},
		{"pod names a revision in an unlabelled namespace", "shop", "", "istio.io/rev=canary", "", false, ModeSidecar},
		{"pod asks for a sidecar in a namespace with injection disabled", "shop", "istio-injection=disabled", "sidecar.istio.io/inject=true", "", false, ModeNone},
		{"pod labelled ambient in an unlabelled namespace", "shop", "", "istio.io/dataplane-mode=ambient", "", false, ModeAmbient},
		{"pod labelled none in an ambient namespace", "shop", "istio.io/dataplane-mode=ambient", "istio.io/dataplane-mode=none", "", false, ModeNone},
		{"pod labelled ambient in an injected namespace: the sidecar wins", "shop", "istio-injection=enabled", "istio.io/dataplane-mode=ambient", "", false, ModeSidecar},
		{"host network is never meshed", "shop", "istio.io/dataplane-mode=ambient", "", "", true, ModeNone},
		{"kube-system is never injected", "kube-system", "istio-injection=enabled", "", "", false, ModeNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PodMode(tc.ns, labels(tc.nsLabels), labels(tc.pod), labels(tc.annotations), tc.hostNetwork); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestCheck_AMB020StatesWhatIstiodDoesWithL7Rules(t *testing.T) {
	for action, want := range map[string]string{
		"ALLOW": "istiod omits every rule with HTTP attributes, so what those rules name is not allowed",
		"DENY":  "istiod enforces it without the HTTP attributes, so it denies more than written",
	} {
		objs, opts := load(t, "in", docs(ambientNS, policy("  action: "+action+"\n  rules: [{from: [{source: {namespaces: [guests]}}], when: [{key: 'request.headers[x-role]', values: [guest]}]}]\n")))
		f := Check(objs, opts)
		if len(f) != 1 || f[0].Rule != "AMB020" || !strings.Contains(f[0].Message, want) || !strings.Contains(f[0].Message, "pilot/pkg/serviceregistry/ambient/authorization.go") {
			t.Errorf("%s: want AMB020 saying %q and citing authorization.go, got %v", action, want, f)
		}
	}
}
