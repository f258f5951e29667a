package controller

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Election times the leader lease. Zero values take the usual 15 s lease,
// 10 s renew deadline and 2 s retry period.
type Election struct {
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// ErrLostLeadership is returned by RunElected when another replica took
// the lease; the process should exit so that it restarts as a follower.
var ErrLostLeadership = errors.New("lost the leader lease to another replica")

// LeaseName is the Lease replicas of one meshcd instance compete for.
func (c *Controller) LeaseName() string { return "meshcd-leader-" + c.opts.Reconciler.Name }

// RunElected runs the controller only while identity holds the leader
// Lease in meshcd's namespace, so that of several replicas only one
// reconciles. The lease lives in meshcd's namespace, which is created
// first when missing. It returns nil when ctx ends (releasing the lease),
// ErrLostLeadership when the lease is lost while ctx is still live, and
// Run's error when Run fails: the lease is then released, never renewed
// for a replica that no longer reconciles.
func (c *Controller) RunElected(ctx context.Context, leases coordinationv1.LeasesGetter, identity string) error {
	e := c.opts.Election
	if e.LeaseDuration == 0 {
		e = Election{LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}
	}
	if err := c.rec.EnsureNamespace(ctx); err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: c.opts.Reconciler.Namespace, Name: c.LeaseName()},
		Client:     leases,
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
	// electing ends the election, and with it the lease renewals, when
	// ctx ends or when Run returns.
	electing, stop := context.WithCancel(ctx)
	defer stop()
	var started atomic.Bool
	ran := make(chan error, 1)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, Name: "meshcd", ReleaseOnCancel: true,
		LeaseDuration: e.LeaseDuration, RenewDeadline: e.RenewDeadline, RetryPeriod: e.RetryPeriod,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leading context.Context) {
				started.Store(true)
				if leading.Err() != nil {
					ran <- nil // lost before this goroutine ran
					return
				}
				c.log.Info("leading", "identity", identity)
				ran <- c.Run(leading)
			},
			OnStoppedLeading: func() { c.log.Info("stopped leading", "identity", identity) },
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	elected := make(chan struct{})
	go func() {
		defer close(elected)
		le.Run(electing)
	}()
	var runErr error
	select {
	case runErr = <-ran:
		stop() // Run returned: release the lease rather than renew it
		<-elected
	case <-elected:
		if started.Load() {
			runErr = <-ran // Run ends with the lease it has lost
		}
	}
	switch {
	case ctx.Err() != nil:
		return nil
	case runErr != nil:
		return fmt.Errorf("reconcile loop stopped while leading, lease released: %w", runErr)
	}
	return ErrLostLeadership
}
