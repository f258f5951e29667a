package dataplane

import (
	"bytes"
	"testing"
)

func TestWriteStatus_ShowsStageCanaryPinsAndZtunnelNodes(t *testing.T) {
	var b bytes.Buffer
	err := WriteStatus(&b, map[string]*State{
		"proxies": {
			Bundle: "1.31.1", Phase: PhaseProgressing, StageName: "hello", Message: "stage hello (hello) canary at weight 50",
			Canary:  &CanaryState{Namespaces: []string{"hello"}, Image: "proxyv2:1.31.1", Weight: 50},
			Pins:    map[string]string{"shop": "proxyv2:1.31.1", "httpbin": "proxyv2:1.31.1"},
			Ztunnel: &ZtunnelState{Previous: "ztunnel:1.31.0", Replaced: []string{"node-0", "node-1"}},
		},
		"empty": {Bundle: "1.31.0", Phase: PhasePending, Message: "preflight failed"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `empty: Pending, bundle 1.31.0, stage 
  preflight failed
proxies: Progressing, bundle 1.31.1, stage hello
  stage hello (hello) canary at weight 50
  canary proxyv2:1.31.1: weight 50 in hello
  waypoints of httpbin pinned to proxyv2:1.31.1
  waypoints of shop pinned to proxyv2:1.31.1
  ztunnel replaced on node-0, node-1, in that order (before: ztunnel:1.31.0)
`
	if b.String() != want {
		t.Fatalf("status:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := WriteStatus(&b, nil); err != nil || b.String() != "no rollout has started\n" {
		t.Fatalf("no states: %q %v", b.String(), err)
	}
}
