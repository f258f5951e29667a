package localcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
)

// WeightedWaypoint is one waypoint istiod resolved for a Service, with the
// share of new connections it gets.
type WeightedWaypoint struct {
	// Name is the waypoint's Service name, such as waypoint-canary.
	Name string
	// Weight is its share in percent.
	Weight int
}

// ambientz is the part of istiod's GET /debug/ambientz this package reads:
// each Service with the weighted waypoints istiod resolved for it
// (pilot/pkg/xds/debug.go ambientz; the weights come from
// buildWeightedWaypoints in pilot/pkg/serviceregistry/ambient/waypoints.go,
// [{primary, 100-weight}, {canary, weight}] for a valid canary).
type ambientz struct {
	Services []struct {
		Name              string `json:"name"`
		Namespace         string `json:"namespace"`
		WeightedWaypoints []struct {
			Destination struct {
				Hostname struct {
					Hostname string `json:"hostname"`
				} `json:"hostname"`
			} `json:"destination"`
			// Weight is left out by protojson when it is 0.
			Weight int `json:"weight"`
		} `json:"weightedWaypoints"`
	} `json:"services"`
}

// WeightedWaypoints asks istiod, at monitoringURL (IstiodMonitoringURL),
// which waypoints it resolved for Service namespace/name and with what
// weights, sorted by name. None means istiod sends the Service's traffic
// to its one waypoint, or to none, without a canary.
func WeightedWaypoints(ctx context.Context, monitoringURL, namespace, name string) ([]WeightedWaypoint, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, monitoringURL+"/debug/ambientz", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("istiod /debug/ambientz: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("istiod /debug/ambientz: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("istiod /debug/ambientz answered %s", resp.Status)
	}
	var doc ambientz
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("istiod /debug/ambientz is not the JSON expected: %w", err)
	}
	var out []WeightedWaypoint
	for _, s := range doc.Services {
		if s.Namespace != namespace || s.Name != name {
			continue
		}
		for _, w := range s.WeightedWaypoints {
			host, _, _ := strings.Cut(w.Destination.Hostname.Hostname, ".")
			out = append(out, WeightedWaypoint{Name: host, Weight: w.Weight})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// String is "waypoint 90%, waypoint-canary 10%".
func (w WeightedWaypoint) String() string { return fmt.Sprintf("%s %d%%", w.Name, w.Weight) }
