package proof

import (
	"context"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/access"
)

// Settle is how long Prove waits for istiod.
type Settle struct {
	// Timeout bounds the whole proof.
	Timeout time.Duration
	// Interval is the pause between two reads of istiod's config.
	Interval time.Duration
	// Hold is how long the same mismatches must stay before they are final:
	// istiod pushes a change to ztunnel moments after it reads it.
	Hold time.Duration
}

// Prove compares the access model of objs with istiod's ztunnel config and
// with the policies its waypoints enforce, reading the config again until they agree, or until the same mismatches
// have stayed for Hold, or until Timeout; it returns the last comparison.
func Prove(ctx context.Context, objs []*unstructured.Unstructured, src Source, opts access.Options, settle Settle) (*Result, error) {
	m, err := access.Build(objs, opts)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(settle.Timeout)
	var (
		last  *Result
		seen  string
		since time.Time
	)
	for {
		if src.Timeout == 0 || time.Until(deadline) < src.Timeout {
			src.Timeout = max(time.Until(deadline), time.Second)
		}
		cfg, err := Fetch(ctx, src)
		if err != nil {
			return nil, err
		}
		last = Compare(m, cfg, Options{TrustDomain: opts.TrustDomain})
		if last.WaypointsAgreed, last.WaypointMismatches, err = compareWaypoints(ctx, src, m, cfg); err != nil {
			return nil, err
		}
		key := last.mismatchKey()
		if key == "" {
			return last, nil
		}
		if key != seen {
			seen, since = key, time.Now()
		}
		if time.Since(since) >= settle.Hold || time.Now().After(deadline) {
			return last, nil
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(settle.Interval):
		}
	}
}

// mismatchKey tells two comparisons' mismatches apart.
func (r *Result) mismatchKey() string {
	var b strings.Builder
	for _, p := range r.Mismatches {
		b.WriteString(p.From.String() + ">" + p.To.String() + ":" + string(p.Istiod.Decision) + "\x00")
	}
	for _, a := range r.WaypointMismatches {
		b.WriteString(a.Waypoint + ">" + a.To.String() + ":" + strings.Join(a.Istiod, ",") + "\x00")
	}
	return b.String()
}
