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
