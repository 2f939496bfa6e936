package server

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/kioskmon/kioskmon/alerting/evaluator"
	"github.com/kioskmon/kioskmon/alerting/inspection"
	"github.com/kioskmon/kioskmon/alerting/rulebook"
	"github.com/kioskmon/kioskmon/alerting/ruletest"
	"github.com/kioskmon/kioskmon/ingest/inventory"
	"github.com/kioskmon/kioskmon/ingest/sparse"
	"github.com/kioskmon/kioskmon/ingest/store"
)

// storeQuerier adapts the storage to the evaluator.
type storeQuerier struct{ st *store.Storage }

func (q storeQuerier) Query(ctx context.Context, expr string, at time.Time) ([]evaluator.Sample, error) {
	samples, err := q.st.Query(ctx, expr, at)
	if err != nil {
		return nil, err
	}
	out := make([]evaluator.Sample, len(samples))
	for i, s := range samples {
		labels := make([]evaluator.Label, len(s.Labels))
		for j, l := range s.Labels {
			labels[j] = evaluator.Label{Name: l.Name, Value: l.Value}
		}
		out[i] = evaluator.Sample{Labels: labels, Value: s.Value}
	}
	return out, nil
}

// WriteSeries stores samples kioskmon computes itself: the inspection's
// findings, the opening hours (alerting/openhours).
func (q storeQuerier) WriteSeries(series []inspection.Series) error {
	rows := make([]store.Row, len(series))
	var ls []store.Label
	for i, se := range series {
		ls = ls[:0]
		for _, l := range se.Labels {
			ls = append(ls, store.Label{Name: l.Name, Value: l.Value})
		}
		rows[i] = store.Row{MetricNameRaw: store.AppendMetricName(nil, ls), Timestamp: se.At.UnixMilli(), Value: se.Value}
	}
	return q.st.AddRows(rows)
}

// newInspector starts the remote inspection over the inventory's kiosks.
func newInspector(cfg Config, evCfg evaluator.Config, kiosks *inventory.Watcher, st *store.Storage, alerts inspection.AlertSource,
	self *metrics.Set, logger log.Logger) (*inspection.Inspector, error) {
	ins, err := inspection.New(inspection.Config{
		Rulebook: evCfg.Rulebook,
		Dir:      filepath.Join(cfg.Data, "inspections"),
		Interval: time.Duration(cfg.Inspection.Interval),
		Recheck:  time.Duration(cfg.Inspection.Recheck),
		IsOpen:   evCfg.IsOpen,
		Kiosks: func() []inspection.Kiosk {
			all := kiosks.Index().Kiosks()
			out := make([]inspection.Kiosk, len(all))
			for i, k := range all {
				out[i] = inspection.Kiosk{ID: k.ID, Site: k.Site, District: k.District, Provider: k.Provider}
			}
			return out
		},
	}, storeQuerier{st}, alerts, storeQuerier{st}, log.With(logger, "component", "inspection"), self)
	if err != nil {
		return nil, fmt.Errorf("inspection: %w", err)
	}
	return ins, nil
}

// evaluatorConfig loads the rulebook and ties opening hours to the inventory.
func evaluatorConfig(cfg Config, kiosks *inventory.Watcher) (evaluator.Config, error) {
	rb, err := rulebook.Load(cfg.Rules.Rulebook)
	if err != nil {
		return evaluator.Config{}, err
	}
	if _, err := rb.Compile(cfg.Rules.Preset); err != nil {
		return evaluator.Config{}, err
	}
	isOpen := func(site string, t time.Time) bool {
		s, ok := kiosks.Index().Site(site)
		if !ok {
			return true // a site the inventory does not describe has no hours to keep
		}
		open, err := s.IsOpen(t)
		return err != nil || open
	}
	return evaluator.Config{Rulebook: rb, Preset: cfg.Rules.Preset, IsOpen: isOpen, StateFile: filepath.Join(cfg.Data, "alerts.json"),
		Concurrency: cfg.Rules.MaxConcurrent}, nil
}

func newEvaluator(evCfg evaluator.Config, q evaluator.Querier, self *metrics.Set, logger log.Logger) (*evaluator.Evaluator, error) {
	ev, err := evaluator.New(evCfg, q, log.With(logger, "component", "rules"), self)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	return ev, nil
}

// conditionQuerier is the rules' querier: each expression reads the copies
// the ingest keeps of the samples that meet its conditions (ingest/sparse),
// for the instants they cover.
type conditionQuerier struct {
	storeQuerier
	conds *sparse.Set
}

func (q conditionQuerier) Query(ctx context.Context, expr string, at time.Time) ([]evaluator.Sample, error) {
	return q.storeQuerier.Query(ctx, q.conds.Rewrite(expr, at), at)
}

// conditionsFile, in the data directory, records since when each condition
// is copied.
const conditionsFile = "rule-conditions.json"

// openConditions finds the conditions of the rules' expressions the ingest
// copies, and marks live the copies the storage holds from before a restart,
// so that a condition that ends now still ends its copy.
func openConditions(ctx context.Context, cfg Config, evCfg evaluator.Config, st *store.Storage, self *metrics.Set, logger log.Logger) (*sparse.Set, error) {
	exprs, err := evaluator.Queries(evCfg)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	since := now
	if st.Created() {
		since = time.Time{} // every sample goes through the copies, backfills included
	}
	conds, err := sparse.Open(filepath.Join(cfg.Data, conditionsFile), exprs, since)
	if err != nil {
		return nil, err
	}
	st.MakeSearchable()
	samples, err := st.Query(ctx, sparse.LiveCopiesQuery, now)
	if err != nil {
		return nil, fmt.Errorf("find the live condition copies: %w", err)
	}
	live := make([]sparse.LiveCopy, len(samples))
	for i, s := range samples {
		live[i] = sparse.LiveCopy{Labels: s.Labels, LastMs: int64(s.Value * 1000)}
	}
	n := conds.Seed(live)
	level.Info(logger).Log("msg", "copying the samples that meet the rules' conditions at ingest", "conditions", len(conds.Conditions()), "live_copies", n, "file", filepath.Join(cfg.Data, conditionsFile))
	self.NewGauge(`kioskmon_rules_condition_copies_live`, func() float64 { return float64(conds.LiveCount()) })
	return conds, nil
}

// RuleTestStorage is a throwaway embedded storage for kioskmon rules test:
// the rules are tested on the engine that evaluates them in production.
type RuleTestStorage struct {
	storeQuerier
}

// OpenRuleTestStorage opens an empty storage in dir.
func OpenRuleTestStorage(dir string) (*RuleTestStorage, error) {
	st, err := store.Open(store.Config{DataPath: dir, Retention: 5 * 365 * 24 * time.Hour, SearchLatencyOffset: time.Millisecond})
	if err != nil {
		return nil, err
	}
	return &RuleTestStorage{storeQuerier{st}}, nil
}

// Add stores a series' points.
func (s *RuleTestStorage) Add(labels []evaluator.Label, points []ruletest.Point) error {
	ls := make([]store.Label, len(labels))
	for i, l := range labels {
		ls[i] = store.Label{Name: l.Name, Value: l.Value}
	}
	name := store.AppendMetricName(nil, ls)
	rows := make([]store.Row, len(points))
	for i, p := range points {
		rows[i] = store.Row{MetricNameRaw: name, Timestamp: p.T.UnixMilli(), Value: p.V}
	}
	return s.st.AddRows(rows)
}

// MakeSearchable makes what was added visible to queries.
func (s *RuleTestStorage) MakeSearchable() { s.st.MakeSearchable() }

// Close closes the storage.
func (s *RuleTestStorage) Close() error { return s.st.Close() }
