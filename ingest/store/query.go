package store

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/app/vmselect/promql"
	"github.com/VictoriaMetrics/VictoriaMetrics/app/vmselect/searchutil"
)

// Sample is one series of an instant query's result.
type Sample struct {
	// Labels include __name__ when the series kept its name.
	Labels []Label
	Value  float64
}

// defaultQueryTimeout bounds a query whose context has no deadline.
const defaultQueryTimeout = 30 * time.Second

// Query evaluates the PromQL (MetricsQL) expression q at time at, in
// process: the rule evaluator's path, without HTTP and JSON in between.
func (s *Storage) Query(ctx context.Context, q string, at time.Time) ([]Sample, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	timeout := defaultQueryTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
		if timeout <= 0 {
			return nil, context.DeadlineExceeded
		}
	}
	ms := at.UnixMilli()
	ec := &promql.EvalConfig{
		Start: ms, End: ms, Step: 5 * 60 * 1000, // Prometheus' instant query step
		MaxPointsPerSeries: 30e3, Deadline: searchutil.NewDeadline(time.Now(), timeout, "the rule's context"),
		RoundDigits: 100,
		// For an instant query, the cache serves only rollups over a window of
		// 3 h and more (-search.minWindowForInstantRollupOptimization) at about
		// now: max_over_time(m[24h]) is computed once, then from the cached
		// value and the last minutes' samples, exactly. kiosk.offline and the
		// inspection's 15-day windows would otherwise read every sample of
		// their window for every kiosk in every cycle. A backtest's past
		// instants are computed in full, as VictoriaMetrics decides by itself.
		MayCache: true,
	}
	results, err := promql.Exec(nil, ec, q, true)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", q, err)
	}
	out := make([]Sample, 0, len(results))
	for i := range results {
		r := &results[i]
		if len(r.Values) == 0 {
			continue
		}
		v := r.Values[len(r.Values)-1]
		if math.IsNaN(v) {
			continue // no value at this instant
		}
		labels := make([]Label, 0, len(r.MetricName.Tags)+1)
		if len(r.MetricName.MetricGroup) > 0 {
			labels = append(labels, Label{Name: "__name__", Value: string(r.MetricName.MetricGroup)})
		}
		for _, t := range r.MetricName.Tags {
			labels = append(labels, Label{Name: string(t.Key), Value: string(t.Value)})
		}
		out = append(out, Sample{Labels: labels, Value: v})
	}
	return out, nil
}
