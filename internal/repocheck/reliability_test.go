package repocheck

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// inputsLine is where docs/reliability.md records the digest of the fault
// suite's inputs (internal/faults/main_test.go writes it).
var inputsLine = regexp.MustCompile(`(?m)^Inputs: (sha256:[0-9a-f]{64}),`)

func TestReliabilityDoc_RecordsTodaysFaultSuiteInputs(t *testing.T) {
	root := filepath.Join("..", "..")
	doc, err := os.ReadFile(filepath.Join(root, "docs", "reliability.md"))
	if err != nil {
		t.Fatalf("%v; run make fault", err)
	}
	m := inputsLine.FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/reliability.md records no digest of the fault suite's inputs, so it may be older than them: run make fault and commit docs/reliability.md")
	}
	today, err := InputsDigest(root, "internal/faults")
	if err != nil {
		t.Fatal(err)
	}
	if string(m[1]) != today {
		t.Fatalf("docs/reliability.md is stale: it was generated from fault-suite inputs %s, and internal/faults or a package it builds from has changed since (today %s); run make fault and commit docs/reliability.md", m[1], today)
	}
}
