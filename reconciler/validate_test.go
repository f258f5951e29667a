package reconciler

import (
	"os"
	"path/filepath"
	"testing"
)

func TestValidate_AnObjectChangedInPlaceIsCheckedAgain(t *testing.T) {
	dir := t.TempDir()
	ns := "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}\n"
	if err := os.WriteFile(filepath.Join(dir, "ns.yaml"), []byte(ns), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &Reconciler{opts: DefaultOptions()}
	bundle, err := r.rendered.Render(dir, r.opts.Render)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.validate(bundle, &Result{}); err != nil {
		t.Fatalf("an ambient namespace alone: %v", err)
	}
	// The same objects, changed in place: now ambient and sidecar-injected.
	labels := bundle.Objects[0].GetLabels()
	labels["istio-injection"] = "enabled"
	bundle.Objects[0].SetLabels(labels)
	res := &Result{}
	if err := r.validate(bundle, res); err == nil || len(res.Findings) != 1 || res.Findings[0].Rule != "AMB001" {
		t.Fatalf("the changed namespace was served the findings of the unchanged one: err=%v findings=%+v", err, res.Findings)
	}
	// Changed back, it is clean again.
	delete(labels, "istio-injection")
	bundle.Objects[0].SetLabels(labels)
	if err := r.validate(bundle, &Result{}); err != nil {
		t.Fatalf("changed back: %v", err)
	}
}
