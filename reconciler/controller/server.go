package controller

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxHookBody bounds a webhook request body.
const maxHookBody = 1 << 20

// Handler serves /metrics, /healthz, /readyz and the push webhook /hook.
func (c *Controller) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(c.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !c.ready.Load() {
			http.Error(w, "not ready: no reconcile has finished yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/hook", c.hook)
	return mux
}

// hook takes a GitHub push event signed with the shared secret
// (X-Hub-Signature-256: sha256=<hmac>) and triggers a reconcile. A
// delivery id (X-GitHub-Delivery) seen before is a replay and refused.
func (c *Controller) hook(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if len(c.opts.WebhookSecret) == 0 {
		http.Error(w, "webhook disabled: no secret configured", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxHookBody+1))
	if err != nil || len(body) > maxHookBody {
		http.Error(w, "body unreadable or larger than 1 MiB", http.StatusBadRequest)
		return
	}
	if !validSignature(c.opts.WebhookSecret, body, r.Header.Get("X-Hub-Signature-256")) {
		http.Error(w, "signature does not match", http.StatusUnauthorized)
		return
	}
	if id := r.Header.Get("X-GitHub-Delivery"); id != "" && !c.deliveries.first(id) {
		http.Error(w, "delivery "+id+" was received before: replays are refused", http.StatusConflict)
		return
	}
	if ev := r.Header.Get("X-GitHub-Event"); ev != "" && ev != "push" && ev != "ping" {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	c.Trigger("webhook")
	w.WriteHeader(http.StatusAccepted)
}

// validSignature checks a "sha256=<hex>" HMAC of body in constant time.
func validSignature(secret, body []byte, header string) bool {
	sig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// recentDeliveries remembers the last webhook delivery ids.
type recentDeliveries struct {
	mu   sync.Mutex
	seen map[string]bool
	ring []string
	next int
}

// maxDeliveries is how many delivery ids are remembered.
const maxDeliveries = 4096

// first records id and reports whether it is new; the oldest id is
// forgotten once maxDeliveries are held.
func (d *recentDeliveries) first(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen[id] {
		return false
	}
	if d.seen == nil {
		d.seen, d.ring = map[string]bool{}, make([]string, maxDeliveries)
	}
	delete(d.seen, d.ring[d.next])
	d.ring[d.next], d.seen[id] = id, true
	d.next = (d.next + 1) % maxDeliveries
	return true
}
