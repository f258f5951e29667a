package apply

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/ambient"
)

func labelled(kind, namespace, name string, labels map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind(kind)
	u.SetNamespace(namespace)
	u.SetName(name)
	u.SetLabels(labels)
	return u
}

func gateway(namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("gateway.networking.k8s.io/v1")
	u.SetKind("Gateway")
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

func TestEnrollments_ResolveTheWaypointNamespace(t *testing.T) {
	ns := labelled("Namespace", "", "shop", map[string]string{ambient.LabelUseWaypoint: "waypoint", ambient.LabelUseWaypointCanary: "canary", ambient.LabelUseWaypointCanaryNamespace: "infra"})
	got := Enrollments(ns)
	want := []Enrollment{{ambient.LabelUseWaypoint, "shop", "waypoint"}, {ambient.LabelUseWaypointCanary, "infra", "canary"}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Enrollments = %+v, want %+v", got, want)
	}
	svc := labelled("Service", "shop", "orders", map[string]string{ambient.LabelUseWaypoint: "none"})
	if got := Enrollments(svc); len(got) != 0 {
		t.Fatalf("use-waypoint=none names no waypoint, got %+v", got)
	}
}

func TestSequence_LabelsWaitForTheWaypointAndMoveOffBeforeItGoes(t *testing.T) {
	// First enrollment: the label waits, dataplane-mode goes first.
	after := []*unstructured.Unstructured{
		labelled("Namespace", "", "shop", map[string]string{ambient.LabelDataplaneMode: "ambient", ambient.LabelUseWaypoint: "waypoint"}),
		gateway("shop", "waypoint"),
	}
	got := Sequence(nil, after)
	if len(got) != 1 || !strings.Contains(got[0], "Namespace shop: istio.io/use-waypoint=waypoint is written only once waypoint shop/waypoint is Programmed") ||
		!strings.Contains(got[0], "istio.io/dataplane-mode goes first") {
		t.Fatalf("first enrollment order: %q", got)
	}
	// Nothing changes: nothing to order.
	if got := Sequence(after, after); len(got) != 0 {
		t.Fatalf("an unchanged enrollment has no order, got %q", got)
	}
	// Rename: the old label stays until the new waypoint is ready, and the
	// old Gateway goes after the label has moved.
	renamed := []*unstructured.Unstructured{
		labelled("Namespace", "", "shop", map[string]string{ambient.LabelDataplaneMode: "ambient", ambient.LabelUseWaypoint: "waypoint-v2"}),
		gateway("shop", "waypoint-v2"),
	}
	got = Sequence(after, renamed)
	if len(got) != 2 || !strings.Contains(got[0], "until then it stays waypoint") ||
		got[1] != "Gateway shop/waypoint is deleted only after Namespace shop no longer name it: the labels move off first, so no traffic is sent to a waypoint that is gone" {
		t.Fatalf("rename order: %q", got)
	}
	// Removal: the Gateway waits for the label.
	removed := []*unstructured.Unstructured{labelled("Namespace", "", "shop", map[string]string{ambient.LabelDataplaneMode: "ambient"})}
	got = Sequence(after, removed)
	if len(got) != 1 || !strings.HasPrefix(got[0], "Gateway shop/waypoint is deleted only after Namespace shop") {
		t.Fatalf("removal order: %q", got)
	}
	// A Gateway nothing names goes without an order.
	if got := Sequence([]*unstructured.Unstructured{gateway("shop", "ingress")}, nil); len(got) != 0 {
		t.Fatalf("an unnamed Gateway has no order, got %q", got)
	}
}
