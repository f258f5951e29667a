package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler/drift"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// waitOutput polls until ok holds or the deadline passes.
func waitOutput(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("never within %s: %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The drift watch in correct mode stops correcting a field that another
// field manager reverts after each correction, as `meshcd run` does: after
// the fight limit it reports the fight and leaves the object alone, while
// it goes on noticing the object's changes.
func TestDriftWatch_CorrectModeStopsAtTheFightLimit(t *testing.T) {
	ns := clustertest.Namespace(t, nil)
	kubeconfig := clustertest.Cluster(t).Kubeconfig()
	admin := clustertest.Client(t)
	spec := dir(t, map[string]string{"settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: " + ns + "}\ndata: {mode: ours}\n"})
	flags := []string{"--kubeconfig", kubeconfig, "--name", ns}
	if code, out, errOut := meshcd(append([]string{"apply", spec}, flags...)...); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	mode := func() string {
		cm := &corev1.ConfigMap{}
		if err := admin.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "settings"}, cm); err != nil {
			t.Fatal(err)
		}
		return cm.Data["mode"]
	}
	set := func(manager, value string, annotations map[string]string) {
		ac := corev1ac.ConfigMap("settings", ns).WithData(map[string]string{"mode": value}).WithAnnotations(annotations)
		if err := admin.Apply(context.Background(), ac, client.FieldOwner(manager), client.ForceOwnership); err != nil && !strings.Contains(err.Error(), "context canceled") {
			t.Error(err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &clustertest.Buffer{}, &clustertest.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- runContext(ctx, append([]string{"drift", spec, "--watch", "--mode", "correct"}, flags...), stdout, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 || t.Failed() {
			t.Errorf("the watch ended with exit %d; stdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
		}
	})
	// The watch notices changes once its informers have listed: edits are
	// made until the watch has corrected one.
	edits := 0
	waitOutput(t, "the watch corrects an edit", 30*time.Second, func() bool {
		if stdout.Count(" corrected in ") > 0 {
			return true
		}
		edits++
		set("tester", fmt.Sprintf("edit-%d", edits), nil)
		time.Sleep(500 * time.Millisecond)

		return stdout.Count(" corrected in ") > 0
	})
	waitOutput(t, "the correction stands", 5*time.Second, func() bool { return mode() == "ours" })
	before := stdout.Count(" corrected in ")

	// The fight: a fighter reverts each correction at once.
	fighting, stopFighter := context.WithCancel(context.Background())
	fighterDone := make(chan struct{})
	go func() {
		defer close(fighterDone)
		for fighting.Err() == nil {
			if mode() != "theirs" {
				set(fighterManager, "theirs", nil)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { stopFighter(); <-fighterDone })
	waitOutput(t, "a fight is declared", 30*time.Second, func() bool { return stdout.Count("fight: ") > 0 })
	corrections := stdout.Count(" corrected in ") - before
	out := stdout.String()
	line := out[strings.Index(out, "fight: "):]
	line = line[:strings.IndexByte(line, '\n')]
	t.Logf("after %d corrections: %s", corrections, line)
	if corrections > drift.DefaultFightLimit {
		t.Errorf("the watch corrected the field %d times against the fighter; the limit is %d", corrections, drift.DefaultFightLimit)
	}
	for _, want := range []string{"ConfigMap " + ns + "/settings /data/mode", `"` + fighterManager + `"`, "meshcd stopped correcting it"} {
		if !strings.Contains(line, want) {
			t.Errorf("the fight line lacks %q", want)
		}
	}

	// The fighter goes on changing the object: the watch notices each
	// change and corrects none.
	stopFighter()
	<-fighterDone
	held := stdout.Count(" corrected in ")
	reports := stdout.Count("ConfigMap " + ns + "/settings:")
	for i := range 10 {
		set(fighterManager, "theirs", map[string]string{"fighter.example.com/tick": strconv.Itoa(i)})
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)
	noticed := stdout.Count("ConfigMap "+ns+"/settings:") - reports
	t.Logf("over 3 s the fighter wrote 10 more times; the watch reported %d drifts and corrected %d", noticed, stdout.Count(" corrected in ")-held)
	if n := stdout.Count(" corrected in ") - held; n != 0 {
		t.Errorf("the watch corrected the object %d times after the fight was declared", n)
	}
	if noticed == 0 {
		t.Error("the watch noticed none of the fighter's later writes, so leaving them alone shows nothing")
	}
	if mode() != "theirs" {
		t.Error("the fighter's value stands while the object is held")
	}
	if n := stdout.Count("fight: "); n != 1 {
		t.Errorf("the fight is declared once, got %d", n)
	}
}

const fighterManager = "fighter"

func TestClusterCheck_PassesAgainstARealAPIServer(t *testing.T) {
	kc := clustertest.Cluster(t).Kubeconfig()
	start := time.Now()
	code, out, errOut := meshcd("status", "--kubeconfig", kc, "--name", "check", "--request-timeout", "5s")
	if code != exitOK || !strings.Contains(out, "owned objects: 0") || errOut != "" {
		t.Fatalf("status: exit %d in %s:\n%s%s", code, time.Since(start), out, errOut)
	}
	ns := clustertest.Namespace(t, nil)
	d := dir(t, map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: " + ns + "}\ndata: {a: b}\n"})
	code, out, errOut = meshcd("diff", d, "--kubeconfig", kc, "--name", "check")
	if code != exitChanges || !strings.Contains(out, "+ ConfigMap "+ns+"/settings (created)") {
		t.Fatalf("diff: exit %d:\n%s%s", code, out, errOut)
	}
}

// manyServices is a spec of n MeshServices in namespace ns, each with its
// application Service and an access rule that ztunnel enforces.
func manyServices(ns string, n int) map[string]string {
	var mesh, apps strings.Builder
	mesh.WriteString("apiVersion: meshcd.dev/v1alpha1\nkind: MeshNamespace\nmetadata: {name: " + ns + "}\nspec:\n  waypoint: {}\n  mtls: STRICT\n")
	for i := range n {
		name := fmt.Sprintf("svc%02d", i)
		fmt.Fprintf(&mesh, "---\napiVersion: meshcd.dev/v1alpha1\nkind: MeshService\nmetadata: {name: %s, namespace: %s}\nspec:\n  port: 8080\n  selector: {app: %s}\n  access:\n    - from: {serviceAccounts: [%s/web]}\n", name, ns, name, ns)
		fmt.Fprintf(&apps, "---\napiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: %s}\nspec:\n  selector: {app: %s}\n  ports: [{name: http, port: 8080}]\n", name, ns, name)
	}
	return map[string]string{"mesh.yaml": mesh.String(), "apps.yaml": apps.String()}
}

func TestApply_NoOpPrintsASummaryNotALinePerObject(t *testing.T) {
	kc := clustertest.Cluster(t).Kubeconfig()
	ns := clustertest.Namespace(t, nil)
	d := dir(t, manyServices(ns, 40))
	args := []string{"apply", d, "--kubeconfig", kc, "--name", ns, "--timeout", "90s"}
	code, out, errOut := meshcd(args...)
	if code != exitOK {
		t.Fatalf("first apply: exit %d:\n%s%s", code, out, errOut)
	}
	t.Logf("first apply:\n%s%s", out, errOut)

	code, out, errOut = meshcd(args...)
	if code != exitOK {
		t.Fatalf("second apply: exit %d:\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "applied: ") || !strings.Contains(lines[0], " unchanged") ||
		!strings.HasPrefix(lines[1], "health: ") || !strings.Contains(lines[1], " healthy, 0 pending, 0 unhealthy") || !strings.HasPrefix(lines[2], "result: ReconciliationSucceeded") {
		t.Fatalf("a no-op apply prints %d lines, want the 3 of a summary:\n%s", len(lines), out)
	}
	var healthy int
	if _, err := fmt.Sscanf(lines[1], "health: %d healthy", &healthy); err != nil || healthy < 80 {
		t.Fatalf("health summary %q: %v", lines[1], err)
	}
	// Not a terminal: a plain line per stage, none per object.
	progress := strings.Split(strings.TrimSpace(errOut), "\n")
	want := []string{"applying " + d, "render", "apply: 0/", "apply: ", "prune", "health"}
	if len(progress) != len(want) {
		t.Fatalf("stderr has %d lines, want %d:\n%s", len(progress), len(want), errOut)
	}
	for i, w := range want {
		if !strings.HasPrefix(progress[i], w) {
			t.Errorf("stderr line %d is %q, want %q...", i, progress[i], w)
		}
	}

	code, out, _ = meshcd(append(args, "-v")...)
	if n := strings.Count(out, "\n"); code != exitOK || n < 2*healthy || !strings.Contains(out, "  AuthorizationPolicy "+ns+"/svc07-l4 healthy") || !strings.Contains(out, "unchanged\n") {
		t.Fatalf("-v: exit %d, %d lines:\n%s", code, n, out)
	}
	code, out, _ = meshcd("status", "--kubeconfig", kc, "--name", ns)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != exitOK || len(lines) != 2 || !strings.HasPrefix(lines[1], "health: ") {
		t.Fatalf("status: exit %d:\n%s", code, out)
	}
}
