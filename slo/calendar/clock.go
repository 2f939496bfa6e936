// Package calendar provides the clocks SLA targets run on: 7x24, business
// hours and a site's opening hours, with the Chinese statutory holidays and
// make-up working days (调休) as per-year data files an operator can edit.
//
// A Clock turns wall time into the time a target counts: Elapsed(from, to)
// is the clock time between two instants, Deadline(from, d) the instant at
// which d of clock time has passed. Excluding takes intervals (pauses) off
// any clock. Everything is pure: no I/O after loading, safe for concurrent
// use, so figures can be recomputed from the ledger whenever a calendar is
// corrected.
package calendar

import (
	"slices"
	"time"
	_ "time/tzdata" // the zones work on hosts without /usr/share/zoneinfo
)

// DefaultTimezone is the timezone of the clocks unless configured.
const DefaultTimezone = "Asia/Shanghai"

// Shanghai is Asia/Shanghai (UTC+8, no daylight saving).
var Shanghai = mustLoad(DefaultTimezone)

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err) // time/tzdata is embedded
	}
	return loc
}

// Clock measures the time a target runs on.
type Clock interface {
	// Elapsed returns the clock time between from and to; 0 if to is not
	// after from.
	Elapsed(from, to time.Time) time.Duration
	// Deadline returns the earliest instant t with Elapsed(from, t) >= d
	// (from itself if d <= 0), or the zero Time if the clock never runs
	// that long (it is stopped for good, see Excluding).
	Deadline(from time.Time, d time.Duration) time.Time
}

// Always is the 7x24 clock: wall time.
var Always Clock = always{}

type always struct{}

func (always) Elapsed(from, to time.Time) time.Duration {
	if !to.After(from) {
		return 0
	}
	return to.Sub(from)
}

func (always) Deadline(from time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return from
	}
	return from.Add(d)
}

// Interval is [From, To). A zero To is open-ended: a pause not yet resumed.
type Interval struct {
	From, To time.Time
}

// farFuture stands for an open end; no clock walks to it (Elapsed clips
// excluded intervals to its own range first).
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// Excluding returns c with the intervals taken off: the clock stands still
// in them. Overlapping intervals count once. With no intervals it returns c.
func Excluding(c Clock, intervals []Interval) Clock {
	var ex []Interval
	for _, iv := range intervals {
		if iv.To.IsZero() {
			iv.To = farFuture
		}
		if iv.To.After(iv.From) {
			ex = append(ex, iv)
		}
	}
	if len(ex) == 0 {
		return c
	}
	slices.SortFunc(ex, func(a, b Interval) int { return a.From.Compare(b.From) })
	merged := ex[:1]
	for _, iv := range ex[1:] {
		last := &merged[len(merged)-1]
		if !iv.From.After(last.To) {
			if iv.To.After(last.To) {
				last.To = iv.To
			}
			continue
		}
		merged = append(merged, iv)
	}
	return &excluding{c: c, ex: merged}
}

type excluding struct {
	c  Clock
	ex []Interval // sorted, disjoint, not touching
}

func (e *excluding) Elapsed(from, to time.Time) time.Duration {
	total := e.c.Elapsed(from, to)
	if total == 0 {
		return 0
	}
	for _, iv := range e.ex {
		a, b := maxTime(iv.From, from), minTime(iv.To, to)
		if b.After(a) {
			total -= e.c.Elapsed(a, b)
		}
	}
	return total
}

func (e *excluding) Deadline(from time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return from
	}
	t, left := from, d
	for _, iv := range e.ex {
		if !iv.To.After(t) {
			continue
		}
		if iv.From.After(t) {
			dl := e.c.Deadline(t, left)
			if dl.IsZero() || !dl.After(iv.From) {
				return dl
			}
			left -= e.c.Elapsed(t, iv.From)
		}
		if !iv.To.Before(farFuture) {
			return time.Time{}
		}
		t = iv.To
	}
	return e.c.Deadline(t, left)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
