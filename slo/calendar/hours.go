package calendar

import (
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/kioskmon/kioskmon/ingest/inventory"
)

// HolidayRule says what an hours clock does on the holiday calendar's days.
type HolidayRule uint8

// Holiday rules.
const (
	// FollowHolidays (the default): closed on holidays (Off days); on a
	// make-up working day, open as on a working day.
	FollowHolidays HolidayRule = iota
	// IgnoreHolidays: the weekly hours apply every day of the year (a site
	// that opens on holidays, such as an airport or a 24-hour police hall).
	IgnoreHolidays
)

// HoursConfig configures an hours clock.
type HoursConfig struct {
	// Weekly opening hours, in the inventory's form (days mon-fri, open
	// 08:30, close 17:30), read by the inventory's own parser. None: the
	// clock always runs, holidays or not (a site without opening hours is
	// open 24x7).
	Weekly []inventory.OpeningHours
	// Location of the hours and of the holiday dates; nil is Asia/Shanghai.
	Location *time.Location
	// Holidays; nil knows none.
	Holidays *Holidays
	Rule     HolidayRule
}

// DefaultBusinessHours are a government office's working hours:
// 08:30-12:00 and 13:30-17:30, Monday to Friday.
var DefaultBusinessHours = []inventory.OpeningHours{
	{Days: "mon-fri", Open: "08:30", Close: "12:00"},
	{Days: "mon-fri", Open: "13:30", Close: "17:30"},
}

// Hours is a clock that runs during weekly opening hours, adjusted by the
// holiday calendar.
//
// A make-up working day (调休) opens with its weekday's own hours plus the
// hours of a regular working day (the first of Monday to Friday that has
// hours): the State Council makes it a working day, and a service hall
// works it as one.
type Hours struct {
	loc    *time.Location
	always bool
	week   [7][]span // by time.Weekday
	makeUp [7][]span
	hol    *Holidays
	rule   HolidayRule
}

// span is [from, to) in minutes after local midnight.
type span struct{ from, to int }

// NewHours returns the clock cfg describes. An error names the bad
// opening-hours entry.
func NewHours(cfg HoursConfig) (*Hours, error) {
	h := &Hours{loc: cfg.Location, hol: cfg.Holidays, rule: cfg.Rule}
	if h.loc == nil {
		h.loc = Shanghai
	}
	if len(cfg.Weekly) == 0 {
		h.always = true
		return h, nil
	}
	w, err := weeklyOf(cfg.Weekly)
	if err != nil {
		return nil, err
	}
	h.week = w.week
	var workday *[minutesPerDay]bool
	for d := time.Monday; d <= time.Friday; d++ {
		if len(w.week[d]) > 0 {
			workday = &w.bits[d]
			break
		}
	}
	for d := range 7 {
		var day [minutesPerDay]bool
		for m := range day {
			day[m] = w.bits[d][m] || (workday != nil && workday[m])
		}
		h.makeUp[d] = spansOf(&day)
	}
	return h, nil
}

// Business returns the business-hours clock: weekly hours (nil: the
// default 08:30-12:00, 13:30-17:30 Monday to Friday) in loc (nil:
// Asia/Shanghai), closed on holidays, open on make-up working days.
func Business(weekly []inventory.OpeningHours, loc *time.Location, hol *Holidays) (*Hours, error) {
	if len(weekly) == 0 {
		weekly = DefaultBusinessHours
	}
	return NewHours(HoursConfig{Weekly: weekly, Location: loc, Holidays: hol})
}

// SiteHours returns the clock of a site's opening hours in its timezone
// (Fujian 2022 §7.1: a kiosk's service hours are its site's opening
// hours). A site without opening hours is open 24x7. With FollowHolidays
// the site is closed on statutory holidays and open on make-up days, as
// government service halls are; a site that opens on holidays says
// IgnoreHolidays (the SLA policy lists such sites).
func SiteHours(site inventory.Site, hol *Holidays, rule HolidayRule) (*Hours, error) {
	loc, err := site.Location()
	if err != nil {
		return nil, err
	}
	return NewHours(HoursConfig{Weekly: site.OpeningHours, Location: loc, Holidays: hol, Rule: rule})
}

// Location returns the clock's timezone.
func (h *Hours) Location() *time.Location { return h.loc }

// spans returns the open spans of local date d.
func (h *Hours) spans(d Date) []span { return h.spansOf(d.key()) }

// spansOf returns the open spans of the date numbered day (days since
// 1970-01-01, a Thursday).
func (h *Hours) spansOf(day int32) []span {
	wd := weekdayOf(day)
	if h.rule == FollowHolidays && h.hol != nil {
		switch h.hol.kindOf(day) {
		case Off:
			return nil
		case MakeUp:
			return h.makeUp[wd]
		}
	}
	return h.week[wd]
}

// Open reports whether the clock runs at t.
func (h *Hours) Open(t time.Time) bool {
	if h.always {
		return true
	}
	local := t.In(h.loc)
	m := local.Hour()*60 + local.Minute()
	for _, s := range h.spans(DateOf(local, h.loc)) {
		if m >= s.from && m < s.to {
			return true
		}
	}
	return false
}

// at is minute m of local date d.
func (h *Hours) at(d Date, m int) time.Time {
	return time.Date(d.Year, d.Month, d.Day, m/60, m%60, 0, 0, h.loc)
}

// maxDays bounds the walk of Deadline: a week always has an open minute, a
// holiday lasts two weeks at most, so this is only reached by durations of
// years.
const maxDays = 3660

// day is one local date being walked: its midnight and the next, and
// whether it is 24 hours long (no daylight-saving change), so that its
// minutes are offsets from midnight instead of time.Date calls.
type day struct {
	d             Date
	num           int32 // days since 1970-01-01
	midnight, end time.Time
	flat          bool
}

func (h *Hours) firstDay(t time.Time) day {
	d := DateOf(t, h.loc)
	x := day{d: d, num: d.key(), midnight: h.at(d, 0), end: h.at(d.next(), 0)}
	x.flat = x.end.Sub(x.midnight) == 24*time.Hour
	return x
}

func (h *Hours) nextDay(x day) day {
	n := x.d.next()
	y := day{d: n, num: x.num + 1, midnight: x.end, end: h.at(n.next(), 0)}
	y.flat = y.end.Sub(y.midnight) == 24*time.Hour
	return y
}

// minute is minute m of x.
func (h *Hours) minute(x *day, m int) time.Time {
	if x.flat {
		return x.midnight.Add(time.Duration(m) * time.Minute)
	}
	return h.at(x.d, m)
}

// Elapsed implements Clock.
func (h *Hours) Elapsed(from, to time.Time) time.Duration {
	if !to.After(from) {
		return 0
	}
	if h.always {
		return to.Sub(from)
	}
	var total time.Duration
	for x := h.firstDay(from); x.midnight.Before(to); x = h.nextDay(x) {
		for _, s := range h.spansOf(x.num) {
			a, b := maxTime(h.minute(&x, s.from), from), minTime(h.minute(&x, s.to), to)
			if b.After(a) {
				total += b.Sub(a)
			}
		}
	}
	return total
}

// Deadline implements Clock.
func (h *Hours) Deadline(from time.Time, dur time.Duration) time.Time {
	if dur <= 0 {
		return from
	}
	if h.always {
		return from.Add(dur)
	}
	left := dur
	x := h.firstDay(from)
	for range maxDays {
		for _, s := range h.spansOf(x.num) {
			a, b := maxTime(h.minute(&x, s.from), from), h.minute(&x, s.to)
			if !b.After(a) {
				continue
			}
			if avail := b.Sub(a); avail >= left {
				return a.Add(left)
			} else {
				left -= avail
			}
		}
		x = h.nextDay(x)
	}
	return time.Time{}
}

const minutesPerDay = 24 * 60

type weekly struct {
	bits [7][minutesPerDay]bool
	week [7][]span
}

// weeklies caches the weekly schedules by their text: a city has thousands
// of sites and a handful of distinct opening hours.
var weeklies sync.Map // string -> *weekly or error

// weeklyOf turns opening hours into per-weekday spans by asking the
// inventory's own IsOpen at every minute of a reference week (opening hours
// are whole minutes), so the inventory's parser stays the only one.
func weeklyOf(hours []inventory.OpeningHours) (*weekly, error) {
	var key strings.Builder
	for _, oh := range hours {
		key.WriteString(oh.Days + "|" + oh.Open + "|" + oh.Close + ";")
	}
	if v, ok := weeklies.Load(key.String()); ok {
		if err, isErr := v.(error); isErr {
			return nil, err
		}
		return v.(*weekly), nil
	}
	w, err := probe(hours)
	if err != nil {
		weeklies.Store(key.String(), err)
		return nil, err
	}
	weeklies.Store(key.String(), w)
	return w, nil
}

func probe(hours []inventory.OpeningHours) (*weekly, error) {
	site := inventory.Site{Timezone: "UTC", OpeningHours: hours}
	monday := time.Date(2001, time.January, 1, 0, 0, 0, 0, time.UTC) // a Monday
	w := &weekly{}
	for i := range 7 * minutesPerDay {
		t := monday.Add(time.Duration(i) * time.Minute)
		open, err := site.IsOpen(t)
		if err != nil {
			// IsOpen says `site "": ...`; the caller names the place.
			if inner := errors.Unwrap(err); inner != nil {
				err = inner
			}
			return nil, err
		}
		w.bits[t.Weekday()][i%minutesPerDay] = open
	}
	for d := range 7 {
		w.week[d] = spansOf(&w.bits[d])
	}
	return w, nil
}

func spansOf(day *[minutesPerDay]bool) []span {
	var out []span
	for m := 0; m < minutesPerDay; {
		if !day[m] {
			m++
			continue
		}
		start := m
		for m < minutesPerDay && day[m] {
			m++
		}
		out = append(out, span{start, m})
	}
	return out
}
