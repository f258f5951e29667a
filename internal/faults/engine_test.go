package faults_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/apply"
)

// TestRace_AnObjectReplacedBetweenReadAndDeleteSurvives replaces a stale
// ConfigMap with one that is not meshcd's just before meshcd's delete of
// it reaches the API server: the delete carries the read's UID and
// resourceVersion, so the new object survives.
func TestRace_AnObjectReplacedBetweenReadAndDeleteSurvives(t *testing.T) {
	e := newEnv(t, nil)
	e.write(versionA)
	e.converge()
	before := e.uids(e.survivors(versionA, versionB))
	target := "/api/v1/namespaces/" + e.ns + "/configmaps/cfg-0"
	var replaced atomic.Bool
	wrap := func(rt http.RoundTripper) http.RoundTripper {
		return clustertest.RoundTripperFunc(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodDelete && req.URL.Path == target && replaced.CompareAndSwap(false, true) {
				ctx := context.Background()
				old := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg-0", Namespace: e.ns}}
				if err := e.admin.Delete(ctx, old); err != nil {
					t.Errorf("replace cfg-0: %v", err)
				}
				if err := e.admin.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg-0", Namespace: e.ns}, Data: map[string]string{"owner": "someone else"}}); err != nil {
					t.Errorf("replace cfg-0: %v", err)
				}
			}
			return rt.RoundTrip(req)
		})
	}
	e.write(versionB)
	res, err := e.process(wrap).Reconcile(context.Background(), e.dir)
	survived := &corev1.ConfigMap{}
	gerr := e.admin.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: "cfg-0"}, survived)
	ok := replaced.Load() && err == nil && res.Reason == reconciler.ReasonSucceeded && gerr == nil && survived.Data["owner"] == "someone else"
	if !ok {
		t.Errorf("replaced %v, reconcile %v (%s), the new cfg-0: %v %v", replaced.Load(), err, res.Reason, gerr, survived.Data)
	}
	lost, orphaned, unintended, notes := e.count(versionB, before)
	if gerr != nil {
		unintended++
		notes = append(notes, "deleted: the new, unlabelled cfg-0")
	}
	for _, n := range notes {
		t.Log(n)
	}
	record(t, outcome{Kind: "race: a stale object replaced between prune's read and its delete", Converged: ok, Lost: lost, Orphaned: orphaned, Unintended: unintended})
}

// TestLabelRemoved_PruneCleansPartialObjectsAndReportsFullOnes removes
// meshcd's label from a Namespace it enrolls and from a ConfigMap it owns,
// then drops both from the spec: the Namespace loses meshcd's labels all
// the same, and the ConfigMap stays and is reported.
func TestLabelRemoved_PruneCleansPartialObjectsAndReportsFullOnes(t *testing.T) {
	e := newEnv(t, nil)
	e.write(versionB) // enrolls ns2, owns cfg-6
	e.converge()
	ctx := context.Background()
	for _, k := range []objectKey{{"Namespace", "", e.ns2}, {"ConfigMap", e.ns, "cfg-6"}} {
		u, err := e.get(k)
		if err != nil {
			t.Fatal(err)
		}
		patch := fmt.Sprintf(`{"metadata":{"labels":{%q:null}}}`, ambient.LabelManagedBy)
		if err := e.admin.Patch(ctx, u, client.RawPatch(types.MergePatchType, []byte(patch)), client.FieldOwner("kubectl-label")); err != nil {
			t.Fatal(err)
		}
	}
	before := e.uids(append(e.survivors(versionB, versionA), objectKey{"ConfigMap", e.ns, "cfg-6"}))
	e.write(versionA)
	res, err := e.process(nil).Reconcile(ctx, e.dir)
	ns2, _ := e.get(objectKey{"Namespace", "", e.ns2})
	leftovers := []string{}
	for key := range ns2.GetLabels() {
		if strings.HasPrefix(key, "istio.io/") || strings.HasPrefix(key, "meshcd.dev/") {
			leftovers = append(leftovers, key)
		}
	}
	reported := false
	for _, c := range res.Pruned.Changes {
		reported = reported || (c.Object == "ConfigMap "+e.ns+"/cfg-6" && c.Action == apply.Skipped && strings.Contains(c.Reason, "removed meshcd's label"))
	}
	ok := err == nil && len(leftovers) == 0 && reported
	if !ok {
		t.Errorf("reconcile %v; meshcd's labels left on %s: %v; cfg-6 reported: %v (%v)", err, e.ns2, leftovers, reported, res.Pruned)
	}
	lost, orphaned, unintended, notes := e.count(versionA, before)
	for _, n := range notes {
		t.Log(n)
	}
	record(t, outcome{Kind: "label removed by another tool: a Namespace cleaned, a ConfigMap kept and reported", Converged: ok, Lost: lost, Orphaned: orphaned, Unintended: unintended})
}

// TestDrift_ARuleAddedToADefaultDenyPolicyIsRemoved adds a rule that
// admits everyone to meshcd's empty default-deny AuthorizationPolicy with
// another field manager: diff reports it and the next apply removes it.
func TestDrift_ARuleAddedToADefaultDenyPolicyIsRemoved(t *testing.T) {
	e := newEnv(t, nil)
	deny := fmt.Sprintf("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: default-deny, namespace: %s}\nspec: {}\n", e.ns)
	e.files(map[string]string{"mesh.yaml": e.spec(versionA), "deny.yaml": deny})
	e.converge()
	before := e.uids(e.survivors(versionA, versionA))
	ctx := context.Background()
	policy := &unstructured.Unstructured{}
	policy.SetAPIVersion("security.istio.io/v1")
	policy.SetKind("AuthorizationPolicy")
	if err := e.admin.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "default-deny"}, policy); err != nil {
		t.Fatal(err)
	}
	if err := e.admin.Patch(ctx, policy, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"rules":[{}]}}`)), client.FieldOwner("kubectl-patch")); err != nil {
		t.Fatal(err)
	}
	d, err := e.process(nil).Diff(ctx, e.dir)
	reported := err == nil && strings.Contains(fmt.Sprint(d.Changed), "/spec/rules")
	res, rerr := e.process(nil).Reconcile(ctx, e.dir)
	if err := e.admin.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "default-deny"}, policy); err != nil {
		t.Fatal(err)
	}
	spec, _, _ := unstructured.NestedMap(policy.Object, "spec")
	conv, why := e.converged()
	ok := reported && rerr == nil && res.Reason == reconciler.ReasonSucceeded && len(spec) == 0 && conv
	if !ok {
		t.Errorf("diff reported it: %v (%v); apply: %v (%s); spec after: %v; converged: %v %s", reported, err, rerr, res.Reason, spec, conv, why)
	}
	lost, orphaned, unintended, _ := e.count(versionA, before)
	record(t, outcome{Kind: "drift: a rule another manager added to the default-deny policy", Converged: ok, Lost: lost, Orphaned: orphaned, Unintended: unintended})
}
