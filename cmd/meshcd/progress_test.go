package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/meshcd/meshcd/reconciler"
)

// steps are the progress of an apply of 300 objects whose waypoint label
// waits for shop/waypoint.
func steps() []reconciler.Progress {
	out := []reconciler.Progress{{Stage: reconciler.StageRender}}
	for i := 0; i <= 299; i++ {
		out = append(out, reconciler.Progress{Stage: reconciler.StageApply, Done: i, Total: 300})
	}
	wait := []string{"shop/waypoint"}
	out = append(out,
		reconciler.Progress{Stage: reconciler.StageApply, Done: 299, Total: 300, Waiting: wait},
		reconciler.Progress{Stage: reconciler.StageApply, Done: 299, Total: 300, Waiting: wait},
		reconciler.Progress{Stage: reconciler.StageApply, Done: 299, Total: 300, Waiting: []string{}},
		reconciler.Progress{Stage: reconciler.StageApply, Done: 300, Total: 300, Waiting: []string{}},
		reconciler.Progress{Stage: reconciler.StagePrune},
		reconciler.Progress{Stage: reconciler.StageHealth},
	)
	return out
}

func TestProgress_PlainLinesPerStageAndWaitNotPerObject(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b)
	for _, e := range steps() {
		p.report(e)
	}
	p.done()
	want := "render\napply: 0/300 objects\napply: 299/300 objects, waiting for waypoints shop/waypoint\napply: 299/300 objects\napply: 300/300 objects\nprune\nhealth\n"
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestProgress_TerminalRewritesOneLineAtMostEveryTick(t *testing.T) {
	var b bytes.Buffer
	p := &progress{w: &b, terminal: true, tick: time.Hour}
	for _, e := range steps() {
		p.report(e)
	}
	p.done()
	frames := strings.Split(b.String(), "\r\033[K")
	// The first frame is empty; then one per stage, wait change and the
	// end of the apply; the last clears the line.
	want := []string{"", "render", "apply: 0/300 objects", "apply: 299/300 objects, waiting for waypoints shop/waypoint", "apply: 299/300 objects", "apply: 300/300 objects", "prune", "health", ""}
	if strings.Join(frames, "|") != strings.Join(want, "|") {
		t.Fatalf("frames %q", frames)
	}
	if strings.Contains(b.String(), "\n") {
		t.Fatal("a terminal progress line ends in a newline")
	}
}
