package dataplane

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/meshcd/meshcd/meshspec"
)

// promServer answers /api/v1/query with the samples result holds, as
// Prometheus's HTTP API does, and records the queries it was asked.
func promServer(t *testing.T, result string) (string, *[]string) {
	t.Helper()
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		_ = r.ParseForm()
		queries = append(queries, r.Form.Get("query"))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[%s]}}`, result)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &queries
}

// gated is a stage over namespaces with the Prometheus gate g.
func gated(g *meshspec.PrometheusGate, namespaces ...string) Stage {
	return Stage{Stage: meshspec.Stage{Gates: &meshspec.Gates{Prometheus: g}}, Resolved: namespaces}
}

func sample(ns, value string) string {
	return fmt.Sprintf(`{"metric":{"destination_service_namespace":%q},"value":[1764300000,%q]}`, ns, value)
}

func TestPrometheusGate(t *testing.T) {
	const query = `sum by (destination_service_namespace) (rate(istio_requests_total{response_code=~"5..",destination_service_namespace=~"$namespaces"}[1m]))`
	for _, tc := range []struct {
		name   string
		result string
		max    string
		ok     bool
		why    string
	}{
		{"every sample under max", sample("shop", "0.002") + "," + sample("pay", "0.01"), "0.01", true, ""},
		{"one sample over max", sample("shop", "0.002") + "," + sample("pay", "0.2"), "0.01", false, `"pay"} is 0.2, over max 0.01`},
		{"no samples", "", "0.01", false, "returned no samples"},
		{"NaN from a ratio over no traffic", sample("shop", "NaN"), "0.01", false, "is NaN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, queries := promServer(t, tc.result)
			ok, why := prometheusGate(context.Background(), gated(&meshspec.PrometheusGate{URL: url, Query: query, Max: tc.max}, "shop", "pay"))
			if ok != tc.ok || !strings.Contains(why, tc.why) {
				t.Fatalf("got (%v, %q), want (%v, containing %q)", ok, why, tc.ok, tc.why)
			}
			if len(*queries) != 1 || !strings.Contains((*queries)[0], `destination_service_namespace=~"shop|pay"`) {
				t.Fatalf("the stage's namespaces were not put into the query: %v", *queries)
			}
		})
	}

	t.Run("a server that fails", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"status":"error","errorType":"bad_data","error":"parse error"}`, http.StatusBadRequest)
		}))
		defer srv.Close()
		ok, why := prometheusGate(context.Background(), gated(&meshspec.PrometheusGate{URL: srv.URL, Query: "up{", Max: "1"}))
		if ok || !strings.Contains(why, "failed") {
			t.Fatalf("got (%v, %q), want a gate that does not hold and says the query failed", ok, why)
		}
	})
}
