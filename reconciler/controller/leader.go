package controller

import (
	"context"
	"errors"
	"fmt"
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
// first when missing. It returns nil when ctx ends (releasing the lease) and
// ErrLostLeadership when the lease is lost while ctx is still live.
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
	var runErr error
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, Name: "meshcd", ReleaseOnCancel: true,
		LeaseDuration: e.LeaseDuration, RenewDeadline: e.RenewDeadline, RetryPeriod: e.RetryPeriod,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				c.log.Info("leading", "identity", identity)
				runErr = c.Run(ctx)
			},
			OnStoppedLeading: func() { c.log.Info("stopped leading", "identity", identity) },
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	le.Run(ctx)
	switch {
	case runErr != nil:
		return runErr
	case ctx.Err() == nil:
		return ErrLostLeadership
	}
	return nil
}
