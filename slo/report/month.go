// Package report makes the monthly SLA report managers read: the
// compliance figures of the month's incidents (package compliance), each
// kiosk's availability over its opening hours, remote inspection coverage,
// satisfaction and consumables refills, and the breach list with each
// breached incident's evidence timeline. Build computes it in one pass over
// the ledger's events; the renderers write it as an HTML page with SVG
// charts, as CSV for spreadsheets, and as PDF through headless Chromium.
package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/kioskmon/kioskmon/alerting/inspection"
	"github.com/kioskmon/kioskmon/ingest/inventory"
	"github.com/kioskmon/kioskmon/slo/calendar"
	"github.com/kioskmon/kioskmon/slo/compliance"
	"github.com/kioskmon/kioskmon/slo/ledger"
)

// ErrBadRequest marks an error in what was asked for (the month, the
// format), not in making the report.
var ErrBadRequest = errors.New("bad request")

// Month is one month's report.
type Month struct {
	// Month is YYYY-MM; From and To its bounds in the policy's timezone.
	Month    string
	From, To time.Time
	// Generated is when the report was made: the month's incidents are
	// followed up to it; availability and coverage end with the month.
	Generated time.Time
	// PolicyName and the compliance report's Policy (the version) say what
	// the figures were measured against.
	PolicyName string
	Compliance *compliance.Report
	// Chain is the verification of the ledger's hash chain the report was
	// read with.
	Chain ChainCheck
	// Kiosks in the inventory, and how many had at least one incident.
	Kiosks, KiosksWithIncidents int
	// Availability over opening hours.
	Availability Availability
	// Inspection coverage: kiosks inspected at least every Interval over
	// the whole month.
	Inspection Coverage
	// Satisfaction scores of the follow-up visits of the month's incidents.
	Satisfaction Satisfaction
	// Refills are consumables incidents (paper, toner, receipt paper) of
	// the month, by fault, and how many were resolved.
	Refills map[string]Count
	// Timelines are the evidence of the listed breaches, by incident.
	Timelines map[int64][]ledger.Event
	// Incidents of the month, by category.
	ByCategory map[string]int
}

// ChainCheck is the hash chain verification the report was read with:
// Events events from FromSeq to the head, each hash recomputed and each
// link followed (a broken chain fails the report instead).
type ChainCheck struct {
	FromSeq, Events int64
	Err             string
}

// Count is a number of incidents and how many of them were resolved.
type Count struct{ Incidents, Resolved int }

// Availability is the share of opening time kiosks were usable: a kiosk is
// unusable while an incident of the most severe grade is open on it (from
// detection to resolution), counted on its site's opening hours.
type Availability struct {
	// Kiosks counts the kiosks with opening time in the month so far; the
	// figures below mean nothing without them.
	Kiosks int
	// Fleet is the mean over those kiosks.
	Fleet float64
	// ByProvider and ByDistrict are means over their kiosks.
	ByProvider, ByDistrict map[string]float64
	// Worst kiosks, the least available first (at most WorstKiosks).
	Worst []KioskAvailability
	// Below counts kiosks under 99% and 95%.
	Below99, Below95 int
	// Severity is the grade that makes a kiosk unusable.
	Severity string
}

// KioskAvailability is one kiosk's.
type KioskAvailability struct {
	Kiosk, Site, District, Provider string
	Open, Down                      time.Duration
	Ratio                           float64
}

// Coverage is the remote inspection's.
type Coverage struct {
	Interval        time.Duration
	Kiosks, Covered int
	// ByProvider: kiosks and covered kiosks.
	ByProvider map[string][2]int
	// Inspections in the month, and how many found a failed item.
	Inspections, Failed int
	// Uncovered lists kiosks not covered (at most WorstKiosks), with
	// their longest gap.
	Uncovered []Gap
}

// Gap is a kiosk's longest time without an inspection in the month.
type Gap struct {
	Kiosk, Provider string
	Longest         time.Duration
	// Never: no inspection since an interval before the month, so Longest
	// is the time since then, a lower bound.
	Never bool
}

// Satisfaction is the follow-up visits' scores.
type Satisfaction struct {
	Scores [6]int // by score 1-5; [0] unused
	Count  int
	Mean   float64
}

// WorstKiosks bounds the kiosk lists.
const WorstKiosks = 20

// Sources are what a report is built from.
type Sources struct {
	Ledger *ledger.Ledger
	Engine *compliance.Engine
	// Inventory gives the fleet, its sites' hours and providers.
	Inventory *inventory.Inventory
	// Inspections, if not nil, is the remote inspection's record.
	Inspections *inspection.Ledger
	// InspectionInterval is the required interval (14 days).
	InspectionInterval time.Duration
}

// Build computes the report of month (YYYY-MM) as of now.
func Build(ctx context.Context, src Sources, month string, now time.Time) (*Month, error) {
	p := src.Engine.Policy()
	from, to, err := compliance.Month(month, p.Location())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if !from.Before(now) {
		return nil, fmt.Errorf("%w: month %s has not begun", ErrBadRequest, month)
	}
	// Incidents opened in the month are followed to now (one opened on the
	// 31st and repaired on the 2nd counts in its month, as repaired); the
	// availability and inspection coverage are of the month's time.
	asOf, monthEnd := now, now
	if monthEnd.After(to) {
		monthEnd = to
	}
	m := &Month{Month: month, From: from, To: to, Generated: now, PolicyName: p.Name(), Refills: map[string]Count{},
		Timelines: map[int64][]ledger.Event{}, ByCategory: map[string]int{}}
	if src.Inventory != nil {
		m.Kiosks = len(src.Inventory.Kiosks)
	}
	top := ""
	if sev := p.Severities(); len(sev) > 0 {
		top = sev[0]
	}
	extras := newExtras(top, to)
	agg := src.Engine.Aggregate(from, to, asOf)
	// One read both feeds the figures and verifies the hash chain from the
	// month's first event to the head: a report stands on events nobody
	// edited.
	// The read (SQLite or the network, and the hashes) runs on one core;
	// decoding the events' data and folding the figures on another. Events
	// go over in batches, their data copied into the batch's arena.
	type batch struct {
		events []ledger.Event
		data   [][2]int // each event's data in arena; {0, 0}: none
		arena  []byte
	}
	const batchSize = 4096
	batches := make(chan *batch, 4)
	free := make(chan *batch, 6)
	folded := make(chan error, 1)
	go func() {
		var err error
		dec := ledger.NewDataDecoder()
		for b := range batches {
			for i := range b.events {
				if err != nil {
					break
				}
				e := &b.events[i]
				if d := b.data[i]; d[1] > d[0] {
					if err = dec.Decode(b.arena[d[0]:d[1]], e); err != nil {
						break
					}
				}
				extras.add(*e)
				err = agg.Add(*e)
			}
			b.events, b.data, b.arena = b.events[:0], b.data[:0], b.arena[:0]
			free <- b
		}
		folded <- err
	}()
	newBatch := func() *batch {
		select {
		case b := <-free:
			return b
		default:
			return &batch{events: make([]ledger.Event, 0, batchSize), data: make([][2]int, 0, batchSize)}
		}
	}
	cur := newBatch()
	chain, err := src.Ledger.ScanCheckedRaw(ctx, from, asOf.Add(time.Millisecond), func(e ledger.Event, data []byte) error {
		start := len(cur.arena)
		cur.arena = append(cur.arena, data...)
		cur.events = append(cur.events, e)
		cur.data = append(cur.data, [2]int{start, len(cur.arena)})
		if len(cur.events) == batchSize {
			batches <- cur
			cur = newBatch()
		}
		return nil
	})
	batches <- cur
	close(batches)
	if foldErr := <-folded; err == nil {
		err = foldErr
	}
	if err != nil {
		if errors.Is(err, ledger.ErrTampered) {
			return nil, fmt.Errorf("the incident ledger fails verification, so no report can stand on it: %w", err)
		}
		return nil, fmt.Errorf("read the ledger: %w", err)
	}
	m.Chain = ChainCheck{Events: chain.Events, FromSeq: chain.FromSeq}
	if m.Compliance, err = agg.Finish(); err != nil {
		return nil, err
	}
	m.KiosksWithIncidents = m.Compliance.Kiosks
	extras.finish(m, from, to)
	if err := extras.addCarried(ctx, src.Ledger, from, asOf); err != nil {
		return nil, err
	}
	if err := m.availability(src, extras, from, monthEnd); err != nil {
		return nil, err
	}
	if src.Inspections != nil {
		if err := m.coverage(src, from, monthEnd); err != nil {
			return nil, err
		}
	}
	for _, b := range m.Compliance.Breaches {
		if len(m.Timelines) >= WorstKiosks*5 {
			break
		}
		if _, ok := m.Timelines[b.Incident]; ok {
			continue
		}
		_, events, err := src.Ledger.Incident(ctx, b.Incident)
		if err != nil {
			return nil, err
		}
		m.Timelines[b.Incident] = events
	}
	return m, nil
}

// extras folds what the compliance report does not hold from the same
// event stream: categories, satisfaction, refills, and the down intervals
// of the most severe incidents. Memory holds the incidents still open in
// the stream and a bit per incident of the month, not the month's
// incidents: a million of them fit in a few megabytes.
type extras struct {
	top     string
	to      time.Time // the month's end: incidents opened from then on are another month's
	open    map[int64]*incidentExtras
	month   bitset // incidents opened in the month, by id
	cat     map[string]int
	refills map[string]Count
	sat     Satisfaction
	down    map[string][]calendar.Interval // by kiosk
	// carried are the incidents resolved in the stream that were not opened
	// in the month: those opened before it count in its availability.
	carried []int64
}

type incidentExtras struct {
	kiosk, fault string
	consumables  bool
	detected     time.Time
	topReached   bool
}

// bitset is a set of incident ids, which the ledger hands out densely.
type bitset []uint64

func (b *bitset) add(id int64) {
	w := int(id / 64)
	for len(*b) <= w {
		*b = append(*b, 0)
	}
	(*b)[w] |= 1 << (id % 64)
}

func (b bitset) has(id int64) bool {
	w := int(id / 64)
	return id >= 0 && w < len(b) && b[w]&(1<<(id%64)) != 0
}

func newExtras(top string, to time.Time) *extras {
	return &extras{top: top, to: to, open: map[int64]*incidentExtras{}, cat: map[string]int{},
		refills: map[string]Count{}, down: map[string][]calendar.Interval{}}
}

// add sees every event of [from, asOf]; only incidents whose opened event
// it saw before the month's end (opened in the month) count.
func (x *extras) add(e ledger.Event) {
	if e.Kind == ledger.KindOpened {
		if !e.At.Before(x.to) {
			return
		}
		d := &e.Data
		x.month.add(e.Incident)
		x.cat[d.Category]++
		consumables := d.Category == "consumables"
		if consumables {
			c := x.refills[d.Fault]
			c.Incidents++
			x.refills[d.Fault] = c
		}
		x.open[e.Incident] = &incidentExtras{kiosk: d.Kiosk, fault: d.Fault, consumables: consumables, detected: e.At,
			topReached: d.Severity == x.top}
		return
	}
	if e.Kind == ledger.KindClosed {
		if s := e.Data.Satisfaction; x.month.has(e.Incident) && s >= 1 && s <= 5 {
			x.sat.Scores[s]++
		}
		return
	}
	inc := x.open[e.Incident]
	if inc == nil {
		if e.Kind == ledger.KindResolved && !x.month.has(e.Incident) {
			x.carried = append(x.carried, e.Incident) // opened before the month, or after it
		}
		return
	}
	switch e.Kind {
	case ledger.KindSeverity:
		if e.Data.Severity == x.top {
			inc.topReached = true
		}
	case ledger.KindResolved:
		if inc.consumables {
			c := x.refills[inc.fault]
			c.Resolved++
			x.refills[inc.fault] = c
		}
		if inc.topReached {
			x.down[inc.kiosk] = append(x.down[inc.kiosk], calendar.Interval{From: inc.detected, To: e.At})
		}
		delete(x.open, e.Incident)
	}
}

func (x *extras) finish(m *Month, from, to time.Time) {
	sum := 0
	for s := 1; s <= 5; s++ {
		x.sat.Count += x.sat.Scores[s]
		sum += s * x.sat.Scores[s]
	}
	if x.sat.Count > 0 {
		x.sat.Mean = float64(sum) / float64(x.sat.Count)
	}
	m.Satisfaction = x.sat
	for _, inc := range x.open {
		if inc.topReached { // still open: down until the report's time
			x.down[inc.kiosk] = append(x.down[inc.kiosk], calendar.Interval{From: inc.detected})
		}
	}
	m.ByCategory = x.cat
	m.Refills = x.refills
	x.open = nil
}

// addCarried adds the down intervals of the incidents opened before the
// month that were still open at its start: those resolved since (seen in
// the stream) and those still open (the ledger's open incidents). They are
// few, read one by one: the month's figures do not count them, its
// availability does.
func (x *extras) addCarried(ctx context.Context, l *ledger.Ledger, from, asOf time.Time) error {
	open, err := l.Incidents(ctx, ledger.Filter{Open: true, To: from, Limit: math.MaxInt32})
	if err != nil {
		return fmt.Errorf("incidents open at the month's start: %w", err)
	}
	ids := x.carried
	for _, inc := range open {
		ids = append(ids, inc.ID)
	}
	for _, id := range ids {
		inc, events, err := l.Incident(ctx, id)
		if err != nil {
			return fmt.Errorf("incident %d open at the month's start: %w", id, err)
		}
		if !inc.OpenedAt.Before(from) {
			continue // opened after the month
		}
		down, top := calendar.Interval{From: inc.OpenedAt}, false
		for _, e := range events {
			if e.At.After(asOf) {
				break
			}
			switch e.Kind {
			case ledger.KindOpened, ledger.KindSeverity:
				top = top || e.Data.Severity == x.top
			case ledger.KindResolved:
				down.To = e.At
			}
		}
		if top {
			x.down[inc.Kiosk] = append(x.down[inc.Kiosk], down)
		}
	}
	return nil
}

func (m *Month) availability(src Sources, x *extras, from, asOf time.Time) error {
	p := src.Engine.Policy()
	av := Availability{ByProvider: map[string]float64{}, ByDistrict: map[string]float64{}, Severity: x.top}
	if src.Inventory == nil {
		m.Availability = av
		return nil
	}
	sites := map[string]inventory.Site{}
	for _, s := range src.Inventory.Sites {
		sites[s.ID] = s
	}
	// A site's kiosks share its clock and so its opening time in the month.
	type siteClock struct {
		c    calendar.Clock
		open time.Duration
	}
	clocks := map[string]siteClock{}
	type acc struct {
		sum float64
		n   int
	}
	byProvider, byDistrict := map[string]*acc{}, map[string]*acc{}
	var fleet acc
	var all []KioskAvailability
	for _, k := range src.Inventory.Kiosks {
		sc, ok := clocks[k.Site]
		if !ok {
			s, known := sites[k.Site]
			if !known {
				s = inventory.Site{ID: k.Site}
			}
			hours, err := p.SiteClock(s)
			if err != nil {
				return fmt.Errorf("availability: site %s: %w", k.Site, err)
			}
			sc = siteClock{c: hours, open: hours.Elapsed(from, asOf)}
			clocks[k.Site] = sc
		}
		open := sc.open
		if open <= 0 {
			continue
		}
		down := downTime(sc.c, x.down[k.ID], from, asOf)
		ka := KioskAvailability{Kiosk: k.ID, Site: k.Site, District: k.District, Provider: k.Provider, Open: open, Down: down,
			Ratio: 1 - float64(down)/float64(open)}
		all = append(all, ka)
		fleet.sum, fleet.n = fleet.sum+ka.Ratio, fleet.n+1
		for _, g := range []struct {
			m   map[string]*acc
			key string
		}{{byProvider, k.Provider}, {byDistrict, k.District}} {
			a := g.m[g.key]
			if a == nil {
				a = &acc{}
				g.m[g.key] = a
			}
			a.sum, a.n = a.sum+ka.Ratio, a.n+1
		}
		if ka.Ratio < 0.99 {
			av.Below99++
		}
		if ka.Ratio < 0.95 {
			av.Below95++
		}
	}
	if av.Kiosks = fleet.n; fleet.n > 0 {
		av.Fleet = fleet.sum / float64(fleet.n)
	}
	for k, a := range byProvider {
		av.ByProvider[k] = a.sum / float64(a.n)
	}
	for k, a := range byDistrict {
		av.ByDistrict[k] = a.sum / float64(a.n)
	}
	slices.SortFunc(all, func(a, b KioskAvailability) int {
		return cmp.Or(cmp.Compare(a.Ratio, b.Ratio), cmp.Compare(a.Kiosk, b.Kiosk))
	})
	av.Worst = all[:min(len(all), WorstKiosks)]
	for len(av.Worst) > 0 && av.Worst[len(av.Worst)-1].Down == 0 {
		av.Worst = av.Worst[:len(av.Worst)-1]
	}
	m.Availability = av
	return nil
}

// downTime is the opening time within [from, to) covered by the union of
// intervals (an open-ended one runs to `to`).
func downTime(c calendar.Clock, intervals []calendar.Interval, from, to time.Time) time.Duration {
	if len(intervals) == 0 {
		return 0
	}
	iv := make([]calendar.Interval, 0, len(intervals))
	for _, i := range intervals {
		if i.To.IsZero() || i.To.After(to) {
			i.To = to
		}
		if i.From.Before(from) {
			i.From = from
		}
		if i.To.After(i.From) {
			iv = append(iv, i)
		}
	}
	slices.SortFunc(iv, func(a, b calendar.Interval) int { return a.From.Compare(b.From) })
	var total time.Duration
	var cur calendar.Interval
	for i, in := range iv {
		if i == 0 {
			cur = in
			continue
		}
		if !in.From.After(cur.To) {
			if in.To.After(cur.To) {
				cur.To = in.To
			}
			continue
		}
		total += c.Elapsed(cur.From, cur.To)
		cur = in
	}
	if len(iv) > 0 {
		total += c.Elapsed(cur.From, cur.To)
	}
	return total
}

func (m *Month) coverage(src Sources, from, asOf time.Time) error {
	interval := src.InspectionInterval
	if interval <= 0 {
		interval = 14 * 24 * time.Hour
	}
	cov := Coverage{Interval: interval, ByProvider: map[string][2]int{}}
	// An inspection up to one interval before the month covers its start.
	times := map[string][]time.Time{}
	_, err := src.Inspections.Scan(from.Add(-interval), asOf, func(r inspection.Record) bool {
		if r.Result == "unreachable" {
			return true // not inspected: the kiosk did not answer
		}
		times[r.Kiosk] = append(times[r.Kiosk], r.At)
		if !r.At.Before(from) {
			cov.Inspections++
			if r.Result == "fail" {
				cov.Failed++
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("inspection records: %w", err)
	}
	var gaps []Gap
	if src.Inventory != nil {
		for _, k := range src.Inventory.Kiosks {
			ts := times[k.ID]
			slices.SortFunc(ts, time.Time.Compare)
			// The longest stretch of the month not within an interval
			// after an inspection.
			longest, last := time.Duration(0), from.Add(-interval)
			for _, t := range ts {
				if d := t.Sub(last); d > longest && t.After(from) {
					longest = d
				}
				last = t
			}
			if d := asOf.Sub(last); d > longest {
				longest = d
			}
			cov.Kiosks++
			pc := cov.ByProvider[k.Provider]
			pc[0]++
			if longest <= interval {
				cov.Covered++
				pc[1]++
			} else {
				gaps = append(gaps, Gap{Kiosk: k.ID, Provider: k.Provider, Longest: longest, Never: len(ts) == 0})
			}
			cov.ByProvider[k.Provider] = pc
		}
	}
	slices.SortFunc(gaps, func(a, b Gap) int { return cmp.Or(cmp.Compare(b.Longest, a.Longest), cmp.Compare(a.Kiosk, b.Kiosk)) })
	cov.Uncovered = gaps[:min(len(gaps), WorstKiosks)]
	m.Inspection = cov
	return nil
}
