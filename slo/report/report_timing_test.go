package report

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"
)

// BenchmarkHTML renders a month at the breach list's bound: 1,000
// breaches, the first 100 incidents with their evidence timelines (as
// Build attaches them), 300 sites.
func BenchmarkHTML(b *testing.B) {
	m := testMonth(b)
	c := m.Compliance
	base := c.Breaches[1] // #1's repair breach, whose timeline has six events
	events := m.Timelines[base.Incident]
	sites := c.By["site"]
	for i := range 300 {
		sites[fmt.Sprintf("site-%03d", i)] = c.By["site"][base.Site]
	}
	c.Breaches = c.Breaches[:0]
	for i := range 1000 {
		br := base
		br.Incident = int64(100 + i)
		br.Kiosk = fmt.Sprintf("k%05d", i)
		br.Measure.Over = time.Duration(1000-i) * time.Minute
		c.Breaches = append(c.Breaches, br)
		if i < 100 {
			m.Timelines[br.Incident] = events
		}
	}
	c.BreachCount = 1500
	var page bytes.Buffer
	if err := m.HTML(&page, "zh"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := m.HTML(io.Discard, "zh"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(page.Len()), "bytes/page")
	b.ReportMetric(float64(len(c.Breaches))*float64(b.N)/b.Elapsed().Seconds(), "breaches/s")
}
