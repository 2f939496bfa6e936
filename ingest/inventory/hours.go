package inventory

import (
	"fmt"
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
