package openhours

import (
	"fmt"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/kioskmon/kioskmon/ingest/inventory"
)

// BenchmarkSeries: one round of a 100,000-kiosk fleet in 20,000 sites, what
// the server computes every minute.
func BenchmarkSeries(b *testing.B) {
	inv := &inventory.Inventory{Version: "v1"}
	for s := range 20000 {
		site := inventory.Site{ID: fmt.Sprintf("site-%05d", s)}
		if s%4 != 3 {
			site.OpeningHours = []inventory.OpeningHours{{Days: "mon-fri", Open: "08:30", Close: "17:30"}, {Days: "sat", Open: "09:00", Close: "12:00"}}
		}
		inv.Sites = append(inv.Sites, site)
		for k := range 5 {
			inv.Kiosks = append(inv.Kiosks, inventory.Kiosk{ID: fmt.Sprintf("k-%05d-%d", s, k), Site: site.ID, District: "d", Provider: "p"})
		}
	}
	ix := inventory.NewIndex(inv)
	wr, err := New(Config{Index: func() *inventory.Index { return ix }}, nil, log.NewNopLogger(), nil)
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		series, err := wr.Series(at)
		if err != nil || len(series) != 2*len(inv.Kiosks) {
			b.Fatal(len(series), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/round")
}
