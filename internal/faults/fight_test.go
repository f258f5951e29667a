package faults_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler/controller"
	"github.com/meshcd/meshcd/reconciler/drift"
	"github.com/meshcd/meshcd/reconciler/source"
)

// ctlFighter is another field manager, "fighter", that wants data.mode of
// one ConfigMap to be "theirs": it watches the ConfigMap and reverts the
// field, with server-side apply and forced ownership, whenever someone
// sets it otherwise. Once ticking, it also writes an annotation of its own
// every 250 ms: the object keeps changing, and stays drifted.
type ctlFighter struct {
	ns, name string
	c        client.Client
	reverts  atomic.Int64
	ticking  atomic.Bool
	tick     atomic.Int64
	stop     context.CancelFunc
	done     sync.WaitGroup
	// mu orders its writes.
	mu sync.Mutex
}

const fighterManager = "fighter"

func startFighter(t *testing.T, ns, name string) *ctlFighter {
	t.Helper()
	f := &ctlFighter{ns: ns, name: name, c: clustertest.Client(t)}
	kube, err := kubernetes.NewForConfig(clustertest.Cluster(t).RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.stop = cancel
	f.done.Add(2)
	go func() { // revert
		defer f.done.Done()
		for ctx.Err() == nil {
			w, err := kube.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			for ev := range w.ResultChan() {
				cm, ok := ev.Object.(*corev1.ConfigMap)
				if ok && cm.Data["mode"] != "theirs" {
					if f.write(ctx) == nil {
						f.reverts.Add(1)
					}
				}
			}
			w.Stop()
		}
	}()
	go func() { // tick
		defer f.done.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if f.ticking.Load() {
					f.tick.Add(1)
					_ = f.write(ctx)
				}
			}
		}
	}()
	t.Cleanup(f.halt)
	return f
}

func (f *ctlFighter) write(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ac := corev1ac.ConfigMap(f.name, f.ns).WithData(map[string]string{"mode": "theirs"})
	if n := f.tick.Load(); n > 0 {
		ac.WithAnnotations(map[string]string{"fighter.example.com/tick": strconv.FormatInt(n, 10)})
	}
	return f.c.Apply(ctx, ac, client.FieldOwner(fighterManager), client.ForceOwnership)
}

// halt stops the fighter and waits for it.
func (f *ctlFighter) halt() {
	f.stop()
	f.done.Wait()
}

// TestFight_MeshcdStopsCorrectingAFieldAnotherManagerKeepsReverting runs a
// controller in correct mode against a fighter over one field. meshcd must
// stop after a bounded number of corrections, report the fight naming the
// manager and the field, go on reconciling the spec's other objects, and
// correct the object again once a commit changes it.
func TestFight_MeshcdStopsCorrectingAFieldAnotherManagerKeepsReverting(t *testing.T) {
	ns := clustertest.Namespace(t, nil)
	repo := newCtlRepo(t, ns)
	rev1 := repo.commit(map[string]string{
		"settings.yaml": ctlConfigMap("settings", "mode", "ours"),
		"other.yaml":    ctlConfigMap("other", "value", "one"),
	})
	c := newCtl(t, ns, source.Options{URL: repo.url()}, nil) // no interval: drift and Trigger only
	c.run()
	c.applied(rev1)
	settings := ctlConfigMapPath(ns, "settings")
	created := c.writes.To(settings)
	limit := drift.DefaultFightLimit

	// The fight: every correction is reverted at once.
	start := time.Now()
	f := startFighter(t, ns, "settings")
	st := c.waitStatus("a fight", time.Minute, func(s *controller.Status) bool { return len(s.Fights) > 0 })
	declaredAfter := time.Since(start)
	corrections := c.writes.To(settings) - created
	fight := st.Fights[0]
	t.Logf("fight declared %s after the fighter started, after %d corrections by meshcd (%d reverts by the fighter): %s",
		declaredAfter.Round(time.Millisecond), corrections, f.reverts.Load(), fight)
	stopped := corrections <= limit+1 // a reconcile already under way when the fight is declared may write once more
	if !stopped {
		t.Errorf("meshcd corrected the field %d times before it stopped; the limit is %d", corrections, limit)
	}
	reported := fight.Object == "ConfigMap "+ns+"/settings" && fight.Path == "/data/mode" &&
		len(fight.Managers) == 1 && fight.Managers[0] == fighterManager && fight.Corrections == limit
	if !reported {
		t.Errorf("the status names the object, the field and the manager: %+v", fight)
	}
	ev := c.waitEvent("FightDetected", 10*time.Second)
	if ev.Type != corev1.EventTypeWarning || !strings.Contains(ev.Message, `"fighter"`) || !strings.Contains(ev.Message, "/data/mode") ||
		!strings.Contains(ev.Message, "stopped correcting it until the spec changes") {
		reported = false
		t.Errorf("the event names the manager and the field: %s %q", ev.Type, ev.Message)
	}
	if n := c.metric("meshcd_fights_total"); n != 1 {
		reported = false
		t.Errorf("meshcd_fights_total = %v, want 1", n)
	}
	if !strings.Contains(c.log.String(), `msg="fight with another field manager"`) {
		reported = false
		t.Error("the fight is not in the log")
	}

	// The fighter keeps going: the object changes every 250 ms and stays
	// drifted, and meshcd leaves it alone.
	held := c.writes.To(settings)
	drifts := c.metric("meshcd_drift_total")
	f.ticking.Store(true)
	time.Sleep(3 * time.Second)
	if n := c.writes.To(settings) - held; n != 0 {
		stopped = false
		t.Errorf("meshcd wrote the held object %d times while the fighter went on", n)
	}
	noticed := c.metric("meshcd_drift_total") - drifts
	if n := f.tick.Load(); n < 5 {
		stopped = false
		t.Errorf("the fighter wrote only %d times in 3 s, so meshcd leaving it alone shows nothing", n)
	}
	if noticed == 0 {
		stopped = false
		t.Error("meshcd noticed none of the fighter's writes: leaving them alone shows nothing")
	}
	t.Logf("over 3 s the fighter wrote %d more times; meshcd noticed %v drifts of the held object and wrote it 0 times", f.tick.Load(), noticed)
	if ctlData(t, c.admin, ns, "settings", "mode") != "theirs" {
		t.Error("the fighter's value should stand while the object is held")
	}

	// The spec's other objects are still reconciled.
	rev2 := repo.commit(map[string]string{"other.yaml": ctlConfigMap("other", "value", "two")})
	c.Trigger("test: commit of another object")
	st = c.applied(rev2)
	otherApplied := ctlData(t, c.admin, ns, "other", "value") == "two"
	if !otherApplied {
		t.Error("a commit of another object is not applied while the fight is held")
	}
	if n := c.writes.To(settings) - held; n != 0 {
		stopped = false
		t.Errorf("the reconcile of %s wrote the held object %d times", rev2, n)
	}
	if len(st.Fights) != 1 {
		t.Errorf("a commit that leaves the fought object as it was keeps the hold: %+v", st.Fights)
	}
	if _, _, msg := ctlCondition(st, "Ready"); !strings.Contains(msg, "1 skipped") {
		t.Errorf("Ready says an object was skipped: %q", msg)
	}

	// A commit of the fought object's spec ends the hold: the spec wins.
	f.halt()
	rev3 := repo.commit(map[string]string{"settings.yaml": ctlConfigMap("settings", "mode", "ours-2")})
	c.Trigger("test: commit of the fought object")
	st = c.applied(rev3)
	cleared := len(st.Fights) == 0 && ctlData(t, c.admin, ns, "settings", "mode") == "ours-2"
	if !cleared {
		t.Errorf("a commit of the fought object ends the hold: fights %+v, mode %q", st.Fights, ctlData(t, c.admin, ns, "settings", "mode"))
	}
	// ...and a drift of it is corrected again.
	if err := c.admin.Apply(context.Background(), corev1ac.ConfigMap("settings", ns).WithData(map[string]string{"mode": "theirs"}),
		client.FieldOwner(fighterManager), client.ForceOwnership); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for ctlData(t, c.admin, ns, "settings", "mode") != "ours-2" {
		if time.Now().After(deadline) {
			cleared = false
			t.Error("a drift of the object is not corrected once the hold ended")
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	lost, orphaned := ctlCensus(t, c.admin, ns, "settings", "other")
	record(t, outcome{Kind: "fight", Converged: stopped && reported && otherApplied && cleared, Lost: lost, Orphaned: orphaned})
}
