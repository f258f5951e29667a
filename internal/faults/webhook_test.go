package faults_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler/controller"
	"github.com/meshcd/meshcd/reconciler/source"
)

// ctlDelivery is one request to /hook.
type ctlDelivery struct {
	body []byte
	// signature is the X-Hub-Signature-256 header; see ctlSign.
	signature string
	// id is the X-GitHub-Delivery header; empty leaves it out.
	id string
}

// ctlSign is GitHub's signature of body with key.
func ctlSign(key, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func ctlDeliveryID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// post sends d to the controller's /hook and returns the status code and
// the response body.
func (c *ctl) post(d ctlDelivery) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.srv.URL+"/hook", bytes.NewReader(d.body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("X-GitHub-Event", "push")
	if d.signature != "" {
		req.Header.Set("X-Hub-Signature-256", d.signature)
	}
	if d.id != "" {
		req.Header.Set("X-GitHub-Delivery", d.id)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// reconciles counts the reconciles the controller has logged, finished or
// failed.
func (c *ctl) reconciles() int {
	log := c.log.String()
	return strings.Count(log, "msg=reconciled ") + strings.Count(log, `msg="reconcile failed"`) + strings.Count(log, `msg="suspended; skipping reconcile"`)
}

// ctlHostileDeliveries are the requests /hook must refuse, by the kind of
// fault they are, each with the status code it must get. key is the
// webhook secret; replayed is a delivery /hook has already accepted.
func ctlHostileDeliveries(key []byte, replayed ctlDelivery) []struct {
	kind string
	d    ctlDelivery
	code int
} {
	body := []byte(`{"ref":"refs/heads/main","after":"` + strings.Repeat("a", 40) + `"}`)
	huge := bytes.Repeat([]byte("x"), 1<<20+1)
	return []struct {
		kind string
		d    ctlDelivery
		code int
	}{
		{"hostile: webhook bad signature", ctlDelivery{body: body, signature: ctlSign([]byte("not-the-secret"), body), id: ctlDeliveryID()}, http.StatusUnauthorized},
		{"hostile: webhook bad signature", ctlDelivery{body: body, id: ctlDeliveryID()}, http.StatusUnauthorized}, // none
		{"hostile: webhook bad signature", ctlDelivery{body: body, signature: "sha256=not-hex", id: ctlDeliveryID()}, http.StatusUnauthorized},
		{"hostile: webhook bad signature", ctlDelivery{body: append(body, ' '), signature: ctlSign(key, body), id: ctlDeliveryID()}, http.StatusUnauthorized}, // body changed after signing
		{"hostile: webhook bad signature", ctlDelivery{body: body, signature: strings.Replace(ctlSign(key, body), "sha256=", "sha1=", 1), id: ctlDeliveryID()}, http.StatusUnauthorized},
		{"hostile: webhook oversize body", ctlDelivery{body: huge, signature: ctlSign(key, huge), id: ctlDeliveryID()}, http.StatusBadRequest}, // signed, and still refused
		{"hostile: webhook replayed delivery", replayed, http.StatusConflict},
	}
}

// TestWebhook_HostileDeliveriesAreRefusedAndTriggerNothing sends /hook a
// bad signature (five ways), a signed body over 1 MiB and a replay of a
// delivery it accepted, while a new commit waits: each must be refused
// with its status code and start no reconcile.
func TestWebhook_HostileDeliveriesAreRefusedAndTriggerNothing(t *testing.T) {
	ns := clustertest.Namespace(t, nil)
	repo := newCtlRepo(t, ns)
	rev1 := repo.commit(map[string]string{"settings.yaml": ctlConfigMap("settings", "mode", "one")})
	secret := []byte("webhook-secret-" + ctlDeliveryID())
	c := newCtl(t, ns, source.Options{URL: repo.url()}, func(o *controller.Options) { o.WebhookSecret = secret }) // no interval: only /hook triggers
	c.run()
	c.applied(rev1)

	// A delivery that is accepted, to replay later.
	rev2 := repo.commit(map[string]string{"settings.yaml": ctlConfigMap("settings", "mode", "two")})
	body := []byte(`{"ref":"refs/heads/main"}`)
	good := ctlDelivery{body: body, signature: ctlSign(secret, body), id: ctlDeliveryID()}
	if code, msg := c.post(good); code != http.StatusAccepted {
		t.Fatalf("a signed push is accepted, got %d %q", code, msg)
	}
	c.applied(rev2)

	// A commit waits: a reconcile started by any refused request would apply it.
	waiting := repo.commit(map[string]string{"settings.yaml": ctlConfigMap("settings", "mode", "three")})
	time.Sleep(500 * time.Millisecond) // the accepted delivery's reconcile has logged
	for _, tc := range ctlHostileDeliveries(secret, good) {
		before := c.reconciles()
		code, msg := c.post(tc.d)
		time.Sleep(time.Second) // a trigger starts a reconcile within milliseconds
		after := c.reconciles()
		st, _, err := c.status.Load(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		refused := code == tc.code
		if !refused {
			t.Errorf("%s: got %d %q, want %d", tc.kind, code, strings.TrimSpace(msg), tc.code)
		}
		quiet := after == before && st.LastAttemptedRevision == rev2 && ctlData(t, c.admin, ns, "settings", "mode") == "two"
		if !quiet {
			t.Errorf("%s: the refused request started a reconcile (%d before, %d after; attempted %s)", tc.kind, before, after, st.LastAttemptedRevision)
		}
		t.Logf("%s: %d %s; reconciles %d -> %d", tc.kind, code, strings.TrimSpace(msg), before, after)
		lost, orphaned := ctlCensus(t, c.admin, ns, "settings")
		record(t, outcome{Kind: tc.kind, Converged: refused && quiet, Lost: lost, Orphaned: orphaned})
	}

	// The receiver still works: a new signed delivery applies the waiting commit.
	next := ctlDelivery{body: body, signature: ctlSign(secret, body), id: ctlDeliveryID()}
	if code, msg := c.post(next); code != http.StatusAccepted {
		t.Fatalf("a new signed delivery is accepted, got %d %q", code, msg)
	}
	c.applied(waiting)
}
