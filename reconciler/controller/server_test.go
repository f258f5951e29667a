package controller

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHook_RefusesBadSignaturesOversizeBodiesAndReplays(t *testing.T) {
	secret := []byte("hook-secret")
	c := &Controller{opts: Options{WebhookSecret: secret}, triggers: make(chan string, 1), metrics: NewMetrics()}
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	sign := func(body []byte) string {
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		return "sha256=" + hex.EncodeToString(mac.Sum(nil))
	}
	post := func(body []byte, sig, delivery string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/hook", bytes.NewReader(body))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-Hub-Signature-256", sig)
		if delivery != "" {
			req.Header.Set("X-GitHub-Delivery", delivery)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var msg bytes.Buffer
		_, _ = msg.ReadFrom(resp.Body)
		return resp.StatusCode, msg.String()
	}
	triggered := func() bool {
		select {
		case <-c.triggers:
			return true
		default:
			return false
		}
	}
	body := []byte(`{"ref":"refs/heads/main"}`)

	for _, tc := range []struct {
		name       string
		body       []byte
		sig        string
		delivery   string
		code       int
		msg        string
		triggering bool
	}{
		{"no signature", body, "", "d-0", http.StatusUnauthorized, "signature does not match", false},
		{"signature of another body", body, sign([]byte(`{"ref":"refs/heads/evil"}`)), "d-1", http.StatusUnauthorized, "signature does not match", false},
		{"signature with another secret", body, "sha256=" + strings.Repeat("ab", 32), "d-2", http.StatusUnauthorized, "signature does not match", false},
		{"body over 1 MiB, signed", bytes.Repeat([]byte("x"), maxHookBody+1), sign(bytes.Repeat([]byte("x"), maxHookBody+1)), "d-3", http.StatusBadRequest, "larger than 1 MiB", false},
		{"a signed push", body, sign(body), "d-4", http.StatusAccepted, "", true},
		{"the same delivery again", body, sign(body), "d-4", http.StatusConflict, "replays are refused", false},
		{"a new delivery", body, sign(body), "d-5", http.StatusAccepted, "", true},
	} {
		code, msg := post(tc.body, tc.sig, tc.delivery)
		if code != tc.code || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: got %d %q, want %d containing %q", tc.name, code, msg, tc.code, tc.msg)
		}
		if got := triggered(); got != tc.triggering {
			t.Errorf("%s: triggered a reconcile: %v, want %v", tc.name, got, tc.triggering)
		}
	}
}

func TestRecentDeliveries_ForgetsTheOldestBeyondItsBound(t *testing.T) {
	var d recentDeliveries
	if !d.first("a") || d.first("a") {
		t.Fatal("a new id is first once")
	}
	for i := range maxDeliveries {
		d.first(string(rune('b'+i%20)) + strings.Repeat("-", i))
	}
	if len(d.seen) != maxDeliveries {
		t.Fatalf("holds %d ids, want at most %d", len(d.seen), maxDeliveries)
	}
	if !d.first("a") {
		t.Fatal("the oldest id must be forgotten once the bound is reached")
	}
}
