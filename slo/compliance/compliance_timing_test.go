package compliance

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/kioskmon/kioskmon/ingest/inventory"
	"github.com/kioskmon/kioskmon/slo/ledger"
	"github.com/kioskmon/kioskmon/slo/policy"
)

// synthMonth streams n synthetic incidents opened over March 2026, their
// events interleaved over `concurrent` incidents open at once, as the
// ledger's sequence interleaves them. Providers mix the 7x24, business and
// site-hours clocks; some incidents pause, are visited, change severity or
// stay open.
type synthMonth struct {
	n, concurrent int
	kiosks        []inventory.Kiosk
}

func newSynthMonth(n, concurrent int) (*synthMonth, *inventory.Inventory) {
	inv := &inventory.Inventory{Version: "v1"}
	for i := range 1000 {
		s := inventory.Site{ID: fmt.Sprintf("site-%d", i), District: fmt.Sprintf("d%d", i%16)}
		if i%2 == 0 {
			s.OpeningHours = []inventory.OpeningHours{{Days: "mon-fri", Open: "08:30", Close: "17:30"}, {Days: "sat", Open: "09:00", Close: "12:00"}}
		} else {
			s.OpeningHours = []inventory.OpeningHours{{Days: "mon-sun", Open: "09:00", Close: "21:00"}}
		}
		inv.Sites = append(inv.Sites, s)
	}
	providers := []string{"acme", "siteco", "other", "other2"}
	for i := range 10000 {
		site := inv.Sites[i%len(inv.Sites)]
		inv.Kiosks = append(inv.Kiosks, inventory.Kiosk{ID: fmt.Sprintf("k%d", i), Site: site.ID, District: site.District,
			Provider: providers[i%len(providers)], DistanceKm: float64(i % 160)})
	}
	return &synthMonth{n: n, concurrent: concurrent, kiosks: inv.Kiosks}, inv
}

var severities = []string{"urgent", "moderate", "minor"}

// events appends incident id's events to buf.
func (s *synthMonth) events(r *rand.Rand, id int64, buf []ledger.Event) []ledger.Event {
	k := &s.kiosks[r.IntN(len(s.kiosks))]
	month := 31 * 24 * time.Hour
	at := sh("2026-03-01 00:00").Add(time.Duration(id-1) * (month / time.Duration(s.n)))
	sev := severities[r.IntN(3)]
	ev := func(kind string, d ledger.EventData) {
		buf = append(buf, ledger.Event{Incident: id, Kind: kind, At: at, Data: d})
	}
	ev(ledger.KindOpened, ledger.EventData{Kiosk: k.ID, Site: k.Site, District: k.District, Provider: k.Provider, Fault: "hw.paper_jam", Severity: sev})
	minutes := func(lo, hi int) time.Duration { return time.Duration(lo+r.IntN(hi-lo)) * time.Minute }
	at = at.Add(minutes(1, 60))
	ev(ledger.KindAcknowledged, ledger.EventData{})
	if r.IntN(10) < 3 {
		at = at.Add(minutes(1, 10))
		ev(ledger.KindDispatched, ledger.EventData{CommittedArrival: at.Add(time.Hour)})
		at = at.Add(minutes(20, 240))
		ev(ledger.KindArrived, ledger.EventData{Proof: ledger.ProofAPI})
	}
	if r.IntN(10) == 0 {
		at = at.Add(minutes(1, 60))
		ev(ledger.KindPaused, ledger.EventData{Reason: ledger.PauseAwaitingParts})
		at = at.Add(minutes(10, 600))
		ev(ledger.KindResumed, ledger.EventData{})
	}
	if r.IntN(20) == 0 && sev != "urgent" {
		at = at.Add(minutes(1, 30))
		ev(ledger.KindSeverity, ledger.EventData{Severity: "urgent"})
	}
	if r.IntN(20) != 0 {
		at = at.Add(minutes(5, 720))
		ev(ledger.KindResolved, ledger.EventData{})
	}
	return buf
}

// run feeds all events to fn, round-robin over the open incidents.
func (s *synthMonth) run(fn func(ledger.Event) error) (events int, err error) {
	r := rand.New(rand.NewPCG(7, 8))
	type slot struct {
		evs []ledger.Event
		pos int
	}
	slots := make([]slot, s.concurrent)
	next := int64(1)
	for i := range slots {
		slots[i].evs = s.events(r, next, slots[i].evs[:0])
		next++
	}
	for live := len(slots); live > 0; {
		live = 0
		for i := range slots {
			sl := &slots[i]
			if sl.pos == len(sl.evs) {
				if next > int64(s.n) {
					continue
				}
				sl.evs, sl.pos = s.events(r, next, sl.evs[:0]), 0
				next++
			}
			live++
			if err := fn(sl.evs[sl.pos]); err != nil {
				return events, err
			}
			sl.pos++
			events++
		}
	}
	return events, nil
}

// BenchmarkMonth aggregates a month of 100,000 incidents (about 400,000
// events) by provider, district, site and severity. The target is
// 1,000,000 incidents in seconds with bounded memory.
func BenchmarkMonth(b *testing.B) {
	const n = 100_000
	synth, inv := newSynthMonth(n, 2000)
	p, err := policy.Load("testdata/sla.yml")
	if err != nil {
		b.Fatal(err)
	}
	e, err := New(Config{Policy: p, Inventory: inv})
	if err != nil {
		b.Fatal(err)
	}
	from, to, _ := Month("2026-03", p.Location())
	asOf := to.Add(7 * 24 * time.Hour)
	b.ReportAllocs()
	var events int
	var rep *Report
	var peak uint64
	for b.Loop() {
		a := e.Aggregate(from, to, asOf)
		var ms runtime.MemStats
		count := 0
		events, err = synth.run(func(ev ledger.Event) error {
			count++
			if count%100_000 == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
			return a.Add(ev)
		})
		if err != nil {
			b.Fatal(err)
		}
		if rep, err = a.Finish(); err != nil {
			b.Fatal(err)
		}
	}
	if rep.Total.Incidents != n {
		b.Fatalf("%d incidents, want %d", rep.Total.Incidents, n)
	}
	perOp := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(n/perOp, "incidents/s")
	b.ReportMetric(float64(events)/perOp, "events/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}
