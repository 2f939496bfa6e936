package compliance

import (
	"cmp"
	"container/heap"
	"context"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"time"

	"github.com/kioskmon/kioskmon/slo/ledger"
	"github.com/kioskmon/kioskmon/slo/policy"
)

// Dimensions a report breaks its figures down by.
const (
	ByProvider = "provider"
	ByDistrict = "district"
	BySite     = "site"
	BySeverity = "severity" // the highest severity reached
)

// Dimensions lists them.
var Dimensions = []string{ByProvider, ByDistrict, BySite, BySeverity}

// DefaultMaxBreaches is how many breaches a report keeps, the worst first.
const DefaultMaxBreaches = 1000

// TargetStats are one target's figures over a group of incidents.
type TargetStats struct {
	Met, Breached, Running, NotApplicable, NoTarget int
	// Measured counts the measures that ended (the acknowledgement, arrival
	// or resolution happened), whose durations make Mean and Quantile.
	Measured int
	sum      time.Duration
	hist     *histogram // repair only: the p90 reports ask for
}

func (s *TargetStats) add(m *Measure) {
	switch m.Status {
	case Met:
		s.Met++
	case Breached:
		s.Breached++
	case Running:
		s.Running++
	case NotApplicable:
		s.NotApplicable++
	case NoTarget:
		s.NoTarget++
	}
	if !m.End.IsZero() {
		s.Measured++
		s.sum += m.Elapsed
		if s.hist != nil {
			s.hist.add(m.Elapsed)
		}
	}
}

// Compliance is the share of decided targets met, in percent; ok is false
// when none was decided.
func (s *TargetStats) Compliance() (pct float64, ok bool) {
	n := s.Met + s.Breached
	if n == 0 {
		return 0, false
	}
	return 100 * float64(s.Met) / float64(n), true
}

// Mean is the mean duration of the measures that ended (on the target's
// clock, pauses taken off), 0 if none.
func (s *TargetStats) Mean() time.Duration {
	if s.Measured == 0 {
		return 0
	}
	return s.sum / time.Duration(s.Measured)
}

// Quantile is the nearest-rank q-quantile of the durations that ended
// (the smallest duration at least q of them do not exceed), 0 if none.
// Only repair keeps the histogram it needs (Stats.P90Repair); other
// targets return 0.
// A streaming histogram keeps memory bounded: the result is the mean of
// the durations in the rank's bucket, exact when they are equal, otherwise
// off by less than a second below 256 s and by under 0.8% above.
func (s *TargetStats) Quantile(q float64) time.Duration {
	if s.hist == nil {
		return 0
	}
	return s.hist.quantile(q)
}

// Stats are a group's figures.
type Stats struct {
	// Incidents opened in the period; Open of them not resolved at AsOf.
	Incidents, Open int
	// Decided incidents (a target breached, or resolved with one met) and
	// the Compliant ones among them (no target breached).
	Decided, Compliant        int
	Response, Arrival, Repair TargetStats
}

// Compliance is the share of decided incidents with no target breached,
// in percent; ok is false when none was decided.
func (s *Stats) Compliance() (pct float64, ok bool) {
	if s.Decided == 0 {
		return 0, false
	}
	return 100 * float64(s.Compliant) / float64(s.Decided), true
}

// MTTA is the mean time to acknowledge (the response measure).
func (s *Stats) MTTA() time.Duration { return s.Response.Mean() }

// MTTR is the mean time to repair.
func (s *Stats) MTTR() time.Duration { return s.Repair.Mean() }

// P90Repair is the 90th percentile of repair times.
func (s *Stats) P90Repair() time.Duration { return s.Repair.Quantile(0.9) }

func (s *Stats) add(r *Result) {
	if s.Repair.hist == nil {
		s.Repair.hist = &histogram{}
	}
	s.Incidents++
	if r.Open {
		s.Open++
	}
	if r.Decided() {
		s.Decided++
		if !r.Breached() {
			s.Compliant++
		}
	}
	s.Response.add(&r.Response)
	s.Arrival.add(&r.Arrival)
	s.Repair.add(&r.Repair)
}

// Breach is one breached target, for the report's list.
type Breach struct {
	Incident                                         int64
	Kiosk, Site, District, Provider, Fault, Severity string
	Detected                                         time.Time
	Kind                                             string // policy.Response, Arrival or Repair
	Measure                                          Measure
	// Open: the incident is still open, so Over is still growing.
	Open bool
}

// Report is a period's figures.
type Report struct {
	// Policy is the version of the policy the figures come from.
	Policy string
	// Incidents opened in [From, To), with their events up to AsOf.
	From, To, AsOf time.Time
	Total          Stats
	// By dimension (ByProvider ...), then by its value.
	By map[string]map[string]*Stats
	// Breaches, the largest overrun first, at most MaxBreaches of them;
	// BreachCount counts all.
	Breaches    []Breach
	BreachCount int
	// Kiosks counts the kiosks with an incident in the period.
	Kiosks int
	// MissingHolidays lists the years of the period the holiday calendar
	// has no file for: their holidays were taken as working days.
	MissingHolidays []int
}

// Aggregator folds a stream of ledger events into a Report. Memory holds
// the incidents still open in the stream, the groups, and the worst
// breaches: not the events, nor the incidents already done.
type Aggregator struct {
	// MaxBreaches (0: DefaultMaxBreaches) bounds Report.Breaches.
	MaxBreaches int
	// OnIncident, if set, sees every incident's result as it is done (for
	// a full CSV of incidents or breaches); an error stops the stream. The
	// Result is reused after OnIncident returns: copy what you keep.
	OnIncident func(*Result) error

	e              *Engine
	from, to, asOf time.Time
	open           map[int64]*tracker
	free           []*tracker // done trackers, reused: no allocation per incident
	res            Result     // the result being folded, reused likewise
	report         *Report
	breaches       breachHeap
	finished       bool
	// kiosks holds, per kiosk with an incident, what each of its incidents
	// needs: one map access for the distance and three groups, which at a
	// million incidents over 100,000 kiosks cost a cache miss or two each.
	kiosks map[string]*kioskGroups
}

// kioskGroups is a kiosk's distance and the groups of its last incident's
// provider, district and site (an incident carries its own, so a kiosk
// moved within the period is counted where each incident was).
type kioskGroups struct {
	distanceKm               float64
	provider, district, site string
	groups                   [3]*Stats
}

// Aggregate returns an Aggregator of the incidents opened in [from, to),
// as of asOf. Feed it the events from `from` to asOf (Ledger.Events), then
// call Finish.
func (e *Engine) Aggregate(from, to, asOf time.Time) *Aggregator {
	r := &Report{Policy: e.p.Version(), From: from, To: to, AsOf: asOf, By: map[string]map[string]*Stats{}}
	for _, d := range Dimensions {
		r.By[d] = map[string]*Stats{}
	}
	for y := from.In(e.p.Location()).Year(); y <= to.Add(-time.Nanosecond).In(e.p.Location()).Year(); y++ {
		if !e.p.Holidays().Has(y) {
			r.MissingHolidays = append(r.MissingHolidays, y)
		}
	}
	return &Aggregator{e: e, from: from, to: to, asOf: asOf, open: map[int64]*tracker{}, report: r, kiosks: map[string]*kioskGroups{}}
}

// Add takes the next event. Events of one incident must come in order;
// incidents may interleave. Events of incidents opened outside [from, to)
// and events after asOf are skipped.
func (a *Aggregator) Add(ev ledger.Event) error {
	if a.finished {
		return fmt.Errorf("compliance: Add after Finish")
	}
	if ev.At.After(a.asOf) {
		return nil
	}
	if ev.Kind == ledger.KindOpened {
		if ev.At.Before(a.from) || !ev.At.Before(a.to) {
			return nil
		}
		var t *tracker
		if n := len(a.free); n > 0 {
			t, a.free = a.free[n-1], a.free[:n-1]
		} else {
			t = &tracker{}
		}
		t.add(a.e.p, ev)
		a.open[ev.Incident] = t
		return nil
	}
	t, ok := a.open[ev.Incident]
	if !ok {
		return nil
	}
	t.add(a.e.p, ev)
	if ev.Kind == ledger.KindResolved {
		delete(a.open, ev.Incident)
		err := a.done(t)
		a.free = append(a.free, t)
		return err
	}
	return nil
}

func (a *Aggregator) done(t *tracker) error {
	k := a.kiosks[t.kiosk]
	if k == nil {
		k = &kioskGroups{distanceKm: a.e.distance[t.kiosk]}
		a.kiosks[t.kiosk] = k
	}
	var err error
	if a.res, err = a.e.evaluate(t, a.asOf, k.distanceKm); err != nil {
		return err
	}
	r := &a.res
	rep := a.report
	rep.Total.add(r)
	if k.groups[0] == nil || k.provider != r.Provider || k.district != r.District || k.site != r.Site {
		k.provider, k.district, k.site = r.Provider, r.District, r.Site
		k.groups = [3]*Stats{a.group(ByProvider, r.Provider), a.group(ByDistrict, r.District), a.group(BySite, r.Site)}
	}
	for _, g := range k.groups {
		g.add(r)
	}
	a.group(BySeverity, r.Severity).add(r)
	for _, m := range [...]struct {
		kind string
		m    *Measure
	}{{policy.Response, &r.Response}, {policy.Arrival, &r.Arrival}, {policy.Repair, &r.Repair}} {
		if m.m.Status != Breached {
			continue
		}
		rep.BreachCount++
		b := Breach{Incident: r.Incident, Kiosk: r.Kiosk, Site: r.Site, District: r.District, Provider: r.Provider, Fault: r.Fault,
			Severity: r.Severity, Detected: r.Detected, Kind: m.kind, Measure: *m.m, Open: r.Open}
		a.breaches.keep(b, a.maxBreaches())
	}
	if a.OnIncident != nil {
		return a.OnIncident(r)
	}
	return nil
}

// group returns the statistics of one value of a dimension, new if need be.
func (a *Aggregator) group(dim, value string) *Stats {
	g := a.report.By[dim][value]
	if g == nil {
		g = &Stats{}
		a.report.By[dim][value] = g
	}
	return g
}

func (a *Aggregator) maxBreaches() int {
	if a.MaxBreaches > 0 {
		return a.MaxBreaches
	}
	return DefaultMaxBreaches
}

// Finish evaluates the incidents still open at asOf and returns the report.
func (a *Aggregator) Finish() (*Report, error) {
	if a.finished {
		return a.report, nil
	}
	a.finished = true
	ids := make([]int64, 0, len(a.open))
	for id := range a.open {
		ids = append(ids, id)
	}
	slices.Sort(ids) // OnIncident sees them in a stable order
	for _, id := range ids {
		if err := a.done(a.open[id]); err != nil {
			return nil, err
		}
	}
	a.open = nil
	a.report.Kiosks = len(a.kiosks)
	b := []Breach(a.breaches)
	slices.SortFunc(b, func(x, y Breach) int {
		return cmp.Or(cmp.Compare(y.Measure.Over, x.Measure.Over), cmp.Compare(x.Incident, y.Incident), cmp.Compare(x.Kind, y.Kind))
	})
	a.report.Breaches = b
	return a.report, nil
}

// Events is what reads the ledger's events of [from, to) in order
// (ledger.Ledger has it).
type Events interface {
	Events(ctx context.Context, from, to time.Time, fn func(ledger.Event) error) error
}

// Report computes the report of the incidents opened in [from, to) as of
// asOf, streaming the events from src.
func (e *Engine) Report(ctx context.Context, src Events, from, to, asOf time.Time) (*Report, error) {
	a := e.Aggregate(from, to, asOf)
	if err := src.Events(ctx, from, asOf.Add(time.Millisecond), a.Add); err != nil {
		return nil, err
	}
	return a.Finish()
}

var _ Events = (*ledger.Ledger)(nil)

// Month returns the bounds of a month ("2026-10") in loc: the first
// instant of the month and of the next.
func Month(month string, loc *time.Location) (from, to time.Time, err error) {
	t, err := time.ParseInLocation("2006-01", month, loc)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("month %q: want YYYY-MM", month)
	}
	return t, t.AddDate(0, 1, 0), nil
}

// PreviousMonth is the month ("2026-10") before the one now is in, in loc.
func PreviousMonth(now time.Time, loc *time.Location) string {
	n := now.In(loc)
	return time.Date(n.Year(), n.Month()-1, 1, 0, 0, 0, 0, loc).Format("2006-01")
}

// breachHeap keeps the breaches with the largest overrun: a min-heap on
// Over, so the smallest kept is dropped first.
type breachHeap []Breach

func (h breachHeap) Len() int { return len(h) }
func (h breachHeap) Less(i, j int) bool {
	if h[i].Measure.Over != h[j].Measure.Over {
		return h[i].Measure.Over < h[j].Measure.Over
	}
	return h[i].Incident > h[j].Incident
}
func (h breachHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *breachHeap) Push(x any)   { *h = append(*h, x.(Breach)) }
func (h *breachHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (h *breachHeap) keep(b Breach, limit int) {
	if h.Len() < limit {
		heap.Push(h, b)
		return
	}
	if (*h)[0].Measure.Over < b.Measure.Over {
		(*h)[0] = b
		heap.Fix(h, 0)
	}
}

// histogram counts durations in buckets of whole seconds: one per second
// below 256 s, then 128 per power of two (each under 0.8% wide). A bucket
// keeps its count and the sum of its durations, and stands for their mean:
// within the bucket, and exact when its durations are equal (a group of
// a few incidents). A small group keeps a short list of buckets, searched
// in place; past sparseMax buckets an index by bucket number (2 bytes per
// bucket number up to the largest seen, a few KiB) finds them.
type histogram struct {
	buckets  []bucket
	dense    []uint16 // bucket number -> place in buckets + 1; nil while sparse
	n        uint64
	min, max time.Duration
}

const sparseMax = 64

type bucket struct {
	key uint16
	n   uint32
	sum time.Duration
}

func (h *histogram) find(k uint16) int {
	if h.dense != nil {
		if int(k) < len(h.dense) {
			return int(h.dense[k]) - 1
		}
		return -1
	}
	for i := range h.buckets {
		if h.buckets[i].key == k {
			return i
		}
	}
	return -1
}

func bucketOf(s uint64) uint16 {
	if s < 256 {
		return uint16(s)
	}
	shift := uint(bits.Len64(s) - 8) // keep the top 8 bits
	return uint16(256 + (shift-1)*128 + uint(s>>shift) - 128)
}

func (h *histogram) add(d time.Duration) {
	d = max(d, 0)
	if h.n == 0 {
		h.min, h.max = d, d
	}
	h.min, h.max = min(h.min, d), max(h.max, d)
	k := bucketOf(uint64(d / time.Second))
	i := h.find(k)
	if i < 0 {
		i = len(h.buckets)
		h.buckets = append(h.buckets, bucket{key: k})
		switch {
		case h.dense != nil:
			if int(k) >= len(h.dense) {
				h.dense = append(h.dense, make([]uint16, int(k)+1-len(h.dense))...)
			}
			h.dense[k] = uint16(i + 1)
		case len(h.buckets) > sparseMax:
			top := uint16(0)
			for _, b := range h.buckets {
				top = max(top, b.key)
			}
			h.dense = make([]uint16, int(top)+1)
			for j, b := range h.buckets {
				h.dense[b.key] = uint16(j + 1)
			}
		}
	}
	b := &h.buckets[i]
	b.n++
	b.sum += d
	h.n++
}

func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	sorted := slices.SortedFunc(slices.Values(h.buckets), func(a, b bucket) int { return cmp.Compare(a.key, b.key) })
	var seen uint64
	for _, b := range sorted {
		seen += uint64(b.n)
		if seen >= rank {
			return min(max(b.sum/time.Duration(b.n), h.min), h.max)
		}
	}
	return h.max
}
