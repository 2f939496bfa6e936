package inventory

import (
	"testing"
	"time"
)

// TestOpenSeconds reads as the opening time between two instants, which is
// how rules use the counter.
func TestOpenSeconds(t *testing.T) {
	hall := &Site{ID: "hall", OpeningHours: []OpeningHours{{Days: "mon-fri", Open: "08:30", Close: "17:30"}}}
	west := &Site{ID: "west", Timezone: "Asia/Urumqi", OpeningHours: []OpeningHours{{Days: "mon-fri", Open: "08:30", Close: "17:30"}}}
	split := &Site{ID: "split", OpeningHours: []OpeningHours{
		{Days: "mon", Open: "08:00", Close: "12:00"}, {Days: "mon", Open: "11:00", Close: "13:00"}, {Days: "sat", Open: "09:00", Close: "12:00"}}}
	always := &Site{ID: "always"}
	f := func(s *Site, from, to string, want time.Duration) {
		t.Helper()
		a, err := time.Parse(time.RFC3339, from)
		if err != nil {
			t.Fatal(err)
		}
		b, err := time.Parse(time.RFC3339, to)
		if err != nil {
			t.Fatal(err)
		}
		x, err := s.OpenSeconds(a)
		if err != nil {
			t.Fatal(err)
		}
		y, err := s.OpenSeconds(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Duration(y-x) * time.Second; got != want {
			t.Errorf("%s open from %s to %s: %s, want %s", s.ID, from, to, got, want)
		}
	}
	// 2026-11-30 is a Monday.
	f(hall, "2026-11-30T08:00:00+08:00", "2026-11-30T09:00:00+08:00", 30*time.Minute)
	f(hall, "2026-11-30T00:00:00+08:00", "2026-12-01T00:00:00+08:00", 9*time.Hour)
	f(hall, "2026-11-30T17:30:00+08:00", "2026-12-01T08:30:00+08:00", 0) // the night
	f(hall, "2026-11-27T17:00:00+08:00", "2026-11-30T09:00:00+08:00", time.Hour)
	f(hall, "2026-11-28T00:00:00+08:00", "2026-11-30T00:00:00+08:00", 0) // the weekend
	f(hall, "2026-11-23T10:00:00+08:00", "2026-11-30T10:00:00+08:00", 45*time.Hour)
	f(hall, "2026-11-30T00:30:00Z", "2026-11-30T01:30:00Z", time.Hour) // 08:30 in Shanghai
	f(hall, "2026-11-30T08:30:00+08:00", "2026-11-30T08:30:30+08:00", 30*time.Second)
	f(hall, "2026-11-30T17:30:00+08:00", "2026-11-30T17:30:30+08:00", 0)
	f(hall, "2025-11-24T08:00:00+08:00", "2026-11-30T08:00:00+08:00", 53*45*time.Hour) // 53 weeks, no holidays
	// The same hours two hours later in absolute time, in Urumqi (UTC+6).
	f(west, "2026-11-30T08:00:00+08:00", "2026-11-30T11:00:00+08:00", 30*time.Minute)
	f(west, "2026-11-30T10:30:00+08:00", "2026-11-30T11:30:00+08:00", time.Hour)
	f(west, "2026-11-30T19:00:00+08:00", "2026-11-30T20:00:00+08:00", 30*time.Minute)
	// Overlapping entries count once.
	f(split, "2026-11-30T00:00:00+08:00", "2026-12-01T00:00:00+08:00", 5*time.Hour)
	f(split, "2026-11-23T00:00:00+08:00", "2026-11-30T00:00:00+08:00", 8*time.Hour)
	f(always, "2026-11-28T00:00:00+08:00", "2026-11-30T00:00:00+08:00", 48*time.Hour)
}

// TestOpenSecondsAgreesWithIsOpen: the counter grows by a minute exactly in
// the minutes IsOpen calls open, across a fortnight and a daylight saving
// change.
func TestOpenSecondsAgreesWithIsOpen(t *testing.T) {
	sites := []*Site{
		{ID: "hall", OpeningHours: []OpeningHours{{Days: "mon-fri", Open: "08:30", Close: "17:30"}, {Days: "sat", Open: "09:00", Close: "12:00"}}},
		{ID: "night", OpeningHours: []OpeningHours{{Days: "fri-mon", Open: "00:00", Close: "24:00"}}},
		{ID: "berlin", Timezone: "Europe/Berlin", OpeningHours: []OpeningHours{{Days: "mon-sat", Open: "09:00", Close: "18:00"}}},
	}
	start := time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC) // Berlin leaves summer time on 2026-10-25
	for _, s := range sites {
		prev, _ := s.OpenSeconds(start)
		for at := start; at.Before(start.Add(14 * 24 * time.Hour)); at = at.Add(time.Minute) {
			next, err := s.OpenSeconds(at.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			open, _ := s.IsOpen(at)
			want := 0.0
			if open {
				want = 60
			}
			if next-prev != want {
				t.Fatalf("%s at %s: the counter grew %gs, IsOpen says open=%v", s.ID, at, next-prev, open)
			}
			prev = next
		}
	}
}
