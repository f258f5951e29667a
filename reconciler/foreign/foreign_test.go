package foreign

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/ambient"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func entry(manager string, op metav1.ManagedFieldsOperationType, subresource string, at time.Time, fields string) metav1.ManagedFieldsEntry {
	t := metav1.NewTime(at)
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, Subresource: subresource, Time: &t, APIVersion: "security.istio.io/v1", FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
}

func object(doc string, entries ...metav1.ManagedFieldsEntry) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal([]byte(doc), &u.Object); err != nil {
		panic(err)
	}
	if len(entries) > 0 {
		u.SetManagedFields(entries)
	}
	return u
}

const denyAll = `{"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"default-deny","namespace":"shop","labels":{"app.kubernetes.io/managed-by":"meshcd"}},"spec":{}}`

// The default-deny policy with a rule another manager added: the rule
// opens the namespace, and only managedFields shows who added it.
func deniedThenOpened() (desired, live *unstructured.Unstructured) {
	desired = object(denyAll)
	live = object(`{"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"default-deny","namespace":"shop","resourceVersion":"42",
		"finalizers":["example.com/keep"],
		"labels":{"app.kubernetes.io/managed-by":"meshcd","team":"payments"},
		"annotations":{"istio.io/dry-run":"true","deployment.kubernetes.io/revision":"3"}},
		"spec":{"rules":[{}]},"status":{"conditions":[]}}`,
		entry(ambient.FieldManager, metav1.ManagedFieldsOperationApply, "", t0, `{"f:metadata":{"f:labels":{"f:app.kubernetes.io/managed-by":{}}},"f:spec":{}}`),
		entry("kubectl-patch", metav1.ManagedFieldsOperationUpdate, "", t0.Add(time.Minute), `{"f:metadata":{"f:finalizers":{".":{},"v:\"example.com/keep\"":{}},"f:labels":{"f:team":{}}},"f:spec":{"f:rules":{}}}`),
		entry("kubectl-annotate", metav1.ManagedFieldsOperationUpdate, "", t0.Add(2*time.Minute), `{"f:metadata":{"f:annotations":{".":{},"f:istio.io/dry-run":{},"f:deployment.kubernetes.io/revision":{}}}}`),
		entry("pilot-discovery", metav1.ManagedFieldsOperationApply, "status", t0.Add(3*time.Minute), `{"f:status":{"f:conditions":{}}}`),
		entry(ambient.FieldManager, metav1.ManagedFieldsOperationUpdate, "", t0, `{"f:spec":{"f:action":{}}}`),
	)
	return desired, live
}

func TestAdded_NamesTheRuleAndIstioAnnotationAnotherManagerAdded(t *testing.T) {
	desired, live := deniedThenOpened()
	got, err := Added(desired, live)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, f := range got {
		lines = append(lines, f.String())
	}
	want := "/metadata/annotations/istio.io~1dry-run (kubectl-annotate),/spec/rules (kubectl-patch)"
	if strings.Join(lines, ",") != want {
		t.Fatalf("added fields\n got %s\nwant %s", strings.Join(lines, ","), want)
	}
	if v, _ := json.Marshal(got[1].Value); string(v) != `[{}]` || got[1].Time == nil || !got[1].Time.Equal(t0.Add(time.Minute)) {
		t.Fatalf("the rule's value and time: %s %v", v, got[1].Time)
	}
}

func TestAdded_NothingWhenOthersOwnOnlyWhatDoesNotCount(t *testing.T) {
	desired, live := deniedThenOpened()
	delete(live.Object, "spec")
	live.SetManagedFields(live.GetManagedFields()[3:]) // status and meshcd's own update
	if got, err := Added(desired, live); err != nil || len(got) != 0 {
		t.Fatalf("status and meshcd's own update are not added fields: %v %v", got, err)
	}
	partial := object(denyAll)
	partial.SetAnnotations(map[string]string{ambient.AnnotationOwnership: ambient.OwnershipPartial})
	_, live = deniedThenOpened()
	if got, _ := Added(partial, live); len(got) != 0 {
		t.Fatalf("an object meshcd owns partly has no added fields: %v", got)
	}
}

// A Service port is a list entry keyed by port and protocol; the rendered
// entry leaves the protocol to the server's default.
func TestAdded_AnExtraEntryInAKeyedList(t *testing.T) {
	desired := object(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"orders-v1","namespace":"shop"},"spec":{"selector":{"app":"orders"},"ports":[{"name":"http","port":8080}]}}`)
	live := object(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"orders-v1","namespace":"shop","resourceVersion":"7"},"spec":{"clusterIP":"10.96.0.10","selector":{"app":"orders"},
		"ports":[{"name":"http","port":8080,"protocol":"TCP","targetPort":8080},{"name":"debug","port":9090,"protocol":"TCP","targetPort":9090}]}}`,
		entry(ambient.FieldManager, metav1.ManagedFieldsOperationApply, "", t0, `{"f:spec":{"f:ports":{"k:{\"port\":8080,\"protocol\":\"TCP\"}":{".":{},"f:name":{},"f:port":{}}},"f:selector":{}}}`),
		entry("kubectl-patch", metav1.ManagedFieldsOperationUpdate, "", t0, `{"f:spec":{"f:ports":{"k:{\"port\":9090,\"protocol\":\"TCP\"}":{".":{},"f:name":{},"f:port":{},"f:protocol":{},"f:targetPort":{}}}}}`),
	)
	got, err := Added(desired, live)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Pointer != "/spec/ports/1" || got[0].Manager != "kubectl-patch" {
		t.Fatalf("want the debug port at /spec/ports/1, got %+v", got)
	}
	if m, _ := got[0].Value.(map[string]any); m["name"] != "debug" {
		t.Fatalf("value %v", got[0].Value)
	}
}

func TestRemoval_CarriesTheResourceVersionAndRemovesListEntriesFromTheLast(t *testing.T) {
	desired, live := deniedThenOpened()
	added, err := Added(desired, live)
	if err != nil {
		t.Fatal(err)
	}
	added = append(added, Field{Pointer: "/spec/ports/2"}, Field{Pointer: "/spec/ports/10"})
	raw, err := Removal(live, added)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"op":"replace","path":"/metadata/resourceVersion","value":"42"},` +
		`{"op":"remove","path":"/metadata/annotations/istio.io~1dry-run"},{"op":"remove","path":"/spec/ports/10"},{"op":"remove","path":"/spec/ports/2"},{"op":"remove","path":"/spec/rules"}]`
	if string(raw) != want {
		t.Fatalf("patch\n got %s\nwant %s", raw, want)
	}
}
