package drift

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func managed(manager string, at time.Time, fields string) metav1.ManagedFieldsEntry {
	t := metav1.NewTime(at)
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate, Time: &t, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
}

func TestChangedBy_NamesTheManagerOwningTheField(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "shop"}}}
	u.SetManagedFields([]metav1.ManagedFieldsEntry{
		managed("meshcd", t0.Add(time.Minute), `{"f:metadata":{"f:labels":{"f:istio.io/dataplane-mode":{}}}}`),
		managed("kubectl-label", t0, `{"f:metadata":{"f:labels":{"f:istio.io/use-waypoint":{}}}}`),
		managed("kube-controller-manager", t0.Add(2*time.Minute), `{"f:status":{}}`),
	})
	who, when := changedBy(u, "/metadata/labels/istio.io~1use-waypoint")
	if who != "kubectl-label" || when == nil || !when.Equal(t0) {
		t.Fatalf("got %q at %v, want kubectl-label at %v", who, when, t0)
	}
	// A removed field is owned by nobody: the latest other writer is named.
	who, _ = changedBy(u, "/metadata/labels/gone")
	if who != "kube-controller-manager" && who != "kubectl-label" {
		t.Fatalf("got %q for a removed field", who)
	}
	if who, _ := changedBy(u, "/metadata/labels/istio.io~1dataplane-mode"); who != "meshcd" {
		t.Fatalf("a label only meshcd owns was last written by meshcd, got %q", who)
	}
}

func TestLookup_FollowsMapsAndLists(t *testing.T) {
	obj := map[string]any{"spec": map[string]any{"ports": []any{map[string]any{"port": int64(80)}}}, "metadata": map[string]any{"labels": map[string]any{"a/b": "x"}}}
	if v, ok := lookup(obj, "/spec/ports/0/port"); !ok || v != int64(80) {
		t.Fatalf("got %v %v", v, ok)
	}
	if v, ok := lookup(obj, "/metadata/labels/a~1b"); !ok || v != "x" {
		t.Fatalf("escaped pointer: got %v %v", v, ok)
	}
	if _, ok := lookup(obj, "/spec/ports/3/port"); ok {
		t.Fatal("an index out of range is not found")
	}
}

func TestReport_FormatsNameManagerAndValues(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	r := &Report{DetectedAt: at, Objects: []Object{{Object: "Namespace shop", Fields: []Field{{Path: "/metadata/labels/istio.io~1use-waypoint", Desired: "waypoint", Live: "other", Manager: "kubectl-label", Time: &at}}}, {Object: "Service shop/orders-v1", Missing: true}}}
	for _, format := range []string{"text", "markdown"} {
		var b bytes.Buffer
		if err := r.Write(&b, format); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Namespace shop", "kubectl-label", `"waypoint"`, `"other"`, "Service shop/orders-v1", "2026-11-25T10:00:00Z"} {
			if !strings.Contains(b.String(), want) {
				t.Fatalf("%s report lacks %q:\n%s", format, want, b.String())
			}
		}
	}
	var b bytes.Buffer
	if err := r.Write(&b, "json"); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || len(back.Objects) != 2 || back.Objects[0].Fields[0].Manager != "kubectl-label" {
		t.Fatalf("json round trip: %v %+v", err, back)
	}
	if err := r.Write(&b, "yaml"); err == nil {
		t.Fatal("an unknown format is an error")
	}
}

func TestChangedBy_AFieldMeshcdStillOwnsIsMeshcds(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": "s"}}}
	u.SetManagedFields([]metav1.ManagedFieldsEntry{
		managed("meshcd", t0, `{"f:metadata":{"f:annotations":{"f:meshcd.dev/digest":{}}}}`),
		managed("pilot-discovery", t0.Add(time.Minute), `{"f:status":{}}`),
	})
	if who, _ := changedBy(u, "/metadata/annotations/meshcd.dev~1digest"); who != "meshcd" {
		t.Fatalf("a field only meshcd owns was written by meshcd, got %q", who)
	}
	if !selfInflicted(&Object{Fields: []Field{{Manager: "meshcd"}}}) || selfInflicted(&Object{Fields: []Field{{Manager: "meshcd"}, {Manager: "kubectl-edit"}}}) {
		t.Fatal("only drift made by meshcd alone is self-inflicted")
	}
}
