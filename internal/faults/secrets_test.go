package faults_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/internal/gittest"
	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/controller"
	"github.com/meshcd/meshcd/reconciler/plan"
	"github.com/meshcd/meshcd/reconciler/source"
)

// ctlScan searches what meshcd printed for a token made of a random core
// and characters a URL must escape. It finds the core, whole or any 12
// characters of it (so a token cut short or split by a parser, and every
// URL-escaped form, since the core is hex), and the encoded forms: base64
// (standard, URL, raw) of the token and of the basic-auth "user:token",
// and hex.
type ctlScan struct {
	core    string
	encoded []string
	// texts is everything meshcd printed, by where it came from.
	texts map[string]string
}

func newCtlScan(user, token, core string) *ctlScan {
	s := &ctlScan{core: core}
	seen := map[string]bool{}
	for _, f := range []string{
		base64.StdEncoding.EncodeToString([]byte(token)), base64.URLEncoding.EncodeToString([]byte(token)),
		base64.RawStdEncoding.EncodeToString([]byte(token)), base64.RawURLEncoding.EncodeToString([]byte(token)),
		base64.StdEncoding.EncodeToString([]byte(user + ":" + token)), base64.RawStdEncoding.EncodeToString([]byte(user + ":" + token)),
		hex.EncodeToString([]byte(token)),
	} {
		if !seen[f] {
			seen[f] = true
			s.encoded = append(s.encoded, f)
		}
	}
	return s
}

func (s *ctlScan) add(where string, v any) {
	var text string
	switch x := v.(type) {
	case string:
		text = x
	case nil:
		return
	case error:
		text = x.Error()
	default:
		b, err := json.Marshal(v)
		if err != nil {
			text = fmt.Sprintf("%+v", v)
		} else {
			text = string(b)
		}
	}
	if s.texts == nil {
		s.texts = map[string]string{}
	}
	s.texts[where] += text + "\n"
}

// ctlWindow is how many characters of the core count as a leak.
const ctlWindow = 12

// count returns the places text shows the token: each run of text made of
// pieces of the core counts once, and each encoded form once.
func (s *ctlScan) count(text string) int {
	n := 0
	for _, f := range s.encoded {
		n += strings.Count(text, f)
	}
	var spans [][2]int
	for i := 0; i+ctlWindow <= len(s.core); i++ {
		w := s.core[i : i+ctlWindow]
		for off := 0; ; {
			j := strings.Index(text[off:], w)
			if j < 0 {
				break
			}
			spans = append(spans, [2]int{off + j, off + j + ctlWindow})
			off += j + 1
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i][0] < spans[j][0] })
	end := -1
	for _, sp := range spans {
		if sp[0] > end {
			n++
		}
		end = max(end, sp[1])
	}
	return n
}

// where shows the first place text shows the token.
func (s *ctlScan) where(text string) string {
	i := -1
	for k := 0; k+ctlWindow <= len(s.core) && i < 0; k++ {
		i = strings.Index(text, s.core[k:k+ctlWindow])
	}
	for _, f := range s.encoded {
		if i < 0 {
			i = strings.Index(text, f)
		}
	}
	return text[max(0, i-150):min(len(text), i+150)]
}

// TestSecrets_APlantedTokenIsPrintedNowhere plants one random token as the
// git password and the webhook secret, drives every failure path the
// controller has (wrong password, token in the URL, bearer token refused,
// an unreachable repository, render, validation and admission failures,
// bad, oversize and replayed webhooks) and its successes (reconciles,
// signed webhooks, a drift corrected, a fight declared), then searches
// the logs, events, status objects, metrics, reports and errors for it.
func TestSecrets_APlantedTokenIsPrintedNowhere(t *testing.T) {
	ctx := context.Background()
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	const user = "meshcd"
	core := hex.EncodeToString(b)
	token := "pl4nt-" + core + "+/=@:" // the last five need escaping in a URL
	scan := newCtlScan(user, token, core)

	ns := clustertest.Namespace(t, nil)
	repo := newCtlRepo(t, ns)
	rev1 := repo.commit(map[string]string{
		"settings.yaml": ctlConfigMap("settings", "mode", "ours"),
		"other.yaml":    ctlConfigMap("other", "value", "one"),
	})
	srv := gittest.HTTPServer(t, filepath.Dir(repo.dir), user, token)
	repoURL := srv.URL + "/spec.git"
	auth := &source.Auth{Username: user, Password: token}

	// The controller with the right credentials.
	a := newCtl(t, ns, source.Options{URL: repoURL, Auth: auth}, func(o *controller.Options) {
		o.WebhookSecret = []byte(token)
		o.FightLimit = 2
	})
	ctls := []*ctl{a}
	a.run()
	a.applied(rev1)
	push := func(what string) {
		t.Helper()
		body := []byte(`{"ref":"refs/heads/main"}`)
		d := ctlDelivery{body: body, signature: ctlSign([]byte(token), body), id: ctlDeliveryID()}
		code, msg := a.post(d)
		scan.add("webhook responses", msg)
		if code != http.StatusAccepted {
			t.Fatalf("%s: a signed push got %d %q", what, code, msg)
		}
	}
	failed := func(rev, reason string) {
		t.Helper()
		a.waitStatus(reason+" at "+rev, time.Minute, func(s *controller.Status) bool {
			status, r, _ := ctlCondition(s, "Ready")
			return s.LastAttemptedRevision == rev && status == "False" && r == reason
		})
	}

	// A drift, corrected.
	edit := corev1ac.ConfigMap("settings", ns).WithData(map[string]string{"mode": "theirs"})
	if err := a.admin.Apply(ctx, edit, client.FieldOwner("kubectl-edit"), client.ForceOwnership); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for ctlData(t, a.admin, ns, "settings", "mode") != "ours" {
		if time.Now().After(deadline) {
			t.Fatal("the drift was not corrected")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A fight, declared.
	f := startFighter(t, ns, "settings")
	a.waitStatus("a fight", time.Minute, func(s *controller.Status) bool { return len(s.Fights) > 0 })
	a.waitEvent("FightDetected", 10*time.Second)
	f.halt()

	// Render, validation and admission failures, each pushed by a webhook.
	revBroken := repo.commit(map[string]string{"broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [oops\n"})
	push("render failure")
	failed(revBroken, string(reconciler.ReasonRenderFailed))
	revInvalid := repo.commit(map[string]string{"broken.yaml": "", "policy.yaml": `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: both, namespace: NS}
spec:
  selector: {matchLabels: {app: orders}}
  targetRefs: [{kind: Service, group: "", name: orders}]
`})
	push("validation failure")
	failed(revInvalid, string(reconciler.ReasonValidationFailed))
	revRefused := repo.commit(map[string]string{"policy.yaml": "", "role.yaml": `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: grab, namespace: NS}
rules: [{apiGroups: [""], resources: [secrets], verbs: [get]}]
`})
	push("admission refusal")
	failed(revRefused, string(reconciler.ReasonValidationFailed))
	revFixed := repo.commit(map[string]string{"role.yaml": "", "other.yaml": ctlConfigMap("other", "value", "two")})
	push("fixed")
	a.applied(revFixed)

	// Hostile webhooks, and a replay of an accepted one.
	body := []byte(`{"ref":"refs/heads/main"}`)
	accepted := ctlDelivery{body: body, signature: ctlSign([]byte(token), body), id: ctlDeliveryID()}
	if code, msg := a.post(accepted); code != http.StatusAccepted {
		t.Fatalf("a signed push got %d %q", code, msg)
	}
	for _, tc := range ctlHostileDeliveries([]byte(token), accepted) {
		code, msg := a.post(tc.d)
		scan.add("webhook responses", msg)
		if code != tc.code {
			t.Errorf("%s: got %d, want %d", tc.kind, code, tc.code)
		}
	}

	// Reports: a reconcile's result, diff, drift, status and a plan of two
	// revisions, each fetched over HTTP with the token.
	fetched := func(commit string) *source.Artifact {
		t.Helper()
		ref := source.Ref{Branch: "main"}
		if commit != "" {
			ref = source.Ref{Commit: commit}
		}
		art, _, err := source.New(source.Options{URL: repoURL, Auth: auth, Ref: ref, WorkDir: t.TempDir()}).Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return art
	}
	head := fetched("")
	opts := reconciler.DefaultOptions()
	opts.Name = a.name
	rec := reconciler.New(a.admin, opts)
	res, err := rec.Reconcile(ctx, head.Dir)
	scan.add("reconcile result", res)
	scan.add("errors", err)
	diff, err := rec.Diff(ctx, head.Dir)
	scan.add("diff report", diff)
	scan.add("errors", err)
	rep, err := rec.Drift(ctx, head.Dir)
	scan.add("drift report", rep)
	scan.add("errors", err)
	status, err := rec.Status(ctx)
	scan.add("status report", status)
	scan.add("errors", err)
	base := fetched(strings.TrimPrefix(rev1, "main@sha1:"))
	p, err := plan.Compute(base.Revision, base.Dir, head.Revision, head.Dir, plan.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	scan.add("plan", p)
	scan.add("plan", p.Markdown(60000))
	scan.add("plan", p.Text())

	// The repository goes away.
	srv.Close()
	a.Trigger("test: repository unreachable")
	failed(revFixed, "FetchFailed")

	// Failing auth and unreachable repositories, each with the token: a
	// controller each, reconciled once.
	wrong := gittest.HTTPServer(t, filepath.Dir(repo.dir), user, "not-the-token")
	right := gittest.HTTPServer(t, filepath.Dir(repo.dir), user, token)
	closed := ctlClosedURL(t)
	withToken := func(base string) string {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword(user, token)
		return u.String()
	}
	for i, src := range []source.Options{
		{URL: wrong.URL + "/spec.git", Auth: auth},                                                  // wrong password
		{URL: withToken(wrong.URL + "/spec.git")},                                                   // the token in the URL
		{URL: wrong.URL + "/spec.git", Auth: &source.Auth{BearerToken: token}},                      // the token as a bearer token
		{URL: withToken(closed), Auth: auth},                                                        // nothing listens
		{URL: withToken("http://meshcd-no-such-host.invalid/spec.git"), Auth: auth},                 // no such host
		{URL: withToken(wrong.URL + "/spec.git"), Auth: &source.Auth{Password: token}},              // both
		{URL: withToken(right.URL + "/nope.git"), Auth: auth},                                       // no such repository
		{URL: strings.Replace(right.URL, "http://", "http://"+user+":"+token+"@", 1) + "/spec.git"}, // the token pasted into the URL unescaped
	} {
		b := newCtl(t, fmt.Sprintf("%s-auth%d", ns, i), src, func(o *controller.Options) { o.WebhookSecret = []byte(token) })
		ctls = append(ctls, b)
		err := b.Reconcile(ctx, "test: failing source")
		if err == nil {
			t.Errorf("source %d: a failing source reconciled", i)
		}
		scan.add("errors", err)
		src.WorkDir = t.TempDir()
		_, _, ferr := source.New(src).Fetch(ctx)
		scan.add("errors", ferr)
		t.Logf("source %d: %v", i, err)
	}

	// Collect: logs, metrics, status objects, events.
	for _, c := range ctls {
		scan.add("logs", c.log.String())
		scan.add("metrics", c.get("/metrics"))
		for _, kind := range []string{"status", "inventory", "rollout"} {
			var cm corev1.ConfigMap
			err := a.admin.Get(ctx, client.ObjectKey{Namespace: opts.Namespace, Name: "meshcd-" + kind + "-" + c.name}, &cm)
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			scan.add("status objects", cm)
		}
	}
	time.Sleep(2 * time.Second) // events are sent asynchronously
	reasons := map[string]int{}
	for _, namespace := range []string{opts.Namespace, ns} {
		var core corev1.EventList
		if err := a.admin.List(ctx, &core, client.InNamespace(namespace)); err != nil {
			t.Fatal(err)
		}
		scan.add("events", core)
		for _, e := range core.Items {
			for _, c := range ctls {
				if e.InvolvedObject.Name == c.status.Name {
					reasons[e.Reason]++
				}
			}
		}
		var events eventsv1.EventList
		if err := a.admin.List(ctx, &events, client.InNamespace(namespace)); err != nil {
			t.Fatal(err)
		}
		scan.add("events", events)
	}
	var cms corev1.ConfigMapList
	if err := a.admin.List(ctx, &cms, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	scan.add("applied objects", cms)

	// The scan finds the token where it is meant to be.
	req, _ := http.NewRequest(http.MethodGet, repoURL, nil)
	req.SetBasicAuth(user, token)
	for what, control := range map[string]string{
		"the credentials":      fmt.Sprintf("%+v", *auth),
		"a basic-auth header":  req.Header.Get("Authorization"),
		"a URL with the token": withToken(repoURL),
	} {
		if scan.count(control) == 0 {
			t.Fatalf("the scan does not find the token in %s: %q", what, control)
		}
	}

	// A place that printed nothing would pass the scan without a test.
	for _, where := range []string{"webhook responses", "reconcile result", "diff report", "drift report", "status report", "plan", "errors", "logs", "metrics", "status objects", "events", "applied objects"} {
		if strings.TrimSpace(scan.texts[where]) == "" {
			t.Errorf("nothing was scanned from the %s", where)
		}
	}
	found, scanned := 0, 0
	for where, text := range scan.texts {
		scanned += len(text)
		if n := scan.count(text); n > 0 {
			found += n
			t.Errorf("the token is printed %d times in %s, first here: %q", n, where, scan.where(text))
		}
	}
	t.Logf("scanned %d bytes (%d places) for any %d characters of the token's core and %d encoded forms; events on the status ConfigMaps by reason: %v; found %d",
		scanned, len(scan.texts), ctlWindow, len(scan.encoded), reasons, found)
	for _, want := range []string{"FetchFailed", "RenderFailed", "ValidationFailed", "FightDetected", "ReconciliationSucceeded"} {
		if reasons[want] == 0 {
			t.Errorf("no %s event was scanned", want)
		}
	}
	recordSecrets(t, found)
}

// ctlClosedURL is an http URL on a loopback port nothing listens on.
func ctlClosedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/spec.git"
}
