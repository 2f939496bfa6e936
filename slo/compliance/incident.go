// Package compliance computes SLA figures from the incident ledger's
// events when asked: per incident the response, arrival and repair
// durations on each target's clock with pauses taken off, the target, met
// or breached and by how much, and how much of the allowed time an open
// incident has used (for breach warnings); per period the counts,
// compliance, MTTA, MTTR, p90 of repair and the breaches, by provider,
// district, site and severity.
//
// Nothing is stored: a corrected calendar or policy corrects history, and
// every figure names the policy version that produced it.
//
// What is measured, from the events:
//
//   - Detection is the opened event's time (when the fault began).
//   - Response runs from detection to the first of acknowledged,
//     dispatched or arrived (DB12/T 1060 §3.3: remote diagnosis begins, or
//     an on-site arrival time is committed).
//   - Arrival runs from detection to arrived, and applies only to incidents
//     handled on site (dispatched or arrived); a fault fixed remotely has no
//     arrival.
//   - Repair runs from detection to resolved (the time the fault cleared,
//     when it resolved by itself).
//   - Paused to resumed is taken off every measure (awaiting parts, site
//     closed, an approved force majeure exemption); a pause still open
//     stops the clocks until it is resumed.
//   - A measure whose end never came because the incident resolved first is
//     breached if the resolution came after the deadline (nobody responded
//     in time), otherwise not applicable (the fault went away first).
//   - Severity: the targets are those of the highest severity the incident
//     reached, from detection. Severity grades the impact on citizens
//     (DB12/T 1060 table 2), and the kiosk was that broken from the start:
//     an upgrade shows it was worse than first graded, and a downgrade
//     (often after a partial fix) must not relax a deadline the provider
//     was already held to, or re-grading would become a way to avoid
//     breaches. This is also what ITSM tools do with "retroactive start".
//   - Non-working day: the incident was detected on a weekend day that is no
//     make-up day, or a holiday, in the policy's timezone; then the
//     policy's non-working-day response target applies, if it sets one.
package compliance

import (
	"fmt"
	"sync"
	"time"

	"github.com/kioskmon/kioskmon/ingest/inventory"
	"github.com/kioskmon/kioskmon/slo/calendar"
	"github.com/kioskmon/kioskmon/slo/ledger"
	"github.com/kioskmon/kioskmon/slo/policy"
)

// Status is a measure's outcome.
type Status string

// Outcomes.
const (
	Met           Status = "met"
	Breached      Status = "breached" // also an open incident past its deadline
	Running       Status = "running"  // open, within the allowed time so far
	NotApplicable Status = "n/a"      // no on-site visit; or the fault went away before it was owed
	NoTarget      Status = "no_target"
)

// WarningLevels are the fractions of the allowed time at which an unmet
// target raises a breach warning.
var WarningLevels = []float64{0.5, 0.75, 0.9}

// Measure is one target of one incident.
type Measure struct {
	Status Status
	Target policy.Resolved
	Start  time.Time
	// End is when the measure stopped (the acknowledgement, the arrival,
	// the resolution); zero while it runs or when it never came.
	End time.Time
	// Elapsed is the clock time from Start to End (or to the resolution,
	// or to now), pauses taken off.
	Elapsed time.Duration
	// Paused is the clock time the pauses took off.
	Paused time.Duration
	// Deadline is when the allowed time runs out; zero without a target or
	// while a pause stops the clock for good.
	Deadline time.Time
	// Over is how much Elapsed exceeds the target, when breached.
	Over time.Duration
	// Used is Elapsed over the allowed time (0 without a target).
	Used float64
}

// Crossed returns the highest of levels that a running or breached
// measure has used, or 0: the breach warning due.
func (m Measure) Crossed(levels []float64) float64 {
	if m.Status != Running && m.Status != Breached {
		return 0
	}
	best := 0.0
	for _, l := range levels {
		if m.Used >= l && l > best {
			best = l
		}
	}
	return best
}

// Result is one incident's figures as of a time.
type Result struct {
	Incident                               int64
	Kiosk, Site, District, Provider, Fault string
	// Severity is the highest reached, the one the targets are of;
	// OpenedSeverity the one it opened with.
	Severity, OpenedSeverity string
	Detected                 time.Time
	Resolved                 time.Time // zero while open
	Open                     bool
	NonWorkingDay            bool
	DistanceKm               float64
	// CommittedArrival is the last dispatch's promise; SpareProvided when a
	// spare unit was provided (DB12/T 1060 table 2).
	CommittedArrival time.Time
	SpareProvided    time.Time
	// Pauses, the last one open-ended (zero To) while paused.
	Pauses                    []calendar.Interval
	Response, Arrival, Repair Measure
	// Policy is the version of the policy the figures come from.
	Policy string
}

// Breached reports whether any target is breached.
func (r *Result) Breached() bool {
	return r.Response.Status == Breached || r.Arrival.Status == Breached || r.Repair.Status == Breached
}

// Measure returns the measure of kind (policy.Response, Arrival or
// Repair), or nil.
func (r *Result) Measure(kind string) *Measure {
	switch kind {
	case policy.Response:
		return &r.Response
	case policy.Arrival:
		return &r.Arrival
	case policy.Repair:
		return &r.Repair
	}
	return nil
}

// Decided reports whether the incident's compliance is known: a target is
// breached, or it resolved with a target met.
func (r *Result) Decided() bool {
	if r.Breached() {
		return true
	}
	return !r.Open && (r.Response.Status == Met || r.Arrival.Status == Met || r.Repair.Status == Met)
}

// Config configures an Engine.
type Config struct {
	// Policy is required.
	Policy *policy.Policy
	// Inventory gives the sites' opening hours and the kiosks' distance
	// from their provider. Nil, or a site or kiosk it does not list: open
	// 24x7, within far_km.
	Inventory *inventory.Inventory
}

// Engine computes figures under one policy and inventory. It is safe for
// concurrent use.
type Engine struct {
	p        *policy.Policy
	sites    map[string]inventory.Site
	distance map[string]float64

	mu     sync.Mutex
	clocks map[string]calendar.Clock // site clocks by site id
}

// New returns an Engine.
func New(cfg Config) (*Engine, error) {
	if cfg.Policy == nil {
		return nil, fmt.Errorf("compliance: a policy is required")
	}
	e := &Engine{p: cfg.Policy, sites: map[string]inventory.Site{}, distance: map[string]float64{}, clocks: map[string]calendar.Clock{}}
	if inv := cfg.Inventory; inv != nil {
		for _, s := range inv.Sites {
			e.sites[s.ID] = s
		}
		for _, k := range inv.Kiosks {
			e.distance[k.ID] = k.DistanceKm
		}
	}
	return e, nil
}

// Policy returns the engine's policy.
func (e *Engine) Policy() *policy.Policy { return e.p }

func (e *Engine) clock(name, site string) (calendar.Clock, error) {
	switch name {
	case policy.ClockBusiness:
		return e.p.Business(), nil
	case policy.ClockSite:
	default:
		return calendar.Always, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.clocks[site]; ok {
		return c, nil
	}
	s, ok := e.sites[site]
	if !ok {
		s = inventory.Site{ID: site} // unknown: open 24x7, as a site without hours
	}
	c, err := e.p.SiteClock(s)
	if err != nil {
		return nil, fmt.Errorf("site %q: %w", site, err)
	}
	e.clocks[site] = c
	return c, nil
}

// Incident computes one incident's figures from its events (oldest first,
// as Ledger.Incident returns them) as of now; events after now are not
// seen yet.
func (e *Engine) Incident(events []ledger.Event, now time.Time) (Result, error) {
	var t tracker
	for _, ev := range events {
		if ev.At.After(now) {
			break
		}
		t.add(e.p, ev)
	}
	if t.detected.IsZero() {
		return Result{}, fmt.Errorf("compliance: the events have no opened event")
	}
	return e.evaluate(&t, now, e.distance[t.kiosk])
}

// tracker folds one incident's events into what the measures need.
type tracker struct {
	id                                     int64
	kiosk, site, district, provider, fault string
	severity, opened                       string
	detected, ack, dispatched, arrived     time.Time
	resolved, spare, committed, pausedAt   time.Time
	pauses                                 []calendar.Interval
}

func (t *tracker) add(p *policy.Policy, ev ledger.Event) {
	first := func(at *time.Time) {
		if at.IsZero() {
			*at = ev.At
		}
	}
	switch ev.Kind {
	case ledger.KindOpened:
		d := ev.Data
		*t = tracker{id: ev.Incident, kiosk: d.Kiosk, site: d.Site, district: d.District, provider: d.Provider, fault: d.Fault,
			severity: d.Severity, opened: d.Severity, detected: ev.At, pauses: t.pauses[:0]}
	case ledger.KindAcknowledged:
		first(&t.ack)
	case ledger.KindDispatched:
		first(&t.dispatched)
		t.committed = ev.Data.CommittedArrival
	case ledger.KindArrived:
		first(&t.arrived)
	case ledger.KindSpare:
		first(&t.spare)
	case ledger.KindPaused:
		if t.pausedAt.IsZero() {
			t.pausedAt = ev.At
		}
	case ledger.KindResumed:
		if !t.pausedAt.IsZero() {
			t.pauses = append(t.pauses, calendar.Interval{From: t.pausedAt, To: ev.At})
			t.pausedAt = time.Time{}
		}
	case ledger.KindSeverity:
		if p.Higher(ev.Data.Severity, t.severity) {
			t.severity = ev.Data.Severity
		}
	case ledger.KindResolved:
		first(&t.resolved)
		if !t.pausedAt.IsZero() {
			t.pauses = append(t.pauses, calendar.Interval{From: t.pausedAt, To: ev.At})
			t.pausedAt = time.Time{}
		}
	}
}

func (e *Engine) evaluate(t *tracker, now time.Time, distanceKm float64) (Result, error) {
	r := Result{Incident: t.id, Kiosk: t.kiosk, Site: t.site, District: t.district, Provider: t.provider, Fault: t.fault,
		Severity: t.severity, OpenedSeverity: t.opened, Detected: t.detected, Resolved: t.resolved, Open: t.resolved.IsZero(),
		NonWorkingDay: e.p.NonWorkingDay(t.detected), DistanceKm: distanceKm, CommittedArrival: t.committed,
		SpareProvided: t.spare, Policy: e.p.Version()}
	r.Pauses = t.pauses
	if !t.pausedAt.IsZero() {
		r.Pauses = append(append([]calendar.Interval(nil), t.pauses...), calendar.Interval{From: t.pausedAt})
	}
	c := policy.Case{Provider: t.provider, Severity: t.severity, DistanceKm: r.DistanceKm, NonWorkingDay: r.NonWorkingDay}
	var err error
	measure := func(kind string, end time.Time, applies bool) Measure {
		target := e.p.Target(kind, c)
		if err != nil {
			return Measure{}
		}
		var raw calendar.Clock
		if raw, err = e.clock(target.Clock, t.site); err != nil {
			return Measure{}
		}
		return measureOf(target, calendar.Excluding(raw, r.Pauses), raw, t.detected, end, t.resolved, now, applies)
	}
	response := earliest(t.ack, t.dispatched, t.arrived)
	r.Response = measure(policy.Response, response, true)
	r.Arrival = measure(policy.Arrival, t.arrived, !t.dispatched.IsZero() || !t.arrived.IsZero())
	r.Repair = measure(policy.Repair, t.resolved, true)
	return r, err
}

func earliest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if !t.IsZero() && (out.IsZero() || t.Before(out)) {
			out = t
		}
	}
	return out
}

// measureOf measures from start to end (zero: not yet, or never) on clock
// (raw without the pauses), for an incident resolved at resolved (zero:
// open) as of now.
func measureOf(target policy.Resolved, clock, raw calendar.Clock, start, end, resolved, now time.Time, applies bool) Measure {
	m := Measure{Target: target, Start: start}
	if !applies {
		m.Status = NotApplicable
		return m
	}
	stop := end
	switch {
	case !end.IsZero():
		m.End = end
	case !resolved.IsZero():
		stop = resolved
	default:
		stop = now
	}
	m.Elapsed = clock.Elapsed(start, stop)
	if clock != raw {
		m.Paused = raw.Elapsed(start, stop) - m.Elapsed
	}
	if !target.Set() {
		m.Status = NoTarget
		return m
	}
	m.Deadline = clock.Deadline(start, target.Within)
	m.Used = float64(m.Elapsed) / float64(target.Within)
	over := m.Elapsed > target.Within
	switch {
	case over:
		m.Status, m.Over = Breached, m.Elapsed-target.Within
	case !end.IsZero():
		m.Status = Met
	case !resolved.IsZero():
		m.Status = NotApplicable // resolved before it was owed
	default:
		m.Status = Running
	}
	return m
}
