package faults_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/meshcd/meshcd/internal/clustertest"
	"github.com/meshcd/meshcd/reconciler/controller"
	"github.com/meshcd/meshcd/reconciler/source"
)

// TestBadSource_AFailedFetchPrunesNothing commits a change that drops
// objects and takes the repository away before the controller fetches it:
// the fetch fails, the applied state stays and nothing is pruned; once the
// repository is back, the change is applied on the next interval.
func TestBadSource_AFailedFetchPrunesNothing(t *testing.T) {
	ns := clustertest.Namespace(t, nil)
	repo := newCtlRepo(t, ns)
	first := repo.commit(map[string]string{
		"a.yaml": ctlConfigMap("a", "v", "one"),
		"b.yaml": ctlConfigMap("b", "v", "one"),
		"c.yaml": ctlConfigMap("c", "v", "one"),
	})
	c := newCtl(t, ns, source.Options{URL: repo.url()}, func(o *controller.Options) {
		o.Interval = 300 * time.Millisecond
		o.Reconciler.MaxPrune = 1
	})
	c.run()
	c.applied(first)
	second := repo.commit(map[string]string{"b.yaml": "", "c.yaml": ""})
	if err := os.Rename(repo.dir, repo.dir+"-gone"); err != nil {
		t.Fatal(err)
	}
	s := c.waitStatus("Ready=False FetchFailed", 30*time.Second, func(s *controller.Status) bool {
		status, reason, _ := ctlCondition(s, "Ready")
		return status == "False" && reason == "FetchFailed"
	})
	_, _, msg := ctlCondition(s, "Ready")
	t.Logf("meshcd says: %s", msg)
	time.Sleep(time.Second) // three more intervals with the repository gone
	// Missing now, b or c would have been deleted by a failed fetch.
	deleted, orphaned := ctlCensus(t, c.admin, ns, "a", "b", "c")
	held := strings.Contains(msg, "pruning nothing") && s.LastAppliedRevision == first
	if err := os.Rename(repo.dir+"-gone", repo.dir); err != nil {
		t.Fatal(err)
	}
	c.waitStatus("the change applied once the repository is back", 30*time.Second, func(s *controller.Status) bool { return s.LastAppliedRevision == second })
	lost, orphanedAfter := ctlCensus(t, c.admin, ns, "a")
	record(t, outcome{Kind: "bad source: git fetch fails", Converged: held, Lost: lost, Orphaned: orphaned + orphanedAfter, Unintended: deleted})
}
