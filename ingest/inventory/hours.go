package inventory

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// hours is OpeningHours parsed: a set of weekdays and minutes of the day.
type hours struct {
	days        [7]bool
	open, close int // minutes after midnight
}

func parseHours(h OpeningHours) (hours, error) {
	var out hours
	if strings.TrimSpace(h.Days) == "" {
		return out, fmt.Errorf("days is empty; want e.g. mon-fri or sat,sun")
	}
	for _, part := range strings.Split(h.Days, ",") {
		part = strings.ToLower(strings.TrimSpace(part))
		from, to, isRange := strings.Cut(part, "-")
		first, ok := dayNames[from]
		if !ok {
			return out, fmt.Errorf("day %q is not one of mon tue wed thu fri sat sun", from)
		}
		last := first
		if isRange {
			if last, ok = dayNames[to]; !ok {
				return out, fmt.Errorf("day %q is not one of mon tue wed thu fri sat sun", to)
			}
		}
		// Ranges run forward through the week: fri-mon is fri, sat, sun, mon.
		for d := first; ; d = (d + 1) % 7 {
			out.days[d] = true
			if d == last {
				break
			}
		}
	}
	var err error
	if out.open, err = parseClock(h.Open, false); err != nil {
		return out, fmt.Errorf("open: %w", err)
	}
	if out.close, err = parseClock(h.Close, true); err != nil {
		return out, fmt.Errorf("close: %w", err)
	}
	if out.close <= out.open {
		return out, fmt.Errorf("close %s is not after open %s", h.Close, h.Open)
	}
	return out, nil
}

func parseClock(s string, allow24 bool) (int, error) {
	var hh, mm int
	if _, err := fmt.Sscanf(s, "%d:%d", &hh, &mm); err != nil || len(s) != 5 {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	if allow24 && hh == 24 && mm == 0 {
		return 24 * 60, nil
	}
	if hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 0, fmt.Errorf("%q is not a time of day", s)
	}
	return hh*60 + mm, nil
}

// locations caches time.LoadLocation, which reads the zoneinfo file on
// every call.
var locations sync.Map // name -> *time.Location

// Location returns the site's timezone.
func (s *Site) Location() (*time.Location, error) {
	tz := s.Timezone
	if tz == "" {
		tz = DefaultTimezone
	}
	if loc, ok := locations.Load(tz); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, err
	}
	locations.Store(tz, loc)
	return loc, nil
}

// IsOpen reports whether the site is open at t, in the site's timezone. A
// site without opening hours is always open.
func (s *Site) IsOpen(t time.Time) (bool, error) {
	if len(s.OpeningHours) == 0 {
		return true, nil
	}
	loc, err := s.Location()
	if err != nil {
		return false, fmt.Errorf("site %q: %w", s.ID, err)
	}
	local := t.In(loc)
	minute := local.Hour()*60 + local.Minute()
	for _, oh := range s.OpeningHours {
		h, err := parseHours(oh)
		if err != nil {
			return false, fmt.Errorf("site %q: %w", s.ID, err)
		}
		if h.days[local.Weekday()] && minute >= h.open && minute < h.close {
			return true, nil
		}
	}
	return false, nil
}

// openCountOrigin is where OpenSeconds starts counting: local midnight of
// this date in the site's timezone. Any fixed date works; one long past keeps
// the counter positive for every sample a storage may hold.
var openCountOrigin = struct {
	year  int
	month time.Month
	day   int
}{2000, time.January, 1}

// OpenSeconds is how many seconds the site has been open from local
// midnight of 2000-01-01 up to t, by its present opening hours; a site
// without opening hours is open all the time. It is a counter that needs no
// state: two instants subtract into the open time between them, and every
// process and every restart computes the same value, so kioskmon can write
// it as a series that rules read with two instant lookups
// (x - x offset 7d) instead of a range over a week of samples.
//
// A change of the opening hours rewrites the whole count, so the
// difference across the change is wrong; readers bound it by the wall time
// between the instants. Wall-clock minutes are counted, so a daylight
// saving change inside opening hours skips or repeats an hour (the
// Asia/Shanghai default has none).
func (s *Site) OpenSeconds(t time.Time) (float64, error) {
	loc, err := s.Location()
	if err != nil {
		return 0, fmt.Errorf("site %q: %w", s.ID, err)
	}
	local := t.In(loc)
	if len(s.OpeningHours) == 0 {
		origin := time.Date(openCountOrigin.year, openCountOrigin.month, openCountOrigin.day, 0, 0, 0, 0, loc)
		return max(0, float64(t.Unix()-origin.Unix())), nil
	}
	var week [7][]span // open minutes of each weekday, merged
	for _, oh := range s.OpeningHours {
		h, err := parseHours(oh)
		if err != nil {
			return 0, fmt.Errorf("site %q: %w", s.ID, err)
		}
		for d := range week {
			if h.days[d] {
				week[d] = addSpan(week[d], span{h.open, h.close})
			}
		}
	}
	var perDay [7]int64
	var perWeek int64
	for d := range week {
		perDay[d] = openBefore(week[d], 24*60)
		perWeek += perDay[d]
	}
	origin := civilDay(openCountOrigin.year, openCountOrigin.month, openCountOrigin.day)
	days := civilDay(local.Year(), local.Month(), local.Day()) - origin
	if days < 0 {
		return 0, nil
	}
	minutes := days / 7 * perWeek
	first := time.Date(openCountOrigin.year, openCountOrigin.month, openCountOrigin.day, 0, 0, 0, 0, time.UTC).Weekday()
	for i := int64(0); i < days%7; i++ {
		minutes += perDay[(int64(first)+i)%7]
	}
	minute := local.Hour()*60 + local.Minute()
	minutes += openBefore(week[local.Weekday()], minute)
	seconds := float64(minutes * 60)
	if openBefore(week[local.Weekday()], minute+1) > openBefore(week[local.Weekday()], minute) {
		seconds += float64(local.Second())
	}
	return seconds, nil
}

// span is the minutes [from, to) of a day.
type span struct{ from, to int }

// addSpan adds s to the sorted, disjoint spans: two entries of the opening
// hours may overlap, and an overlap is open once.
func addSpan(spans []span, s span) []span {
	var out []span
	for _, o := range spans {
		switch {
		case o.to < s.from || o.from > s.to:
			out = append(out, o)
		default:
			s = span{min(o.from, s.from), max(o.to, s.to)}
		}
	}
	out = append(out, s)
	slices.SortFunc(out, func(a, b span) int { return a.from - b.from })
	return out
}

// openBefore is how many minutes of spans lie before minute m of the day.
func openBefore(spans []span, m int) int64 {
	var n int64
	for _, s := range spans {
		if m > s.from {
			n += int64(min(m, s.to) - s.from)
		}
	}
	return n
}

// civilDay numbers a calendar date in days, whatever the timezone and its
// daylight saving changes.
func civilDay(y int, m time.Month, d int) int64 {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}
