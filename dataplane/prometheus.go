package dataplane

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// queryTimeout bounds one Prometheus gate query.
const queryTimeout = 10 * time.Second

// prometheusGate runs a stage's PromQL query, if it has one, and reports
// whether every sample is at or under the threshold; why names the first
// that is not, or that the query returned nothing. An unreachable server or
// a bad query is a gate that does not hold, never an error of the reconcile.
func prometheusGate(ctx context.Context, s Stage) (bool, string) {
	if s.Gates == nil || s.Gates.Prometheus == nil {
		return true, ""
	}
	g := s.Gates.Prometheus
	limit, err := strconv.ParseFloat(g.Max, 64)
	if err != nil {
		return false, fmt.Sprintf("prometheus gate: max %q is not a number", g.Max)
	}
	c, err := api.NewClient(api.Config{Address: g.URL})
	if err != nil {
		return false, fmt.Sprintf("prometheus gate: %v", err)
	}
	quoted := make([]string, len(s.Resolved))
	for i, ns := range s.Resolved {
		quoted[i] = regexp.QuoteMeta(ns)
	}
	query := strings.ReplaceAll(g.Query, "$namespaces", strings.Join(quoted, "|"))
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	v, _, err := promv1.NewAPI(c).Query(ctx, query, time.Now())
	if err != nil {
		return false, fmt.Sprintf("prometheus gate: query %s failed: %v", g.URL, err)
	}
	var samples model.Vector
	switch v := v.(type) {
	case *model.Scalar:
		samples = model.Vector{{Value: v.Value}}
	case model.Vector:
		samples = v
	default:
		return false, fmt.Sprintf("prometheus gate: the query returned a %s; want an instant vector or a scalar", v.Type())
	}
	if len(samples) == 0 {
		return false, "prometheus gate: the query returned no samples"
	}
	for _, smp := range samples {
		if x := float64(smp.Value); x > limit || x != x { // NaN: a ratio over no traffic
			labels := ""
			if smp.Metric != nil {
				labels = smp.Metric.String()
			}
			return false, fmt.Sprintf("prometheus gate: %s%s is %g, over max %s", query, labels, x, g.Max)
		}
	}
	return true, ""
}
