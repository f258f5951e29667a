package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	"github.com/robfig/cron/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/dataplane"
	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/apply"
	"github.com/meshcd/meshcd/reconciler/drift"
	"github.com/meshcd/meshcd/reconciler/lister"
	"github.com/meshcd/meshcd/reconciler/source"
)

// Options configure a Controller.
type Options struct {
	// Source is the spec repository.
	Source source.Options
	// Reconciler configures each reconcile.
	Reconciler reconciler.Options
	// Interval between reconciles; zero disables the interval.
	Interval time.Duration
	// Cron is a cron schedule for reconciles (robfig/cron, five fields);
	// empty disables it. Interval and Cron may both be set.
	Cron string
	// Drift says what a drift noticed by the watch leads to.
	Drift drift.Mode
	// WebhookSecret verifies push webhooks; empty disables /hook.
	WebhookSecret []byte
	// Election times the leader lease of RunElected.
	Election Election
	// RolloutPoll is how soon a reconcile follows one that left a
	// DataplaneRollout moving (Progressing, or Failed and rolling back),
	// so that its gates are checked without waiting for the interval.
	// Zero means DefaultRolloutPoll.
	RolloutPoll time.Duration
	// FightLimit is how many corrections of one field, each reverted by
	// another field manager within FightWindow, make a fight: meshcd then
	// stops correcting that object until the spec renders it differently,
	// and reports the fight. Zero means drift.DefaultFightLimit and
	// drift.DefaultFightWindow; a negative limit never declares a fight.
	FightLimit  int
	FightWindow time.Duration
}

// DefaultRolloutPoll is the RolloutPoll used when none is set.
const DefaultRolloutPoll = 5 * time.Second

// Controller reconciles a repository again and again.
type Controller struct {
	opts     Options
	client   client.Client
	lists    *lister.Lister
	rec      *reconciler.Reconciler
	source   *source.Source
	status   *StatusStore
	events   record.EventRecorder
	metrics  *Metrics
	log      *slog.Logger
	triggers chan string
	ready    atomic.Bool
	// deliveries are the webhook deliveries received, to refuse replays.
	deliveries recentDeliveries
	// fights are the fields another field manager keeps reverting; nil in
	// report mode or with a negative FightLimit.
	fights *drift.Fights

	mu        sync.Mutex
	watching  string // revision whose objects the drift watch follows
	synced    string // watching, once its informers have listed
	stopWatch context.CancelFunc
	// fought are the desired objects of the last drift of each object,
	// to hold one that a fight is declared on.
	fought map[string]apply.Desired
}

// New returns a Controller whose reconciles list, and whose drift watch
// informs, through lists' informers. events may be nil.
func New(c client.Client, lists *lister.Lister, events record.EventRecorder, log *slog.Logger, opts Options) *Controller {
	opts.Reconciler.Lists = lists
	opts.Reconciler.Apply.Expect = lists.Expect
	if opts.Drift == "" {
		opts.Drift = drift.ModeCorrect
	}
	if opts.RolloutPoll <= 0 {
		opts.RolloutPoll = DefaultRolloutPoll
	}
	if opts.Drift == drift.ModeCorrect {
		// git is the source of truth: correcting drift takes back fields
		// another manager changed, and the drift is reported with its name.
		opts.Reconciler.Apply.Force = true
	}
	var fights *drift.Fights
	if opts.Drift == drift.ModeCorrect && opts.FightLimit >= 0 {
		fights = &drift.Fights{Limit: opts.FightLimit, Window: opts.FightWindow}
	}
	return &Controller{
		fights:   fights,
		opts:     opts,
		client:   c,
		lists:    lists,
		rec:      reconciler.New(c, opts.Reconciler),
		source:   source.New(opts.Source),
		status:   &StatusStore{Client: c, Namespace: opts.Reconciler.Namespace, Name: "meshcd-status-" + opts.Reconciler.Name},
		events:   events,
		metrics:  NewMetrics(),
		log:      log,
		triggers: make(chan string, 1),
	}
}

// Source is the controller's git source, for its clone count.
func (c *Controller) Source() *source.Source { return c.source }

// Trigger asks for a reconcile soon; triggers that arrive while one is
// queued are folded into it.
func (c *Controller) Trigger(why string) {
	select {
	case c.triggers <- why:
	default:
	}
}

// Run reconciles at once and then on every trigger until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	if c.opts.Cron != "" {
		schedule, err := ParseSchedule(c.opts.Cron)
		if err != nil {
			return err
		}
		sched := cron.New()
		sched.Schedule(schedule, cron.FuncJob(func() { c.Trigger("schedule") }))
		sched.Start()
		defer sched.Stop()
	}
	if c.opts.Interval > 0 {
		go c.every(ctx, c.opts.Interval)
	}
	defer c.stopDriftWatch()
	c.Trigger("start")
	for {
		select {
		case <-ctx.Done():
			return nil
		case why := <-c.triggers:
			if err := c.Reconcile(ctx, why); err != nil && ctx.Err() == nil {
				c.log.Error("reconcile failed", "trigger", why, "error", err)
			}
			// Between reconciles the controller only watches: what the
			// reconcile allocated goes back to the system now, instead of
			// being kept for the next one, so that at rest the process
			// holds its caches and little more (docs/benchmarks.md).
			debug.FreeOSMemory()
		}
	}
}

// ParseSchedule parses a cron schedule as Run reads Options.Cron: five
// fields (minute, hour, day of month, month, day of week), or a descriptor
// such as @hourly or @every 10m, with an optional CRON_TZ= prefix.
func ParseSchedule(spec string) (cron.Schedule, error) {
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("cron schedule %q: %w", spec, err)
	}
	return s, nil
}

func (c *Controller) every(ctx context.Context, d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.Trigger("interval")
		}
	}
}

// Reconcile runs one reconcile: fetch, then the reconciler's stages, then
// the drift watch. Status is written once, from the deferred call.
func (c *Controller) Reconcile(ctx context.Context, why string) (retErr error) {
	st, cm, err := c.status.Load(ctx)
	if err != nil {
		return err
	}
	if st.Suspend {
		c.log.Info("suspended; skipping reconcile", "trigger", why)
		return nil
	}
	obj := statusObject{ConfigMap: cm, status: st}
	start := time.Now()
	conditions.MarkReconciling(obj, meta.ProgressingReason, "reconciling (%s)", why)
	defer func() {
		conditions.Delete(obj, meta.ReconcilingCondition)
		if err := c.status.Save(ctx, st); err != nil {
			retErr = errors.Join(retErr, err)
		}
		c.ready.Store(true)
	}()

	artifact, err := c.fetch(ctx, obj)
	if err != nil {
		return err
	}
	st.LastAttemptedRevision = artifact.Revision
	c.pauseDriftWatch(artifact.Revision)
	res, err := c.rec.Reconcile(ctx, artifact.Dir)
	c.metrics.record(res, time.Since(start).Seconds())
	st.Fights = c.corrected(ctx, res, start)
	c.report(obj, artifact.Revision, res, err)
	c.log.Info("reconciled", "trigger", why, "revision", artifact.Revision, "reason", res.Reason, "applied", res.Applied.Summary(), "seconds", time.Since(start).Seconds())
	if err != nil {
		return err
	}
	if res.Reason == reconciler.ReasonSucceeded {
		st.LastAppliedRevision = artifact.Revision
	}
	if moving(res) {
		time.AfterFunc(c.opts.RolloutPoll, func() { c.Trigger("rollout") })
	}
	return c.watchDrift(ctx, artifact)
}

// moving reports whether a rollout waits for its gates or its rollback.
func moving(res *reconciler.Result) bool {
	for _, st := range res.Rollouts {
		if st.Phase == dataplane.PhaseProgressing || st.Phase == dataplane.PhaseFailed {
			return true
		}
	}
	return false
}

// fetch gets the revision; on failure the last applied state stays as it
// is, nothing is pruned, and Ready turns False.
func (c *Controller) fetch(ctx context.Context, obj statusObject) (*source.Artifact, error) {
	artifact, _, err := c.source.Fetch(ctx)
	if err != nil {
		msg := fmt.Sprintf("fetch failed, keeping the last applied revision %q and pruning nothing: %v", obj.status.LastAppliedRevision, err)
		conditions.MarkFalse(obj, meta.ReadyCondition, "FetchFailed", "%s", msg)
		conditions.MarkStalled(obj, "FetchFailed", "%s", msg)
		c.event(obj, corev1.EventTypeWarning, "FetchFailed", msg)
		return nil, errors.New(msg)
	}
	conditions.Delete(obj, meta.StalledCondition)
	return artifact, nil
}

// report turns a reconcile result into conditions and an event.
func (c *Controller) report(obj statusObject, revision string, res *reconciler.Result, err error) {
	reason := string(res.Reason)
	switch {
	case err != nil:
		msg := fmt.Sprintf("revision %s: %v", revision, err)
		conditions.MarkFalse(obj, meta.ReadyCondition, reason, "%s", msg)
		if res.Reason == reconciler.ReasonRenderFailed || res.Reason == reconciler.ReasonValidationFailed {
			conditions.MarkStalled(obj, reason, "%s", msg) // retrying the same revision cannot help
		}
		c.event(obj, corev1.EventTypeWarning, reason, msg)
	case res.Reason == reconciler.ReasonPruneHeld:
		msg := fmt.Sprintf("revision %s applied, prune held: %s", revision, res.PruneHeld)
		conditions.MarkFalse(obj, meta.ReadyCondition, reason, "%s", msg)
		c.event(obj, corev1.EventTypeWarning, reason, msg)
	case res.Reason == reconciler.ReasonSucceeded:
		msg := fmt.Sprintf("applied revision %s: %s", revision, res.Applied.Summary())
		conditions.MarkTrue(obj, meta.ReadyCondition, reason, "%s", msg)
		if res.Applied.Writes() > 0 || (res.Pruned != nil && res.Pruned.Writes() > 0) {
			c.event(obj, corev1.EventTypeNormal, reason, msg)
		}
	default:
		msg := fmt.Sprintf("revision %s applied but not healthy yet: %s", revision, res.Applied.Summary())
		for _, h := range res.Health {
			if !h.Healthy {
				msg += fmt.Sprintf("; %s: %s", h.Object, h.Message)
			}
		}
		conditions.MarkFalse(obj, meta.ReadyCondition, reason, "%s", msg)
		c.event(obj, corev1.EventTypeWarning, reason, msg)
	}
}

func (c *Controller) event(obj statusObject, kind, reason, msg string) {
	if c.events != nil {
		c.events.Event(obj.ConfigMap, kind, reason, msg)
	}
}

// watchDrift (re)starts the watch on the applied objects when the revision
// changed. A drift either triggers a reconcile (correct) or is only counted
// and reported (report).
func (c *Controller) watchDrift(ctx context.Context, artifact *source.Artifact) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watching == artifact.Revision {
		return nil
	}
	desired, err := c.rec.Desired(ctx, artifact.Dir)
	if err != nil {
		return err
	}
	if c.stopWatch != nil {
		c.stopWatch()
	}
	wctx, cancel := context.WithCancel(ctx)
	c.stopWatch, c.watching = cancel, artifact.Revision
	w := &drift.Watcher{Client: c.client, Informers: c.lists}
	revision := artifact.Revision
	w.Synced = func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.watching == revision {
			c.synced = revision
		}
	}
	go func() {
		err := w.Watch(wctx, desired, func(ev drift.Event) { c.onDrift(ev) })
		if err != nil && wctx.Err() == nil {
			c.log.Error("drift watch stopped", "error", err)
		}
	}()
	return nil
}

func (c *Controller) onDrift(ev drift.Event) {
	c.metrics.drift.Inc()
	fields := make([]string, 0, len(ev.Drift.Fields))
	for _, f := range ev.Drift.Fields {
		fields = append(fields, fmt.Sprintf("%s by %s", f.Path, f.Manager))
	}
	if c.fights != nil {
		c.mu.Lock()
		if c.fought == nil {
			c.fought = map[string]apply.Desired{}
		}
		c.fought[ev.Drift.Object] = ev.Desired
		c.mu.Unlock()
		if f, declared := c.fights.Drifted(ev.Drift, ev.At); f != nil {
			if declared {
				c.declare(context.Background(), f)
				c.Trigger("fight over " + f.Object) // to write it to the status
			} else {
				c.log.Debug("drift of an object held in a fight", "object", ev.Drift.Object, "fields", fields)
			}
			return
		}
	}
	c.log.Info("drift", "object", ev.Drift.Object, "fields", fields, "missing", ev.Drift.Missing, "mode", c.opts.Drift)
	if c.opts.Drift == drift.ModeCorrect {
		c.Trigger("drift of " + ev.Drift.Object)
	}
}

// corrected tells the fights which objects the reconcile that started at
// start re-applied, declares the fights whose last correction that was,
// forgets those whose hold the spec ended, and returns the fights for the
// status.
func (c *Controller) corrected(ctx context.Context, res *reconciler.Result, start time.Time) []drift.Fight {
	if c.fights == nil {
		return nil
	}
	if res.Applied != nil {
		for _, ch := range res.Applied.Changes {
			if ch.Action != apply.Configured {
				continue
			}
			if f, declared := c.fights.Corrected(ch.Object, start); declared {
				c.declare(ctx, f)
			}
		}
	}
	for _, f := range c.fights.All() {
		c.mu.Lock()
		desired, ok := c.fought[f.Object]
		c.mu.Unlock()
		if !ok || !c.rec.Held(desired.Object) {
			c.log.Info("fight over: the spec changed, meshcd corrects the object again", "object", f.Object, "path", f.Path)
			c.fights.Forget(f.Object)
			c.mu.Lock()
			delete(c.fought, f.Object)
			c.mu.Unlock()
		}
	}
	return c.fights.All()
}

// declare holds the object of a new fight out of the applies and reports
// the fight: a log line, a Warning event FightDetected and a metric; the
// status lists it from the next reconcile on.
func (c *Controller) declare(ctx context.Context, f *drift.Fight) {
	msg := f.String()
	c.mu.Lock()
	desired, ok := c.fought[f.Object]
	c.mu.Unlock()
	if ok {
		c.rec.Hold(desired, msg)
	}
	c.metrics.fights.Inc()
	c.log.Warn("fight with another field manager", "object", f.Object, "path", f.Path, "managers", f.Managers, "corrections", f.Corrections, "message", msg)
	if c.events != nil {
		_, cm, err := c.status.Load(ctx)
		if err != nil {
			cm = &corev1.ConfigMap{}
			cm.Namespace, cm.Name = c.status.Namespace, c.status.Name
		}
		c.events.Event(cm, corev1.EventTypeWarning, "FightDetected", msg)
	}
}

// DriftWatchSynced is the revision whose drift watch has listed every kind:
// from then on a change to its objects is noticed as it happens. It is
// empty before the first watch has synced and while none runs.
func (c *Controller) DriftWatchSynced() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.synced
}

// pauseDriftWatch stops the watch when a new revision is about to be
// applied: its desired objects are the old revision's, and meshcd's own
// writes would look like drift to it. watchDrift starts it again.
func (c *Controller) pauseDriftWatch(revision string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watching != revision && c.stopWatch != nil {
		c.stopWatch()
		c.stopWatch, c.watching, c.synced = nil, "", ""
	}
}

func (c *Controller) stopDriftWatch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopWatch != nil {
		c.stopWatch()
	}
}
