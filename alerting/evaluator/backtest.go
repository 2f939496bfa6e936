package evaluator

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/go-kit/log"
)

// Incident is an alert's life as a backtest saw it.
type Incident struct {
	Labels map[string]string `json:"labels"`
	// Start is when the condition began (the alert's activeAt); Fired when
	// it fired; End when it resolved, zero if still firing at the end.
	Start time.Time `json:"start"`
	Fired time.Time `json:"fired"`
	End   time.Time `json:"end,omitzero"`
}

type incidentRecorder struct {
	open map[uint64]*Incident
	done []Incident
}

func (r *incidentRecorder) Transition(_ context.Context, t Transition) error {
	switch t.To {
	case StateFiring:
		r.open[t.Alert.Fingerprint] = &Incident{Labels: t.Alert.Labels, Start: t.Alert.ActiveAt, Fired: t.At}
	case StateInactive:
		if in := r.open[t.Alert.Fingerprint]; in != nil {
			in.End = t.At
			r.done = append(r.done, *in)
			delete(r.open, t.Alert.Fingerprint)
		}
	}
	return nil
}

// BacktestResult is what a backtest found, and what it cost.
type BacktestResult struct {
	Incidents []Incident
	// Cycles is each evaluation cycle's wall time, in order.
	Cycles []time.Duration
	// Rules is each rule's time summed over the cycles (its query and
	// applying the result; with Concurrency above 1 the queries overlap, so
	// the sum exceeds the cycles' time).
	Rules map[string]time.Duration
}

// Backtest evaluates the rules over stored data from from to to, a cycle
// every step, as if the evaluator had run then, and returns the incidents
// that fired: how this rulebook would have graded that time. It keeps no
// state and sends nothing.
func Backtest(ctx context.Context, cfg Config, q Querier, from, to time.Time, step time.Duration) (BacktestResult, error) {
	if !from.Before(to) {
		return BacktestResult{}, fmt.Errorf("backtest: from %s is not before to %s", from, to)
	}
	if step <= 0 && cfg.Rulebook != nil {
		step = time.Duration(cfg.Rulebook.Interval)
	}
	if step <= 0 {
		step = cfg.Interval
	}
	if n := to.Sub(from) / step; n > 100000 {
		return BacktestResult{}, fmt.Errorf("backtest: %d cycles; use a larger step or a shorter range", n)
	}
	cfg.StateFile = ""
	e, err := New(cfg, q, log.NewNopLogger(), nil)
	if err != nil {
		return BacktestResult{}, err
	}
	rec := &incidentRecorder{open: map[uint64]*Incident{}}
	e.AddSink(rec)
	res := BacktestResult{Rules: map[string]time.Duration{}}
	for at := from; !at.After(to); at = at.Add(step) {
		if err := ctx.Err(); err != nil {
			return BacktestResult{}, err
		}
		start := time.Now()
		e.Eval(ctx, at)
		res.Cycles = append(res.Cycles, time.Since(start))
		for i, r := range e.rules {
			res.Rules[r.Name] += e.ruleDur[i]
		}
	}
	out := rec.done
	for _, in := range rec.open {
		out = append(out, *in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	res.Incidents = out
	return res, nil
}
