package faults_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The table is written whatever the outcome: a fault that did not converge
// shows as failed in its row, the total and the summary line, and a failed
// run says so.
func TestReport_WritesAFailedFaultAsFailed(t *testing.T) {
	ts := &tallies{outcomes: []outcome{
		{Kind: "kill before an apply write", Converged: true},
		{Kind: "kill before an apply write", Converged: false, Lost: 1},
		{Kind: "fight", Converged: true},
	}, scanned: true}
	path := filepath.Join(t.TempDir(), "reliability.md")
	var line strings.Builder
	if err := ts.report(&line, path, 1, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	want := "faults: 3 injected, 2 converged, 1 failed, 1 lost, 0 orphaned, 0 unintended deletions, 0 secrets printed"
	if strings.TrimSpace(line.String()) != want {
		t.Errorf("summary line %q, want %q", line.String(), want)
	}
	for _, w := range []string{
		"Result: **FAILED** (go test exit code 1): 1 of 3 faults failed",
		"| kill before an apply write | 2 | 1 | 1 | 1 | 0 | 0 |",
		"| fight | 1 | 1 | 0 | 0 | 0 | 0 |",
		"| **total** | **3** | **2** | **1** | **1** | **0** | **0** |",
		"```\n" + want + "\n```",
		"\nInputs: sha256:",
	} {
		if !strings.Contains(doc, w) {
			t.Errorf("the table lacks %q:\n%s", w, doc)
		}
	}

	passed := &tallies{outcomes: []outcome{{Kind: "fight", Converged: true}}}
	if err := passed.report(&line, path, 0, time.Second); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); !strings.Contains(string(data), "Result: **passed**") || !strings.Contains(string(data), "secret was found in (logs, events, status, metrics, reports): not run.") {
		t.Errorf("a passed run:\n%s", data)
	}
}
