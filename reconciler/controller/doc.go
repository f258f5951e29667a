// Package controller runs meshcd continuously: it fetches the spec
// repository on an interval, a cron schedule, a verified push webhook or a
// drift event, reconciles it, and records the outcome as Ready, Reconciling
// and Stalled conditions (fluxcd/pkg/runtime) with the last applied and
// attempted revisions in a status ConfigMap, as Kubernetes Events and as
// Prometheus metrics. With leader election only one replica reconciles.
//
// A field another field manager keeps reverting is a fight (drift.Fights):
// the controller stops correcting that object, holds it out of the applies
// until the spec changes it, and reports the fight with the other manager's
// name in the status, an event, the log and a metric.
//
// Its Reconcile reads like a table of contents; each stage is a method, and
// status is written from one deferred place. It never renders or applies by
// itself: that is the reconciler's job.
package controller
