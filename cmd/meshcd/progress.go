package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/meshcd/meshcd/reconciler"
)

// progress shows a reconcile's progress on stderr: on a terminal one line,
// rewritten in place at most every tick; otherwise a plain line when a
// stage starts, when the waypoints waited for change and when the apply
// has done all its objects, so that logs stay short.
type progress struct {
	w        io.Writer
	terminal bool
	tick     time.Duration

	mu     sync.Mutex
	last   reconciler.Progress
	shown  bool
	lastAt time.Time
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, terminal: isTerminal(w), tick: 100 * time.Millisecond}
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *progress) report(e reconciler.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	changed := !p.shown || e.Stage != p.last.Stage || !slices.Equal(e.Waiting, p.last.Waiting)
	finished := e.Stage == reconciler.StageApply && e.Total > 0 && e.Done == e.Total && p.last.Done != p.last.Total
	switch {
	case p.terminal && (changed || finished || time.Since(p.lastAt) >= p.tick):
		fmt.Fprintf(p.w, "\r\033[K%s", describeProgress(e))
	case !p.terminal && (changed || finished):
		fmt.Fprintln(p.w, describeProgress(e))
	default:
		return
	}
	p.last, p.shown, p.lastAt = e, true, time.Now()
}

// done clears the terminal's progress line before the result is printed.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.terminal && p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// describeProgress is a line such as "apply: 120/900 objects, waiting for
// waypoints shop/waypoint".
func describeProgress(e reconciler.Progress) string {
	line := string(e.Stage)
	if e.Total > 0 {
		line += fmt.Sprintf(": %d/%d objects", e.Done, e.Total)
	}
	if len(e.Waiting) > 0 {
		line += ", waiting for waypoints " + strings.Join(e.Waiting, ", ")
	}
	return line
}
