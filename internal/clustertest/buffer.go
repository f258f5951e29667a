package clustertest

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer is an output that what a test runs (a controller's log, a
// command's stdout) writes from its goroutines while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Count returns how many times sub was written so far.
func (b *Buffer) Count(sub string) int { return strings.Count(b.String(), sub) }
