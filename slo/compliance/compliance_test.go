package compliance

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kioskmon/kioskmon/ingest/inventory"
	"github.com/kioskmon/kioskmon/slo/calendar"
	"github.com/kioskmon/kioskmon/slo/ledger"
	"github.com/kioskmon/kioskmon/slo/policy"
)

func sh(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, calendar.Shanghai)
	if err != nil {
		panic(err)
	}
	return t
}

var testInventory = &inventory.Inventory{
	Version: "v1",
	Sites: []inventory.Site{
		{ID: "hall", District: "heping", OpeningHours: []inventory.OpeningHours{{Days: "mon-fri", Open: "08:30", Close: "17:30"}}},
		{ID: "night", District: "hexi", OpeningHours: []inventory.OpeningHours{{Days: "mon-sun", Open: "09:00", Close: "21:00"}}},
	},
	Kiosks: []inventory.Kiosk{
		{ID: "k1", Site: "hall", District: "heping", Provider: "other", DistanceKm: 20},
		{ID: "k-far", Site: "hall", District: "heping", Provider: "other", DistanceKm: 150},
		{ID: "k-night", Site: "night", District: "hexi", Provider: "siteco", DistanceKm: 5},
	},
}

func engine(t testing.TB) *Engine {
	t.Helper()
	p, err := policy.Load("testdata/sla.yml")
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Policy: p, Inventory: testInventory})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// incident builds an incident's events.
type incident struct {
	id     int64
	events []ledger.Event
}

func opened(id int64, at time.Time, kiosk, provider, severity string) *incident {
	site := "hall"
	if kiosk == "k-night" {
		site = "night"
	}
	return &incident{id: id, events: []ledger.Event{{Incident: id, Kind: ledger.KindOpened, At: at,
		Data: ledger.EventData{Kiosk: kiosk, Site: site, District: "heping", Provider: provider, Fault: "hw.paper_jam", Severity: severity}}}}
}

func (in *incident) then(kind string, at time.Time, d ...ledger.EventData) *incident {
	e := ledger.Event{Incident: in.id, Kind: kind, At: at}
	if len(d) > 0 {
		e.Data = d[0]
	}
	in.events = append(in.events, e)
	return in
}

func (in *incident) result(t *testing.T, e *Engine, now time.Time) Result {
	t.Helper()
	r, err := e.Incident(in.events, now)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var later = sh("2026-12-31 00:00")

// check compares a measure with hand-computed expectations.
func check(t *testing.T, what string, m Measure, status Status, elapsed, target, over time.Duration) {
	t.Helper()
	if m.Status != status || m.Elapsed != elapsed || m.Target.Within != target || m.Over != over {
		t.Errorf("%s: %s elapsed %s target %s over %s; want %s elapsed %s target %s over %s",
			what, m.Status, m.Elapsed, m.Target.Within, m.Over, status, elapsed, target, over)
	}
}

func TestHolidayAndMakeUpDayOnTheBusinessClock(t *testing.T) {
	e := engine(t)
	// acme repairs a minor fault within 6 h of business time (08:30-12:00,
	// 13:30-17:30). Friday 2026-02-13 16:30 to Tuesday 02-24 10:00:
	// Friday 1h, Saturday 02-14 (make-up day) 7.5h, 02-15..23 Spring
	// Festival 0, Tuesday 1.5h = 10h: breached by 4h.
	r := opened(1, sh("2026-02-13 16:30"), "k1", "acme", "minor").
		then(ledger.KindAcknowledged, sh("2026-02-13 16:40")).
		then(ledger.KindResolved, sh("2026-02-24 10:00")).result(t, e, later)
	check(t, "repair", r.Repair, Breached, 10*time.Hour, 6*time.Hour, 4*time.Hour)
	if r.Repair.Target.Clock != policy.ClockBusiness || r.Repair.Target.Source != "contract acme (ACME 2026-017)" {
		t.Errorf("repair target %+v", r.Repair.Target)
	}
	// The deadline: Friday 1h, Saturday 08:30-12:00 3.5h, then 1.5h from 13:30.
	if !r.Repair.Deadline.Equal(sh("2026-02-14 15:00")) {
		t.Errorf("deadline %s, want the make-up Saturday 15:00", r.Repair.Deadline.In(calendar.Shanghai))
	}
	check(t, "response", r.Response, Met, 10*time.Minute, 15*time.Minute, 0)
	if r.Arrival.Status != NotApplicable {
		t.Errorf("arrival %s: fixed without a visit, want n/a", r.Arrival.Status)
	}
	if r.NonWorkingDay || r.Open || r.Policy != e.Policy().Version() {
		t.Errorf("result %+v", r)
	}
}

func TestPauseExcluded(t *testing.T) {
	e := engine(t)
	// Urgent: 2 h, 7x24. 10:00 to 13:00 with a pause 10:30-12:30: 1h.
	in := opened(1, sh("2026-03-09 10:00"), "k1", "other", "urgent").
		then(ledger.KindAcknowledged, sh("2026-03-09 10:10")).
		then(ledger.KindPaused, sh("2026-03-09 10:30"), ledger.EventData{Reason: ledger.PauseAwaitingParts})
	// While paused (at 11:00): 30m used, no deadline until it resumes.
	r := in.result(t, e, sh("2026-03-09 11:00"))
	check(t, "repair while paused", r.Repair, Running, 30*time.Minute, 2*time.Hour, 0)
	if !r.Repair.Deadline.IsZero() || r.Repair.Used != 0.25 || r.Repair.Paused != 30*time.Minute {
		t.Errorf("while paused: deadline %s used %g paused %s; want none, 0.25, 30m", r.Repair.Deadline, r.Repair.Used, r.Repair.Paused)
	}
	in.then(ledger.KindResumed, sh("2026-03-09 12:30")).then(ledger.KindResolved, sh("2026-03-09 13:00"))
	r = in.result(t, e, later)
	check(t, "repair", r.Repair, Met, time.Hour, 2*time.Hour, 0)
	if r.Measure(policy.Repair) != &r.Repair || r.Measure(policy.Response) != &r.Response || r.Measure(policy.Arrival) != &r.Arrival || r.Measure("x") != nil {
		t.Error("Measure does not find the measures")
	}
	if r.Repair.Paused != 2*time.Hour || !r.Repair.Deadline.Equal(sh("2026-03-09 14:00")) || r.Repair.Used != 0.5 {
		t.Errorf("repair paused %s deadline %s used %g; want 2h, 14:00, 0.5", r.Repair.Paused, r.Repair.Deadline, r.Repair.Used)
	}
	check(t, "response", r.Response, Met, 10*time.Minute, 30*time.Minute, 0)
	if len(r.Pauses) != 1 || r.Response.Paused != 0 {
		t.Errorf("pauses %v, response paused %s", r.Pauses, r.Response.Paused)
	}
	// Without the pause it would be breached.
	r = opened(2, sh("2026-03-09 10:00"), "k1", "other", "urgent").then(ledger.KindResolved, sh("2026-03-09 13:00")).result(t, e, later)
	check(t, "repair without pause", r.Repair, Breached, 3*time.Hour, 2*time.Hour, time.Hour)
}

func TestSiteHoursClockClosedOvernight(t *testing.T) {
	e := engine(t)
	// siteco repairs within 4 h of the site's hours (09:00-21:00 every day):
	// Monday 20:00 to Tuesday 11:30 is 1h + 2.5h.
	r := opened(1, sh("2026-03-09 20:00"), "k-night", "siteco", "minor").
		then(ledger.KindAcknowledged, sh("2026-03-09 20:05")).
		then(ledger.KindResolved, sh("2026-03-10 11:30")).result(t, e, later)
	check(t, "repair", r.Repair, Met, 210*time.Minute, 4*time.Hour, 0)
	if !r.Repair.Deadline.Equal(sh("2026-03-10 12:00")) || r.Repair.Target.Clock != policy.ClockSite {
		t.Errorf("deadline %s clock %s; want Tuesday 12:00 on site_hours", r.Repair.Deadline.In(calendar.Shanghai), r.Repair.Target.Clock)
	}
	// The site is closed on Labour Day (05-01 to 05-05): Thursday 04-30
	// 20:00 to Wednesday 05-06 10:00 is 1h + 1h.
	r = opened(2, sh("2026-04-30 20:00"), "k-night", "siteco", "minor").
		then(ledger.KindResolved, sh("2026-05-06 10:00")).result(t, e, later)
	check(t, "repair over the holiday", r.Repair, Met, 2*time.Hour, 4*time.Hour, 0)
}

func TestTimezoneOfNonWorkingDay(t *testing.T) {
	e := engine(t)
	// 2026-03-06T16:30Z is Saturday 00:30 in Shanghai: a non-working day,
	// 3 h to respond. 15:30Z is Friday 23:30: 30 minutes.
	sat := time.Date(2026, 3, 6, 16, 30, 0, 0, time.UTC)
	r := opened(1, sat, "k1", "other", "minor").then(ledger.KindAcknowledged, sat.Add(2*time.Hour)).result(t, e, later)
	if !r.NonWorkingDay {
		t.Error("Saturday 00:30 in Shanghai is a non-working day")
	}
	check(t, "Saturday response", r.Response, Met, 2*time.Hour, 3*time.Hour, 0)
	fri := time.Date(2026, 3, 6, 15, 30, 0, 0, time.UTC)
	r = opened(2, fri, "k1", "other", "minor").then(ledger.KindAcknowledged, fri.Add(2*time.Hour)).result(t, e, later)
	if r.NonWorkingDay {
		t.Error("Friday 23:30 in Shanghai is a working day")
	}
	check(t, "Friday response", r.Response, Breached, 2*time.Hour, 30*time.Minute, 90*time.Minute)
}

func TestNonWorkingDayResponse(t *testing.T) {
	e := engine(t)
	f := func(detected string, wantNonWorking bool, status Status, target, over time.Duration) {
		t.Helper()
		at := sh(detected)
		r := opened(1, at, "k1", "other", "minor").then(ledger.KindAcknowledged, at.Add(90*time.Minute)).result(t, e, later)
		if r.NonWorkingDay != wantNonWorking {
			t.Errorf("%s: non-working day %v", detected, r.NonWorkingDay)
		}
		check(t, detected, r.Response, status, 90*time.Minute, target, over)
	}
	f("2026-03-07 10:00", true, Met, 3*time.Hour, 0)                       // Saturday
	f("2026-10-01 10:00", true, Met, 3*time.Hour, 0)                       // National Day, a Thursday
	f("2026-02-14 10:00", false, Breached, 30*time.Minute, time.Hour)      // make-up Saturday: a working day
	f("2026-03-09 10:00", false, Breached, 30*time.Minute, time.Hour)      // Monday
	f("2026-02-23 10:00", true, Met, 3*time.Hour, 0)                       // Spring Festival, a Monday
	f("2026-01-04 10:00", false, Breached, 30*time.Minute, time.Hour)      // make-up Sunday
	f("2026-01-03 23:59", true, Met, 3*time.Hour, 0)                       // 元旦, Saturday
	f("2026-01-05 00:00", false, Breached, 30*time.Minute, 60*time.Minute) // Monday midnight
}

func TestProviderOverride(t *testing.T) {
	e := engine(t)
	// acme must respond within 15 minutes, the others within 30.
	for _, c := range []struct {
		provider string
		status   Status
		over     time.Duration
		target   time.Duration
		source   string
	}{
		{"acme", Breached, 5 * time.Minute, 15 * time.Minute, "contract acme (ACME 2026-017)"},
		{"other", Met, 0, 30 * time.Minute, "DB12/T 1060—2021 table 1"},
	} {
		r := opened(1, sh("2026-03-09 10:00"), "k1", c.provider, "urgent").
			then(ledger.KindAcknowledged, sh("2026-03-09 10:20")).result(t, e, later)
		check(t, c.provider+" response", r.Response, c.status, 20*time.Minute, c.target, c.over)
		if r.Response.Target.Source != c.source {
			t.Errorf("%s: source %q, want %q", c.provider, r.Response.Target.Source, c.source)
		}
	}
	// acme repairs an urgent fault in 1 h of business time: Monday 16:30 to
	// Tuesday 09:40 is 1h + 1h10m. Others: 2 h of wall time, 17h10m.
	repair := func(provider string) Measure {
		return opened(1, sh("2026-03-09 16:30"), "k1", provider, "urgent").
			then(ledger.KindAcknowledged, sh("2026-03-09 16:35")).
			then(ledger.KindResolved, sh("2026-03-10 09:40")).result(t, e, later).Repair
	}
	check(t, "acme repair", repair("acme"), Breached, 130*time.Minute, time.Hour, 70*time.Minute)
	check(t, "other repair", repair("other"), Breached, 17*time.Hour+10*time.Minute, 2*time.Hour, 15*time.Hour+10*time.Minute)
}

func TestSeverityChangeHighestReachedApplies(t *testing.T) {
	e := engine(t)
	// Minor (8 h) raised to urgent (2 h) at 11:00, back to minor at 12:00,
	// resolved at 13:00: 3 h against urgent's 2 h.
	r := opened(1, sh("2026-03-09 10:00"), "k1", "other", "minor").
		then(ledger.KindSeverity, sh("2026-03-09 11:00"), ledger.EventData{Severity: "urgent"}).
		then(ledger.KindSeverity, sh("2026-03-09 12:00"), ledger.EventData{Severity: "minor"}).
		then(ledger.KindResolved, sh("2026-03-09 13:00")).result(t, e, later)
	check(t, "raised then lowered", r.Repair, Breached, 3*time.Hour, 2*time.Hour, time.Hour)
	if r.Severity != "urgent" || r.OpenedSeverity != "minor" {
		t.Errorf("severity %s (opened %s), want urgent (minor)", r.Severity, r.OpenedSeverity)
	}
	// Opened urgent and lowered to moderate: still held to urgent's 2 h.
	r = opened(2, sh("2026-03-09 10:00"), "k1", "other", "urgent").
		then(ledger.KindSeverity, sh("2026-03-09 10:30"), ledger.EventData{Severity: "moderate"}).
		then(ledger.KindResolved, sh("2026-03-09 13:00")).result(t, e, later)
	check(t, "lowered", r.Repair, Breached, 3*time.Hour, 2*time.Hour, time.Hour)
	// A severity the policy does not know does not displace a known one.
	r = opened(3, sh("2026-03-09 10:00"), "k1", "other", "moderate").
		then(ledger.KindSeverity, sh("2026-03-09 10:30"), ledger.EventData{Severity: "weird"}).
		then(ledger.KindResolved, sh("2026-03-09 13:00")).result(t, e, later)
	check(t, "unknown severity", r.Repair, Met, 3*time.Hour, 4*time.Hour, 0)
	// An incident opened with an unknown severity has no target.
	r = opened(4, sh("2026-03-09 10:00"), "k1", "other", "weird").then(ledger.KindResolved, sh("2026-03-09 13:00")).result(t, e, later)
	if r.Repair.Status != NoTarget || r.Repair.Elapsed != 3*time.Hour {
		t.Errorf("unknown severity: %+v", r.Repair)
	}
}

func TestArrival(t *testing.T) {
	e := engine(t)
	visit := func(kiosk string, arrive time.Duration) Measure {
		at := sh("2026-03-09 10:00")
		return opened(1, at, kiosk, "other", "moderate").
			then(ledger.KindDispatched, at.Add(10*time.Minute), ledger.EventData{CommittedArrival: at.Add(time.Hour)}).
			then(ledger.KindArrived, at.Add(arrive), ledger.EventData{Proof: ledger.ProofServiceMode}).
			then(ledger.KindResolved, at.Add(arrive+time.Hour)).result(t, e, later).Arrival
	}
	check(t, "near, late", visit("k1", 150*time.Minute), Breached, 150*time.Minute, 2*time.Hour, 30*time.Minute)
	check(t, "far (150 km), contract 6 h", visit("k-far", 5*time.Hour), Met, 5*time.Hour, 6*time.Hour, 0)
	// Dispatched, then fixed remotely before the engineer was due: n/a.
	at := sh("2026-03-09 10:00")
	r := opened(2, at, "k1", "other", "moderate").
		then(ledger.KindDispatched, at.Add(10*time.Minute), ledger.EventData{CommittedArrival: at.Add(time.Hour)}).
		then(ledger.KindResolved, at.Add(time.Hour)).result(t, e, later)
	if r.Arrival.Status != NotApplicable || !r.CommittedArrival.Equal(at.Add(time.Hour)) {
		t.Errorf("fixed before the visit: %s, committed %s", r.Arrival.Status, r.CommittedArrival)
	}
	// Response ends at the dispatch when nobody acknowledged.
	check(t, "response by dispatch", r.Response, Met, 10*time.Minute, 30*time.Minute, 0)
}

func TestOpenIncidentWarnings(t *testing.T) {
	e := engine(t)
	in := opened(1, sh("2026-03-09 10:00"), "k1", "other", "urgent")
	r := in.result(t, e, sh("2026-03-09 11:30"))
	if !r.Open {
		t.Fatal("open")
	}
	// Nobody responded in 30 minutes: breached, by 1 h so far.
	check(t, "response", r.Response, Breached, 90*time.Minute, 30*time.Minute, time.Hour)
	// Repair: 1h30m of 2h used, a 75% warning; due at 12:00.
	check(t, "repair", r.Repair, Running, 90*time.Minute, 2*time.Hour, 0)
	if r.Repair.Used != 0.75 || r.Repair.Crossed(WarningLevels) != 0.75 || !r.Repair.Deadline.Equal(sh("2026-03-09 12:00")) {
		t.Errorf("repair used %g crossed %g deadline %s", r.Repair.Used, r.Repair.Crossed(WarningLevels), r.Repair.Deadline)
	}
	if got := in.result(t, e, sh("2026-03-09 10:50")).Repair.Crossed(WarningLevels); got != 0 {
		t.Errorf("at 42%%: crossed %g, want none", got)
	}
	if got := in.result(t, e, sh("2026-03-09 11:50")).Repair.Crossed(WarningLevels); got != 0.9 {
		t.Errorf("at 92%%: crossed %g, want 0.9", got)
	}
	if r.Arrival.Status != NotApplicable {
		t.Errorf("arrival %s before any dispatch, want n/a", r.Arrival.Status)
	}
	// Events after now are not seen.
	in.then(ledger.KindResolved, sh("2026-03-09 12:30"))
	if r := in.result(t, e, sh("2026-03-09 11:30")); !r.Open {
		t.Error("the resolution at 12:30 is not seen at 11:30")
	}
	// Resolved by itself without a response: n/a before the deadline,
	// breached after.
	r = opened(2, sh("2026-03-09 10:00"), "k1", "other", "urgent").then(ledger.KindResolved, sh("2026-03-09 10:20")).result(t, e, later)
	if r.Response.Status != NotApplicable {
		t.Errorf("cleared in 20 minutes: response %s, want n/a", r.Response.Status)
	}
	r = opened(3, sh("2026-03-09 10:00"), "k1", "other", "urgent").then(ledger.KindResolved, sh("2026-03-09 11:00")).result(t, e, later)
	check(t, "cleared in 1 h unanswered", r.Response, Breached, time.Hour, 30*time.Minute, 30*time.Minute)
	if _, err := e.Incident(nil, later); err == nil {
		t.Error("no events: want an error")
	}
}

// month is a small month of incidents, interleaved as a ledger stores them.
func month() []*incident {
	return []*incident{
		// Before the month: its events inside the month are skipped.
		opened(1, sh("2026-02-28 23:00"), "k1", "other", "urgent").then(ledger.KindResolved, sh("2026-03-01 02:00")),
		// Response 10m met, repair 1h met.
		opened(2, sh("2026-03-02 10:00"), "k1", "other", "urgent").then(ledger.KindAcknowledged, sh("2026-03-02 10:10")).
			then(ledger.KindResolved, sh("2026-03-02 11:00")),
		// Response 40m, breached by 10m; repair 5h against moderate's 4h, breached by 1h.
		opened(3, sh("2026-03-03 10:00"), "k-far", "other", "moderate").then(ledger.KindAcknowledged, sh("2026-03-03 10:40")).
			then(ledger.KindResolved, sh("2026-03-03 15:00")),
		// acme: response 5m met, repair 2h business met (minor 6h).
		opened(4, sh("2026-03-04 09:00"), "k1", "acme", "minor").then(ledger.KindAcknowledged, sh("2026-03-04 09:05")).
			then(ledger.KindResolved, sh("2026-03-04 11:00")),
		// Still open at asOf (2026-03-31 12:00): acknowledged in 20m, repair breached (urgent).
		opened(5, sh("2026-03-30 10:00"), "k-night", "siteco", "urgent").then(ledger.KindAcknowledged, sh("2026-03-30 10:20")),
		// Opened after the month: not in the report.
		opened(6, sh("2026-04-01 10:00"), "k1", "other", "minor"),
	}
}

// stream interleaves the incidents' events by time, as the ledger's
// sequence does, and drops those after asOf.
func stream(incs []*incident) []ledger.Event {
	var all []ledger.Event
	for _, in := range incs {
		all = append(all, in.events...)
	}
	slices.SortStableFunc(all, func(a, b ledger.Event) int { return a.At.Compare(b.At) })
	return all
}

func TestMonthReport(t *testing.T) {
	e := engine(t)
	from, to, err := Month("2026-03", e.Policy().Location())
	if err != nil {
		t.Fatal(err)
	}
	if !from.Equal(sh("2026-03-01 00:00")) || !to.Equal(sh("2026-04-01 00:00")) {
		t.Fatalf("month %s to %s", from, to)
	}
	asOf := sh("2026-03-31 12:00")
	a := e.Aggregate(from, to, asOf)
	var seen []int64
	a.OnIncident = func(r *Result) error { seen = append(seen, r.Incident); return nil }
	for _, ev := range stream(month()) {
		if err := a.Add(ev); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := a.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen, []int64{2, 3, 4, 5}) {
		t.Errorf("incidents %v, want 2 3 4 5", seen)
	}
	tot := rep.Total
	if tot.Incidents != 4 || tot.Open != 1 || tot.Decided != 4 || tot.Compliant != 2 {
		t.Errorf("total %+v", tot)
	}
	if pct, ok := tot.Compliance(); !ok || pct != 50 {
		t.Errorf("compliance %g", pct)
	}
	// Responses 10m, 40m, 5m, 20m: mean 18m45s; repairs 1h, 5h, 2h: mean 2h40m, p90 5h.
	if tot.MTTA() != 18*time.Minute+45*time.Second || tot.MTTR() != 160*time.Minute || tot.P90Repair() != 5*time.Hour {
		t.Errorf("MTTA %s MTTR %s p90 %s", tot.MTTA(), tot.MTTR(), tot.P90Repair())
	}
	if pct, ok := tot.Response.Compliance(); !ok || pct != 75 {
		t.Errorf("response compliance %g", pct)
	}
	if tot.Repair.Met != 2 || tot.Repair.Breached != 2 || tot.Repair.Measured != 3 {
		t.Errorf("repair %+v", tot.Repair)
	}
	// k1's incidents have two providers (#2 other, #4 acme): each counts
	// under its own.
	other := rep.By[ByProvider]["other"]
	if other == nil || other.Incidents != 2 || other.Compliant != 1 {
		t.Errorf("provider other: %+v", other)
	}
	if g := rep.By[ByProvider]["acme"]; g == nil || g.Incidents != 1 || rep.Kiosks != 3 {
		t.Errorf("provider acme: %+v; %d kiosks with incidents, want 3", g, rep.Kiosks)
	}
	if g := rep.By[BySeverity]["urgent"]; g == nil || g.Incidents != 2 {
		t.Errorf("urgent: %+v", g)
	}
	if g := rep.By[BySite]["night"]; g == nil || g.Open != 1 {
		t.Errorf("site night: %+v", g)
	}
	if g := rep.By[ByDistrict]["heping"]; g == nil || g.Incidents != 4 {
		t.Errorf("district heping: %+v", g)
	}
	// Breaches: #5 repair (siteco 4h on the site's hours, open since
	// 2026-03-30 10:00: 11h + 3h = 14h used, 10h over), #3 repair (1h
	// over), #3 response (10m over).
	if rep.BreachCount != 3 || len(rep.Breaches) != 3 {
		t.Fatalf("breaches %d: %+v", rep.BreachCount, rep.Breaches)
	}
	want := []struct {
		id   int64
		kind string
		over time.Duration
	}{{5, policy.Repair, 10 * time.Hour}, {3, policy.Repair, time.Hour}, {3, policy.Response, 10 * time.Minute}}
	for i, w := range want {
		b := rep.Breaches[i]
		if b.Incident != w.id || b.Kind != w.kind || b.Measure.Over != w.over {
			t.Errorf("breach %d: #%d %s over %s, want #%d %s over %s", i, b.Incident, b.Kind, b.Measure.Over, w.id, w.kind, w.over)
		}
	}
	if !rep.Breaches[0].Open || rep.Policy != e.Policy().Version() || len(rep.MissingHolidays) != 0 {
		t.Errorf("report %+v", rep)
	}

	// At most one breach kept: the worst.
	a = e.Aggregate(from, to, asOf)
	a.MaxBreaches = 1
	for _, ev := range stream(month()) {
		if err := a.Add(ev); err != nil {
			t.Fatal(err)
		}
	}
	rep, _ = a.Finish()
	if rep.BreachCount != 3 || len(rep.Breaches) != 1 || rep.Breaches[0].Incident != 5 {
		t.Errorf("capped breaches %d %+v", rep.BreachCount, rep.Breaches)
	}
	if err := a.Add(ledger.Event{}); err == nil {
		t.Error("Add after Finish: want an error")
	}
}

// TestReportFromLedger streams a real SQLite ledger.
func TestReportFromLedger(t *testing.T) {
	ctx := context.Background()
	l, err := ledger.Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e := engine(t)
	for _, in := range month() {
		o := in.events[0]
		inc, _, err := l.OpenIncident(ctx, ledger.OpenRequest{Kiosk: o.Data.Kiosk, Site: o.Data.Site, District: o.Data.District,
			Provider: o.Data.Provider, Fault: o.Data.Fault, Severity: o.Data.Severity, Source: "person", Channel: "phone", Actor: "noc", At: o.At})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range in.events[1:] {
			ev.Actor = "engineer"
			if _, err := l.Record(ctx, inc.ID, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	from, to, _ := Month("2026-03", e.Policy().Location())
	rep, err := e.Report(ctx, l, from, to, sh("2026-03-31 12:00"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total.Incidents != 4 || rep.BreachCount != 3 || rep.Total.MTTR() != 160*time.Minute {
		t.Errorf("from the ledger: %+v", rep.Total)
	}
	// One incident read back agrees with the stream.
	_, events, err := l.Incident(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.Incident(events, later)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "incident 3 repair", r.Repair, Breached, 5*time.Hour, 4*time.Hour, time.Hour)
}

func TestQuantile(t *testing.T) {
	s := TargetStats{hist: &histogram{}}
	if s.Quantile(0.9) != 0 || s.Mean() != 0 {
		t.Error("empty")
	}
	if _, ok := s.Compliance(); ok {
		t.Error("empty compliance")
	}
	add := func(d time.Duration) { s.add(&Measure{Status: Met, End: later, Elapsed: d}) }
	add(37 * time.Hour) // one value: exact
	if got := s.Quantile(0.9); got != 37*time.Hour {
		t.Errorf("one value: %s", got)
	}
	// Against the exact nearest rank on random durations.
	s = TargetStats{hist: &histogram{}}
	r := rand.New(rand.NewPCG(3, 4))
	var all []time.Duration
	for range 20000 {
		d := time.Duration(r.ExpFloat64()*float64(3*time.Hour)) / time.Second * time.Second
		all = append(all, d)
		add(d)
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99, 1} {
		exact := all[int(math.Ceil(q*float64(len(all))))-1]
		got := s.Quantile(q)
		if diff := math.Abs(float64(got-exact)) / float64(exact); diff > 0.008 {
			t.Errorf("q%g: %s, exact %s (%.2f%% off)", q, got, exact, 100*diff)
		}
	}
	// Below 256 s: exact.
	s = TargetStats{hist: &histogram{}}
	for _, d := range []time.Duration{10, 20, 30, 40, 50, 60, 70, 80, 90, 100} {
		add(d * time.Second)
	}
	if got := s.Quantile(0.9); got != 90*time.Second {
		t.Errorf("small: %s, want 1m30s", got)
	}
}

func TestMissingHolidays(t *testing.T) {
	e := engine(t)
	f := func(from, to string, want []int) {
		t.Helper()
		rep, err := e.Aggregate(sh(from), sh(to), sh(to)).Finish()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rep.MissingHolidays, want) {
			t.Errorf("%s to %s: missing %v, want %v", from, to, rep.MissingHolidays, want)
		}
	}
	f("2026-12-01 00:00", "2027-01-01 00:00", nil)
	f("2026-12-01 00:00", "2027-02-01 00:00", []int{2027})
	f("2024-12-01 00:00", "2025-01-01 00:00", []int{2024})
}

func TestMonthErrors(t *testing.T) {
	if _, _, err := Month("2026-13", calendar.Shanghai); err == nil {
		t.Error("month 13")
	}
	if _, err := New(Config{}); err == nil {
		t.Error("no policy")
	}
}

// TestCorrectedCalendarCorrectsHistory: the same events under a corrected
// holiday file give other figures and another policy version.
func TestCorrectedCalendarCorrectsHistory(t *testing.T) {
	events := opened(1, sh("2026-02-13 16:30"), "k1", "acme", "minor").
		then(ledger.KindResolved, sh("2026-02-24 10:00")).events
	before := engine(t)
	dir := t.TempDir()
	policyFile, err := os.ReadFile("testdata/sla.yml")
	if err != nil {
		t.Fatal(err)
	}
	// An operator's 2026 file that (wrongly) has no Spring Festival.
	if err := os.WriteFile(filepath.Join(dir, "cn-2026.yml"),
		[]byte("version: v1\nyear: 2026\nholidays:\n  - {name: 元旦, from: 2026-01-01, to: 2026-01-03}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(append(policyFile, []byte("holidays: "+dir+"\n")...), "sla.yml")
	if err != nil {
		t.Fatal(err)
	}
	after, err := New(Config{Policy: p, Inventory: testInventory})
	if err != nil {
		t.Fatal(err)
	}
	a, err := before.Incident(events, later)
	if err != nil {
		t.Fatal(err)
	}
	b, err := after.Incident(events, later)
	if err != nil {
		t.Fatal(err)
	}
	// Without the festival: Friday 1h, Saturday 02-14 is an ordinary
	// Saturday, then six working days of 7.5h and Tuesday 1.5h: 47.5h.
	if a.Repair.Elapsed != 10*time.Hour || b.Repair.Elapsed != 47*time.Hour+30*time.Minute {
		t.Errorf("repair %s and %s, want 10h and 47h30m", a.Repair.Elapsed, b.Repair.Elapsed)
	}
	if a.Policy == b.Policy {
		t.Errorf("both under %s", a.Policy)
	}
}

func TestPreviousMonth(t *testing.T) {
	for _, c := range []struct {
		now  time.Time
		want string
	}{
		{sh("2026-03-31 10:00"), "2026-02"}, // not 31 February, which is March
		{sh("2026-05-31 10:00"), "2026-04"},
		{sh("2026-01-15 10:00"), "2025-12"},
		{sh("2026-12-01 07:00").UTC(), "2026-11"}, // 30 November 23:00 in UTC
	} {
		if got := PreviousMonth(c.now, calendar.Shanghai); got != c.want {
			t.Errorf("at %s: %s, want %s", c.now, got, c.want)
		}
	}
}
