package calendar

import (
	"testing"
	"time"
)

// BenchmarkBusinessElapsed measures a repair of three days on the business
// clock, the common case of a report's per-incident work.
func BenchmarkBusinessElapsed(b *testing.B) {
	c, err := Business(nil, nil, DefaultHolidays())
	if err != nil {
		b.Fatal(err)
	}
	from := sh("2026-02-12 16:30")
	to := from.Add(72 * time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		c.Elapsed(from, to)
		c.Deadline(from, 8*time.Hour)
	}
}
