package drift

import (
	"strings"
	"testing"
	"time"

	"github.com/meshcd/meshcd/ambient"
)

const cm = "ConfigMap shop/settings"

func revert(manager string) Object {
	return Object{Object: cm, Fields: []Field{{Path: "/data/mode", Desired: "ours", Live: "theirs", Manager: manager}}}
}

// clock hands out times a step apart.
type clock struct {
	now  time.Time
	step time.Duration
}

func (c *clock) tick() time.Time { c.now = c.now.Add(c.step); return c.now }

func TestFights_DeclaredOnTheRevertAfterLimitCorrections(t *testing.T) {
	fs := &Fights{Limit: 3, Window: time.Minute}
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), step: 100 * time.Millisecond}
	if f, _ := fs.Drifted(revert("fighter"), c.tick()); f != nil {
		t.Fatalf("a first drift is no fight: %v", f)
	}
	for i := range 3 {
		if f, _ := fs.Corrected(cm, c.tick()); f != nil {
			t.Fatalf("correction %d declared %v", i+1, f)
		}
		f, declared := fs.Drifted(revert("fighter"), c.tick())
		if i < 2 && f != nil {
			t.Fatalf("revert %d declared %v", i+1, f)
		}
		if i == 2 {
			if f == nil || !declared {
				t.Fatal("the revert of the third correction declares the fight")
			}
			if f.Object != cm || f.Path != "/data/mode" || f.Corrections != 3 || len(f.Managers) != 1 || f.Managers[0] != "fighter" {
				t.Fatalf("fight %+v", f)
			}
			want := `ConfigMap shop/settings /data/mode: field manager "fighter" reverted it 3 times in 500ms; meshcd stopped correcting it until the spec changes`
			if f.String() != want {
				t.Fatalf("message\n got %s\nwant %s", f, want)
			}
		}
	}
	if f, declared := fs.Drifted(revert("fighter"), c.tick()); f == nil || declared {
		t.Fatal("a held object stays in its fight, declared once")
	}
	if got := fs.All(); len(got) != 1 || got[0].Object != cm {
		t.Fatalf("All: %+v", got)
	}
	fs.Forget(cm)
	if len(fs.All()) != 0 {
		t.Fatal("Forget ends the fight")
	}
	if f, _ := fs.Drifted(revert("fighter"), c.tick()); f != nil {
		t.Fatal("after Forget the count starts afresh")
	}
}

// The revert is often seen before the reconcile that corrected the field
// has returned: the fight is then declared when the correction is recorded.
func TestFights_RevertSeenBeforeItsCorrectionIsRecorded(t *testing.T) {
	fs := &Fights{Limit: 2}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	fs.Drifted(revert("fighter"), at(0))
	// reconcile 1 starts at 10, the revert comes at 20, the reconcile returns at 30
	fs.Drifted(revert("fighter"), at(20))
	if f, _ := fs.Corrected(cm, at(10)); f != nil {
		t.Fatal("one reverted correction is no fight with a limit of 2")
	}
	fs.Drifted(revert("fighter"), at(50))
	f, declared := fs.Corrected(cm, at(40))
	if f == nil || !declared || f.Corrections != 2 {
		t.Fatalf("the second reverted correction declares the fight when it is recorded: %+v", f)
	}
}

func TestFights_NotAFight(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t.Run("repeated drift events before one correction", func(t *testing.T) {
		// istiod's status updates of a drifted object are drift events too.
		fs := &Fights{Limit: 2}
		for i := range 10 {
			fs.Drifted(revert("kubectl-edit"), t0.Add(time.Duration(i)*time.Millisecond))
		}
		if f, _ := fs.Corrected(cm, t0.Add(time.Second)); f != nil {
			t.Fatalf("one edit corrected once is no fight: %v", f)
		}
	})
	t.Run("corrections spread wider than the window", func(t *testing.T) {
		fs := &Fights{Limit: 3, Window: time.Minute}
		at := t0
		for range 10 {
			fs.Drifted(revert("kubectl-edit"), at)
			at = at.Add(40 * time.Second)
			if f, _ := fs.Corrected(cm, at); f != nil {
				t.Fatalf("one revert every 40 s is no fight in a minute: %v", f)
			}
			at = at.Add(time.Second)
		}
	})
	t.Run("corrections not reverted", func(t *testing.T) {
		fs := &Fights{Limit: 2}
		fs.Drifted(revert("kubectl-edit"), t0)
		for i := range 5 {
			if f, _ := fs.Corrected(cm, t0.Add(time.Duration(i+1)*time.Second)); f != nil {
				t.Fatalf("reconciles that find nothing reverted are no fight: %v", f)
			}
		}
	})
	t.Run("meshcd's own fields and failed dry-runs", func(t *testing.T) {
		fs := &Fights{Limit: 1}
		for i := range 5 {
			at := t0.Add(time.Duration(i) * time.Second)
			fs.Corrected(cm, at)
			for _, m := range []string{ambient.FieldManager, "unknown: dry-run failed"} {
				if f, _ := fs.Drifted(revert(m), at.Add(time.Millisecond)); f != nil {
					t.Fatalf("%s is no other manager: %v", m, f)
				}
			}
		}
		if len(fs.objects) != 0 {
			t.Fatalf("nothing is kept of objects that never drifted: %+v", fs.objects)
		}
	})
}

func TestFights_NamesEveryManagerAndForgetsTheOld(t *testing.T) {
	fs := &Fights{Limit: 2, Window: time.Minute}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fs.Drifted(revert("argocd"), t0)
	fs.Corrected(cm, t0.Add(time.Second))
	fs.Drifted(revert("fighter"), t0.Add(2*time.Second))
	fs.Corrected(cm, t0.Add(3*time.Second))
	f, _ := fs.Drifted(revert("argocd"), t0.Add(4*time.Second))
	if f == nil || strings.Join(f.Managers, ",") != "fighter,argocd" {
		t.Fatalf("both managers, latest last: %+v", f)
	}
	if !strings.Contains(f.String(), `field managers "fighter", "argocd" reverted it 2 times in 3s`) {
		t.Fatalf("message %q", f)
	}

	old := &Fights{Window: time.Minute}
	old.Drifted(revert("fighter"), t0)
	old.Corrected(cm, t0.Add(time.Second))
	old.Drifted(revert("fighter"), t0.Add(2*time.Second))
	if _, declared := old.Corrected("ConfigMap shop/other", t0.Add(5*time.Minute)); declared {
		t.Fatal("an object that never drifted has no fight")
	}
	old.Drifted(Object{Object: cm}, t0.Add(5*time.Minute)) // missing: no field, no record
	old.Corrected(cm, t0.Add(5*time.Minute))
	if got := old.objects[cm]; got == nil || len(got.fields) != 0 || len(got.corrected) != 1 {
		t.Fatalf("drifts older than the window are forgotten: %+v", got)
	}
}
