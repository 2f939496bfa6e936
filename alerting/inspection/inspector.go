package inspection

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/kioskmon/kioskmon/alerting/evaluator"
	"github.com/kioskmon/kioskmon/alerting/rulebook"
)

// Config configures an Inspector.
type Config struct {
	Rulebook *rulebook.Rulebook
	// Dir holds the ledger.
	Dir string
	// Interval: every kiosk is inspected at least this often. Default 14 days
	// (Fujian 2022 §8.2). A kiosk comes due after 6/7 of it, so closed days
	// and a busy fleet leave slack before the deadline.
	Interval time.Duration
	// Every is how often due kiosks are looked for. Default 10 minutes.
	Every time.Duration
	// Recheck: a kiosk that failed (or could not be reached) is inspected
	// again after this long, while its site is open, so the fault its
	// inspection raised resolves once repaired. Default 1 hour.
	Recheck time.Duration
	// BatchSize is the kiosks inspected by one set of queries. Default 200.
	BatchSize int
	// Kiosks lists the fleet (the inventory).
	Kiosks func() []Kiosk
	// IsOpen tells whether a site is open: remote inspection happens in
	// service hours, when a kiosk is on. nil: always open.
	IsOpen func(site string, t time.Time) bool
}

func (c *Config) defaults() {
	if c.Interval <= 0 {
		c.Interval = 14 * 24 * time.Hour
	}
	if c.Every <= 0 {
		c.Every = 10 * time.Minute
	}
	if c.Recheck <= 0 {
		c.Recheck = time.Hour
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 200
	}
	if c.IsOpen == nil {
		c.IsOpen = func(string, time.Time) bool { return true }
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.Rulebook == nil:
		return errors.New("inspection: no rulebook")
	case c.Kiosks == nil:
		return errors.New("inspection: no kiosk list")
	case c.Interval < time.Hour:
		return fmt.Errorf("inspection interval %s is under an hour", c.Interval)
	case c.Recheck > c.Interval:
		return fmt.Errorf("inspection recheck %s is longer than the interval %s", c.Recheck, c.Interval)
	}
	return nil
}

// AlertSource tells which alerts are open (the evaluator).
type AlertSource interface {
	Alerts() []evaluator.Alert
}

// Series is one sample the inspection writes to the storage.
type Series struct {
	Labels []evaluator.Label
	At     time.Time
	Value  float64
}

// SeriesWriter writes samples to the storage.
type SeriesWriter interface {
	WriteSeries(series []Series) error
}

// Series the inspection writes, with the kiosk's labels.
const (
	// MetricLast is the time of the kiosk's last inspection: coverage is
	// time() - kioskmon_inspection_timestamp_seconds < 14 days.
	MetricLast = "kioskmon_inspection_timestamp_seconds"
	// MetricItemFailed is 1 for an item that failed on something no alert
	// covers, written when it fails and 0 when it passes again; the
	// rulebook's inspection faults fire on it.
	MetricItemFailed = "kioskmon_inspection_item_failed"
)

type kioskState struct {
	last        time.Time // last inspection that reached the kiosk
	lastAttempt time.Time
	lastResult  string
	failing     map[string]bool // items written as failed
}

// Inspector schedules inspections, keeps their records and raises their findings.
type Inspector struct {
	cfg    Config
	check  checker
	ledger *Ledger
	alerts AlertSource
	writer SeriesWriter
	logger log.Logger

	mu    sync.Mutex // one inspection round at a time; guards state
	state map[string]*kioskState

	records  map[string]*metrics.Counter
	overdue  *metrics.Gauge
	overdueN float64
	duration *metrics.Histogram
}

// New opens the ledger and restores every kiosk's last inspection from it.
// alerts may be nil (rules evaluated elsewhere): then every finding raises.
func New(cfg Config, q evaluator.Querier, alerts AlertSource, w SeriesWriter, logger log.Logger, self *metrics.Set) (*Inspector, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ledger, err := OpenLedger(cfg.Dir)
	if err != nil {
		return nil, err
	}
	in := &Inspector{cfg: cfg, check: checker{q: q, faults: symptomFaults(cfg.Rulebook)}, ledger: ledger,
		alerts: alerts, writer: w, logger: logger, state: map[string]*kioskState{}, records: map[string]*metrics.Counter{}}
	if self == nil {
		self = metrics.NewSet()
	}
	for _, r := range []string{Pass, Fail, Unreachable} {
		in.records[r] = self.NewCounter(fmt.Sprintf(`kioskmon_inspections_total{result=%q}`, r))
	}
	in.overdue = self.NewGauge(`kioskmon_inspection_overdue_kiosks`, func() float64 {
		in.mu.Lock()
		defer in.mu.Unlock()
		return in.overdueN
	})
	in.duration = self.NewHistogram(`kioskmon_inspection_round_seconds`)
	if err := in.restore(time.Now()); err != nil {
		return nil, err
	}
	return in, nil
}

// restore reads the last two intervals of the ledger, and writes the failed
// items of each kiosk's last record again: the storage may have lost them
// in a crash, the ledger has not.
func (in *Inspector) restore(now time.Time) error {
	n := 0
	everFailed := map[string]map[string]bool{} // kiosk, item: written as failed within the window
	skipped, err := in.ledger.Scan(now.Add(-2*in.cfg.Interval), now.Add(24*time.Hour), func(r Record) bool {
		in.remember(r)
		if st := in.state[r.Kiosk]; st != nil {
			for item := range st.failing {
				if everFailed[r.Kiosk] == nil {
					everFailed[r.Kiosk] = map[string]bool{}
				}
				everFailed[r.Kiosk][item] = true
			}
		}
		n++
		return true
	})
	if err != nil {
		return fmt.Errorf("read inspection ledger: %w", err)
	}
	if skipped > 0 {
		level.Warn(in.logger).Log("msg", "inspection ledger has lines that do not decode; they were skipped", "lines", skipped, "dir", in.cfg.Dir)
	}
	var series []Series
	for id, st := range in.state {
		for item := range st.failing {
			k := in.kiosk(id)
			series = append(series, Series{Labels: itemLabels(k, item), At: st.last, Value: 1})
		}
		for item := range everFailed[id] {
			if !st.failing[item] { // cleared by the last record: its 0 may not have been written
				series = append(series, Series{Labels: itemLabels(in.kiosk(id), item), At: st.last, Value: 0})
			}
		}
	}
	if len(series) > 0 && in.writer != nil {
		if err := in.writer.WriteSeries(series); err != nil {
			return fmt.Errorf("restore inspection findings to the storage: %w", err)
		}
	}
	level.Info(in.logger).Log("msg", "restored inspections", "records", n, "kiosks", len(in.state), "failed_items", len(series))
	return nil
}

func (in *Inspector) kiosk(id string) Kiosk {
	for _, k := range in.cfg.Kiosks() {
		if k.ID == id {
			return k
		}
	}
	return Kiosk{ID: id}
}

// remember updates the schedule with r.
func (in *Inspector) remember(r Record) {
	st := in.state[r.Kiosk]
	if st == nil {
		st = &kioskState{failing: map[string]bool{}}
		in.state[r.Kiosk] = st
	}
	if r.At.After(st.lastAttempt) {
		st.lastAttempt = r.At
	}
	if r.Result == Unreachable || r.At.Before(st.last) {
		return
	}
	st.last, st.lastResult = r.At, r.Result
	clear(st.failing)
	for _, it := range r.Items {
		if it.Result == Fail && it.unalerted() {
			st.failing[it.Item] = true
		}
	}
}

// Run inspects what is due every cfg.Every until ctx ends.
func (in *Inspector) Run(ctx context.Context) {
	tick := time.NewTicker(in.cfg.Every)
	defer tick.Stop()
	for {
		if _, err := in.Round(ctx, time.Now()); err != nil && ctx.Err() == nil {
			level.Warn(in.logger).Log("msg", "inspection round failed; the kiosks stay due", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// due lists the kiosks to inspect at at, most overdue first, at most a
// round's budget: enough that the whole fleet is covered in a third of the
// interval's rounds (kiosks are on only while their site is open).
func (in *Inspector) due(at time.Time) (due []Kiosk, overdue int) {
	fleet := in.cfg.Kiosks()
	budget := max(in.cfg.BatchSize, int(math.Ceil(3*float64(len(fleet))*float64(in.cfg.Every)/float64(in.cfg.Interval))))
	comesDue := in.cfg.Interval * 6 / 7
	type candidate struct {
		k    Kiosk
		last time.Time
		hash uint64
	}
	var cands []candidate
	for _, k := range fleet {
		st := in.state[k.ID]
		if st == nil {
			st = &kioskState{}
		}
		if at.Sub(st.last) > in.cfg.Interval {
			overdue++
		}
		routine := at.Sub(st.last) >= comesDue
		recheck := (st.lastResult == Fail || st.lastAttempt.After(st.last)) && at.Sub(st.lastAttempt) >= in.cfg.Recheck
		if st.lastAttempt.After(st.last) && at.Sub(st.lastAttempt) < in.cfg.Recheck {
			routine = false // unreachable a moment ago: give it time
		}
		if !(routine || recheck) || !in.cfg.IsOpen(k.Site, at) {
			continue
		}
		h := fnv.New64a()
		h.Write([]byte(k.ID))
		cands = append(cands, candidate{k: k, last: st.last, hash: h.Sum64()})
	}
	// Never inspected first, then the oldest; ties spread by a hash, so a
	// new fleet is not inspected in inventory order, site by site.
	sort.Slice(cands, func(i, j int) bool {
		if !cands[i].last.Equal(cands[j].last) {
			return cands[i].last.Before(cands[j].last)
		}
		return cands[i].hash < cands[j].hash
	})
	for i := 0; i < len(cands) && i < budget; i++ {
		due = append(due, cands[i].k)
	}
	return due, overdue
}

// Round inspects the kiosks due at at and returns their records.
func (in *Inspector) Round(ctx context.Context, at time.Time) ([]Record, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	start := time.Now()
	due, overdue := in.due(at)
	in.overdueN = float64(overdue)
	recs, err := in.inspectLocked(ctx, due, at)
	if len(due) > 0 {
		in.duration.Update(time.Since(start).Seconds())
		level.Info(in.logger).Log("msg", "inspection round", "due", len(due), "inspected", len(recs), "overdue_kiosks", overdue,
			"took", time.Since(start).Round(time.Millisecond))
	}
	return recs, err
}

// InspectNow inspects these kiosks at at whether due or not (an engineer
// asking after a repair).
func (in *Inspector) InspectNow(ctx context.Context, ids []string, at time.Time) ([]Record, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	known := map[string]Kiosk{}
	for _, k := range in.cfg.Kiosks() {
		known[k.ID] = k
	}
	batch := make([]Kiosk, 0, len(ids))
	for _, id := range ids {
		k, ok := known[id]
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownKiosk, id)
		}
		batch = append(batch, k)
	}
	return in.inspectLocked(ctx, batch, at)
}

// ErrUnknownKiosk is a kiosk the inventory does not list.
var ErrUnknownKiosk = errors.New("kiosk not in the inventory")

func (in *Inspector) inspectLocked(ctx context.Context, kiosks []Kiosk, at time.Time) ([]Record, error) {
	var out []Record
	for len(kiosks) > 0 {
		batch := kiosks[:min(len(kiosks), in.cfg.BatchSize)]
		kiosks = kiosks[len(batch):]
		var open []evaluator.Alert
		if in.alerts != nil {
			open = in.alerts.Alerts()
		}
		recs, err := in.check.inspect(ctx, batch, at, open)
		if err != nil {
			return out, err
		}
		// The ledger first: a record is acknowledged once durable, and the
		// storage's series are derived from it.
		if err := in.ledger.Append(recs); err != nil {
			return out, err
		}
		var series []Series
		for _, r := range recs {
			in.records[r.Result].Inc()
			series = append(series, in.seriesOf(r)...)
		}
		if len(series) > 0 && in.writer != nil {
			if err := in.writer.WriteSeries(series); err != nil {
				// Not remembered: the kiosks stay due, and their next record writes the 0s again.
				return out, fmt.Errorf("write inspection series: %w", err)
			}
		}
		for _, r := range recs {
			in.remember(r)
		}
		out = append(out, recs...)
	}
	return out, nil
}

// seriesOf is what record r writes: its time, every item that failed on
// something no alert covers, and a 0 for each such item that passes again.
// Items that never fail write nothing, so a fleet of 100,000 kiosks does not
// carry a million idle series.
func (in *Inspector) seriesOf(r Record) []Series {
	if r.Result == Unreachable {
		return nil
	}
	k := Kiosk{ID: r.Kiosk, Site: r.Site, District: r.District, Provider: r.Provider}
	out := []Series{{Labels: kioskLabels(MetricLast, k), At: r.At, Value: float64(r.At.Unix())}}
	prev := map[string]bool{}
	if st := in.state[r.Kiosk]; st != nil {
		for item := range st.failing {
			prev[item] = true
		}
	}
	for _, it := range r.Items {
		switch {
		case it.Result == Fail && it.unalerted():
			out = append(out, Series{Labels: itemLabels(k, it.Item), At: r.At, Value: 1})
		case prev[it.Item]:
			out = append(out, Series{Labels: itemLabels(k, it.Item), At: r.At, Value: 0})
		}
	}
	return out
}

func kioskLabels(name string, k Kiosk) []evaluator.Label {
	return []evaluator.Label{{Name: "__name__", Value: name}, {Name: "kiosk", Value: k.ID}, {Name: "site", Value: k.Site},
		{Name: "district", Value: k.District}, {Name: "provider", Value: k.Provider}}
}

func itemLabels(k Kiosk, item string) []evaluator.Label {
	return append(kioskLabels(MetricItemFailed, k), evaluator.Label{Name: "item", Value: item})
}

// Ledger is where the records are kept.
func (in *Inspector) Ledger() *Ledger { return in.ledger }

// Interval is the inspection interval.
func (in *Inspector) Interval() time.Duration { return in.cfg.Interval }

// LastInspections returns each kiosk's last inspection that reached it.
func (in *Inspector) LastInspections() map[string]time.Time {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make(map[string]time.Time, len(in.state))
	for id, st := range in.state {
		if !st.last.IsZero() {
			out[id] = st.last
		}
	}
	return out
}
