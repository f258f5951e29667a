package controller

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/apply"
)

// Metrics are the Prometheus series meshcd exports.
type Metrics struct {
	registry *prometheus.Registry
	duration *prometheus.HistogramVec
	objects  *prometheus.CounterVec
	drift    prometheus.Counter
	fights   prometheus.Counter
	findings *prometheus.GaugeVec
	held     prometheus.Gauge
}

// NewMetrics registers meshcd's series in a registry of their own.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "meshcd_reconcile_duration_seconds", Help: "Duration of reconciles by their outcome.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}, []string{"reason"}),
		objects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshcd_objects_total", Help: "Objects applied and pruned, by action.",
		}, []string{"action"}),
		drift: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshcd_drift_total", Help: "Drifted objects noticed by the watch.",
		}),
		fights: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshcd_fights_total", Help: "Fights declared: a field another field manager reverted after each of meshcd's corrections.",
		}),
		findings: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meshcd_findings", Help: "Findings of the last reconcile, by rule and severity.",
		}, []string{"rule", "severity"}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshcd_prune_held_objects", Help: "Objects the mass-prune guard holds out of the last reconcile's prune until an operator allows them (meshcd allow-prune).",
		}),
	}
	m.registry.MustRegister(m.duration, m.objects, m.drift, m.fights, m.findings, m.held,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// record adds one reconcile's outcome.
func (m *Metrics) record(res *reconciler.Result, seconds float64) {
	m.duration.WithLabelValues(string(res.Reason)).Observe(seconds)
	for _, cs := range []*apply.ChangeSet{res.Applied, res.Pruned} {
		if cs == nil {
			continue
		}
		for _, c := range cs.Changes {
			if c.Action != apply.Unchanged {
				m.objects.WithLabelValues(string(c.Action)).Inc()
			}
		}
	}
	m.held.Set(0)
	if res.Held != nil {
		m.held.Set(float64(res.Held.Count))
	}
	m.findings.Reset()
	for _, f := range res.Findings {
		m.findings.WithLabelValues(f.Rule, string(f.Severity)).Inc()
	}
}
