package faults_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler"
)

// deletes counts the DELETE requests among writes.
func deletes(seen []string) int {
	n := 0
	for _, s := range seen {
		if strings.HasPrefix(s, "DELETE ") {
			n++
		}
	}
	return n
}

// TestBadSource_PrunesNothing converges on version A, then hands meshcd a
// source that is bad in one way and also drops objects: none may go.
func TestBadSource_PrunesNothing(t *testing.T) {
	cases := []struct {
		name   string
		files  func(e *env) map[string]string
		opts   func(*reconciler.Options)
		expect string // in the error, or in PruneHeld
	}{
		{
			name: "render fails",
			files: func(e *env) map[string]string {
				// Version B, which drops objects, next to a broken file.
				e.write(versionB)
				spec, err := os.ReadFile(filepath.Join(e.dir, "mesh.yaml"))
				if err != nil {
					e.t.Fatal(err)
				}
				return map[string]string{"mesh.yaml": string(spec), "broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [oops\n"}
			},
			expect: "broken.yaml",
		},
		{
			name:   "the render is empty",
			files:  func(*env) map[string]string { return map[string]string{"README.md": "nothing here\n"} },
			expect: "--allow-empty",
		},
		{
			name:   "a change would prune more than --max-prune",
			files:  func(e *env) map[string]string { e.write(version{items: []int{0}}); return nil },
			opts:   func(o *reconciler.Options) { o.MaxPrune = 0.5 },
			expect: "--max-prune",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts)
			e.write(versionA)
			e.converge()
			before := e.uids(e.survivors(versionA, versionA))
			files := tc.files(e)
			if files != nil {
				e.files(files)
			}
			w := &clustertest.Writes{}
			res, err := e.process(w.Wrap).Reconcile(context.Background(), e.dir)
			said := res.PruneHeld
			if err != nil {
				said = err.Error()
			}
			_, seen := w.Take()
			t.Logf("meshcd says: %s (%d writes)", said, len(seen))
			ok := strings.Contains(said, tc.expect) && deletes(seen) == 0
			lost, orphaned, unintended, notes := e.count(versionA, before)
			if len(notes) > 0 || !ok {
				t.Logf("%v; writes %v", notes, seen)
			}
			record(t, outcome{Kind: "bad source: " + tc.name, Converged: ok, Lost: lost, Orphaned: orphaned, Unintended: unintended})
		})
	}
}

// widgetCRD is a CRD of the suite's own, to take its API away.
func widgetCRD() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("apiextensions.k8s.io/v1")
	u.SetKind("CustomResourceDefinition")
	u.SetName("widgets.faults.meshcd.dev")
	_ = unstructured.SetNestedMap(u.Object, map[string]any{
		"group": "faults.meshcd.dev",
		"scope": "Namespaced",
		"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
		"versions": []any{map[string]any{
			"name": "v1", "served": true, "storage": true,
			"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
		}},
	}, "spec")
	return u
}

// serveWidgets creates the CRD and waits until its kind is served.
func serveWidgets(t *testing.T, e *env) {
	t.Helper()
	if err := e.admin.Create(context.Background(), widgetCRD()); err != nil {
		t.Fatal(err)
	}
	waitWidgets(t, e, true)
}

// TestBadSource_AKindNoLongerServedHoldsThePrune takes away the API of an
// object meshcd owns while the spec drops it and other objects: the kind
// of an inventory entry no longer resolves, so nothing is pruned until the
// API is back. The API goes in two ways: its CRD is deleted, or its group
// is handed to an aggregated API server that does not answer.
func TestBadSource_AKindNoLongerServedHoldsThePrune(t *testing.T) {
	t.Run("CRD removed", func(t *testing.T) {
		holdsPrune(t, "CRD removed", func(e *env) {
			if err := e.admin.Delete(context.Background(), widgetCRD()); err != nil {
				t.Fatal(err)
			}
			waitWidgets(t, e, false)
		}, func(e *env) { serveWidgets(t, e) })
	})
	t.Run("aggregated API unavailable", func(t *testing.T) {
		apiservice := func() *unstructured.Unstructured {
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("apiregistration.k8s.io/v1")
			u.SetKind("APIService")
			u.SetName("v1.faults.meshcd.dev")
			return u
		}
		holdsPrune(t, "aggregated API unavailable", func(e *env) {
			// The group's APIService, taken from the CRD's registration
			// (without its automanaged label, so it stays as set) and
			// pointed at a Service with no endpoints.
			a := apiservice()
			if err := e.admin.Get(context.Background(), client.ObjectKeyFromObject(a), a); err != nil {
				t.Fatal(err)
			}
			labels := a.GetLabels()
			delete(labels, "kube-aggregator.kubernetes.io/automanaged")
			a.SetLabels(labels)
			_ = unstructured.SetNestedMap(a.Object, map[string]any{"namespace": e.ns, "name": "nowhere", "port": int64(443)}, "spec", "service")
			_ = unstructured.SetNestedField(a.Object, true, "spec", "insecureSkipTLSVerify")
			if err := e.admin.Update(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			waitWidgets(t, e, false)
		}, func(e *env) {
			if err := e.admin.Delete(context.Background(), apiservice()); err != nil {
				t.Fatal(err)
			}
			waitWidgets(t, e, true)
		})
	})
}

// holdsPrune converges on version A plus a Widget, takes the Widget's API
// away, reconciles version B (no Widget, fewer objects) with the process
// that knew the API and with a new one, and gives the API back.
func holdsPrune(t *testing.T, how string, takeAway, giveBack func(*env)) {
	e := newEnv(t, func(o *reconciler.Options) { o.Admit.Allow = []string{"Widget.faults.meshcd.dev"} })
	t.Cleanup(func() {
		// The next test makes the CRD again: wait until this one is gone.
		_ = e.admin.Delete(context.Background(), widgetCRD())
		_ = wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			return apierrors.IsNotFound(e.admin.Get(ctx, client.ObjectKey{Name: widgetCRD().GetName()}, widgetCRD())), nil
		})
	})
	serveWidgets(t, e)
	widget := fmt.Sprintf("---\napiVersion: faults.meshcd.dev/v1\nkind: Widget\nmetadata: {name: w1, namespace: %s}\nspec: {size: 3}\n", e.ns)
	e.write(versionA)
	spec, err := os.ReadFile(filepath.Join(e.dir, "mesh.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	e.files(map[string]string{"mesh.yaml": string(spec) + widget})
	// This process's REST mapping of Widget is cached from before the API
	// went: only the server can tell it is gone.
	w := &clustertest.Writes{}
	r := e.process(w.Wrap)
	if res, err := r.Reconcile(context.Background(), e.dir); err != nil || res.Reason != reconciler.ReasonSucceeded {
		t.Fatalf("with widgets: %v %+v", err, res)
	}
	before := e.uids(e.survivors(versionA, versionA))

	takeAway(e)
	e.write(versionB)
	for _, p := range []struct {
		name string
		r    *reconciler.Reconciler
	}{{"the same process", r}, {"a new process", e.process(w.Wrap)}} {
		w.Take()
		res, err := p.r.Reconcile(context.Background(), e.dir)
		_, sent := w.Take()
		said := fmt.Sprint(err)
		t.Logf("%s: %s (%d deletes among %d writes)", p.name, said, deletes(sent), len(sent))
		ok := err != nil && res.Reason == reconciler.ReasonPruneFailed && strings.Contains(said, "nothing pruned") && strings.Contains(said, "Widget") && deletes(sent) == 0
		lost, orphaned, unintended, notes := e.count(versionA, before)
		if len(notes) > 0 {
			t.Logf("%v", notes)
		}
		record(t, outcome{Kind: "bad source: an inventory entry's kind is not served (" + how + ")", Converged: ok, Lost: lost, Orphaned: orphaned, Unintended: unintended})
	}

	// Once the API is back, the next reconcile prunes what the spec dropped.
	giveBack(e)
	if res, err := e.process(nil).Reconcile(context.Background(), e.dir); err != nil || res.Reason != reconciler.ReasonSucceeded {
		t.Fatalf("with the API back: %v %+v", err, res)
	}
	if ok, why := e.converged(); !ok {
		t.Fatalf("with the API back: %s", why)
	}
}

// waitWidgets waits until widgets are served, or until they are not.
func waitWidgets(t *testing.T, e *env, served bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		l := &unstructured.UnstructuredList{}
		l.SetAPIVersion("faults.meshcd.dev/v1")
		l.SetKind("WidgetList")
		return (e.admin.List(ctx, l, client.InNamespace(e.ns)) == nil) == served, nil
	})
	if err != nil {
		t.Fatalf("widgets served never became %v: %v", served, err)
	}
}

// denyDeletes is a validating admission webhook, on loopback over TLS,
// that refuses every request it is sent.
func denyDeletes(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var refused atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		review := &admissionv1.AdmissionReview{}
		if err := json.NewDecoder(r.Body).Decode(review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		refused.Add(1)
		review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: false, Result: &metav1.Status{Message: "deletes are frozen during the change window", Code: http.StatusForbidden}}
		review.Request = nil
		_ = json.NewEncoder(w).Encode(review)
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, &refused
}

// TestRefusedDeletes_StayInTheInventoryAndGoOnceAllowed registers a
// webhook that denies DELETE in the spec's namespace: the objects the spec
// drops survive, stay in the inventory and are retried; once the webhook
// is gone the next reconcile prunes them.
func TestRefusedDeletes_StayInTheInventoryAndGoOnceAllowed(t *testing.T) {
	e := newEnv(t, nil)
	e.write(versionA)
	e.converge()
	before := e.uids(e.survivors(versionA, versionB))
	srv, refused := denyDeletes(t)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	hook := &unstructured.Unstructured{}
	hook.SetAPIVersion("admissionregistration.k8s.io/v1")
	hook.SetKind("ValidatingWebhookConfiguration")
	hook.SetName("faults-deny-deletes-" + e.ns)
	_ = unstructured.SetNestedSlice(hook.Object, []any{map[string]any{
		"name":                    "deny.faults.meshcd.dev",
		"admissionReviewVersions": []any{"v1"},
		"sideEffects":             "None",
		"failurePolicy":           "Fail",
		"clientConfig":            map[string]any{"url": srv.URL + "/validate", "caBundle": base64.StdEncoding.EncodeToString(ca)},
		"namespaceSelector":       map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": e.ns}},
		"rules":                   []any{map[string]any{"operations": []any{"DELETE"}, "apiGroups": []any{""}, "apiVersions": []any{"v1"}, "resources": []any{"configmaps", "services"}}},
	}}, "webhooks")
	if err := e.admin.Create(context.Background(), hook); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.admin.Delete(context.Background(), hook) })

	e.write(versionB)
	r := e.process(nil)
	for i := 0; i < 2; i++ {
		res, err := r.Reconcile(context.Background(), e.dir)
		if err == nil || res.Reason != reconciler.ReasonPruneFailed || !strings.Contains(err.Error(), "deletes are frozen") {
			t.Fatalf("reconcile %d with deletes refused: %v (%s)", i+1, err, res.Reason)
		}
		if i == 0 {
			t.Logf("meshcd says: %v", err)
		}
		// The survivors stay owned: no orphan, and they are tried again.
		lost, orphaned, unintended, notes := e.count(versionB, before)
		if lost+orphaned+unintended > 0 {
			t.Fatalf("while deletes are refused: %v", notes)
		}
	}
	if n := refused.Load(); n < 12 {
		t.Fatalf("the webhook refused %d deletes; 6 stale objects tried on 2 reconciles make 12", n)
	}
	if err := e.admin.Delete(context.Background(), hook); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the apiserver's webhook configuration informer
	res, err := r.Reconcile(context.Background(), e.dir)
	ok := err == nil && res.Reason == reconciler.ReasonSucceeded
	if ok {
		ok, _ = e.converged()
	}
	lost, orphaned, unintended, notes := e.count(versionB, before)
	if len(notes) > 0 || !ok {
		t.Logf("%v %v", err, notes)
	}
	record(t, outcome{Kind: "refused deletes (admission webhook)", Converged: ok, Lost: lost, Orphaned: orphaned, Unintended: unintended})
}
