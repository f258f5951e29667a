package clustertest

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// Writes counts the requests that change the cluster, every mutating verb
// that is not a dry-run, made through a rest.Config whose WrapTransport
// is its Wrap. Before and After can act on each write; set them before the
// requests start.
type Writes struct {
	mu   sync.Mutex
	seen []string
	last time.Time
	// requests counts every request, reads and dry-runs too.
	requests int
	// reads are the requests that are not writes, as "METHOD path".
	reads []string
	// Before, when set, is called with the index of each write before it
	// is sent; an error stops it there.
	Before func(i int, req *http.Request) error
	// After, when set, is called with the index of each write once it was
	// answered.
	After func(i int, req *http.Request, resp *http.Response)
}

// IsWrite reports whether req changes the cluster.
func IsWrite(req *http.Request) bool {
	switch req.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return !strings.Contains(req.URL.RawQuery, "dryRun")
	}
	return false
}

// Wrap counts the writes sent through rt.
func (w *Writes) Wrap(rt http.RoundTripper) http.RoundTripper {
	return RoundTripperFunc(func(req *http.Request) (*http.Response, error) {
		w.mu.Lock()
		w.requests++
		write := IsWrite(req)
		if !write {
			w.reads = append(w.reads, req.Method+" "+req.URL.Path)
		}
		w.mu.Unlock()
		if !write {
			return rt.RoundTrip(req)
		}
		w.mu.Lock()
		i := len(w.seen)
		w.seen = append(w.seen, req.Method+" "+req.URL.Path)
		before, after := w.Before, w.After
		w.mu.Unlock()
		if before != nil {
			if err := before(i, req); err != nil {
				return nil, err
			}
		}
		resp, err := rt.RoundTrip(req)
		w.mu.Lock()
		w.last = time.Now()
		w.mu.Unlock()
		if after != nil && err == nil {
			after(i, req, resp)
		}
		return resp, err
	})
}

// Take returns the number of writes since the last Take and each one as
// "METHOD path", and starts counting again.
func (w *Writes) Take() (int, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.seen
	w.seen = nil
	return len(s), s
}

// TakeRequests returns the number of requests of any kind since the last
// TakeRequests, and starts counting again.
func (w *Writes) TakeRequests() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.requests
	w.requests = 0
	return n
}

// TakeReads returns each request that was not a write since the last
// TakeReads, as "METHOD path", and starts again.
func (w *Writes) TakeReads() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.reads
	w.reads = nil
	return r
}

// First returns the first n writes since the last Take.
func (w *Writes) First(n int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.seen[:n]...)
}

// To is how many writes since the last Take went to the URL path.
func (w *Writes) To(path string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, s := range w.seen {
		if _, p, _ := strings.Cut(s, " "); p == path {
			n++
		}
	}
	return n
}

// Last is when the last write was answered.
func (w *Writes) Last() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// RoundTripperFunc is a function that is an http.RoundTripper.
type RoundTripperFunc func(*http.Request) (*http.Response, error)

// RoundTrip calls f.
func (f RoundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
