package openhours

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/kioskmon/kioskmon/alerting/inspection"
	"github.com/kioskmon/kioskmon/alerting/rulebook"
	"github.com/kioskmon/kioskmon/ingest/inventory"
)

var fleet = &inventory.Inventory{
	Version: "v1",
	Sites: []inventory.Site{
		{ID: "hall", OpeningHours: []inventory.OpeningHours{{Days: "mon-fri", Open: "08:30", Close: "17:30"}}},
		{ID: "west", Timezone: "Asia/Urumqi", OpeningHours: []inventory.OpeningHours{{Days: "mon-fri", Open: "08:30", Close: "17:30"}}},
		{ID: "station"}, // no hours: open all the time
	},
	Kiosks: []inventory.Kiosk{
		{ID: "k1", Site: "hall", District: "d1", Provider: "p1"},
		{ID: "k2", Site: "hall", District: "d1", Provider: "p2"},
		{ID: "k3", Site: "west", District: "d2", Provider: "p1"},
		{ID: "k4", Site: "station", District: "d3", Provider: "p1"},
		{ID: "k5", Site: "unlisted", District: "d3", Provider: "p1"},
	},
}

func newWriter(t *testing.T, w inspection.SeriesWriter) *Writer {
	t.Helper()
	ix := inventory.NewIndex(fleet)
	wr, err := New(Config{Index: func() *inventory.Index { return ix }}, w, log.NewNopLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return wr
}

// values maps kiosk to its (open, open seconds) at t.
func values(t *testing.T, wr *Writer, at time.Time) map[string][2]float64 {
	t.Helper()
	series, err := wr.Series(at)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]float64{}
	for _, s := range series {
		var name, kiosk, site string
		for _, l := range s.Labels {
			switch l.Name {
			case "__name__":
				name = l.Value
			case "kiosk":
				kiosk = l.Value
			case "site":
				site = l.Value
			}
		}
		if site == "" || !s.At.Equal(at) {
			t.Fatalf("series %v at %s", s.Labels, s.At)
		}
		v := out[kiosk]
		switch name {
		case MetricOpen:
			v[0] = s.Value
		case MetricOpenSeconds:
			v[1] = s.Value
		default:
			t.Fatalf("unexpected series %s", name)
		}
		out[kiosk] = v
	}
	if len(out) != len(fleet.Kiosks) {
		t.Fatalf("series for %d kiosks, want %d", len(out), len(fleet.Kiosks))
	}
	return out
}

// TestSeries reads as a table: at this instant, is the kiosk open, and how
// much opening time lies between it and the instant before.
func TestSeries(t *testing.T) {
	wr := newWriter(t, nil)
	f := func(kiosk, from, to string, open bool, openTime time.Duration) {
		t.Helper()
		a, _ := time.Parse(time.RFC3339, from)
		b, err := time.Parse(time.RFC3339, to)
		if err != nil {
			t.Fatal(err)
		}
		x, y := values(t, wr, a)[kiosk], values(t, wr, b)[kiosk]
		if got := y[0] == 1; got != open {
			t.Errorf("%s at %s: open %v, want %v", kiosk, to, got, open)
		}
		if got := time.Duration(y[1]-x[1]) * time.Second; got != openTime {
			t.Errorf("%s from %s to %s: open %s, want %s", kiosk, from, to, got, openTime)
		}
	}
	// 2026-11-30 is a Monday; times in China Standard Time.
	f("k1", "2026-11-30T08:00:00+08:00", "2026-11-30T09:00:00+08:00", true, 30*time.Minute)
	f("k2", "2026-11-30T17:00:00+08:00", "2026-12-01T08:00:00+08:00", false, 30*time.Minute) // the night
	f("k1", "2026-11-27T17:30:00+08:00", "2026-11-30T08:29:00+08:00", false, 0)              // the weekend
	f("k1", "2026-11-28T10:00:00+08:00", "2026-11-28T11:00:00+08:00", false, 0)              // Saturday
	f("k1", "2026-11-23T10:00:00+08:00", "2026-11-30T10:00:00+08:00", true, 45*time.Hour)    // a week
	f("k3", "2026-11-30T09:00:00+08:00", "2026-11-30T10:00:00+08:00", false, 0)              // 07:00 in Urumqi
	f("k3", "2026-11-30T10:00:00+08:00", "2026-11-30T11:00:00+08:00", true, 30*time.Minute)
	f("k3", "2026-11-30T19:00:00+08:00", "2026-11-30T20:00:00+08:00", false, 30*time.Minute) // closes 17:30 local
	f("k4", "2026-11-28T00:00:00+08:00", "2026-11-29T00:00:00+08:00", true, 24*time.Hour)
	f("k5", "2026-11-28T00:00:00+08:00", "2026-11-28T01:00:00+08:00", true, time.Hour)
}

type recorder struct {
	mu     sync.Mutex
	rounds [][]inspection.Series
	fail   bool
}

func (r *recorder) WriteSeries(series []inspection.Series) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("disk full")
	}
	r.rounds = append(r.rounds, series)
	return nil
}

func TestRunWritesAtOnceAndOnEveryTick(t *testing.T) {
	rec := &recorder{}
	ix := inventory.NewIndex(fleet)
	wr, err := New(Config{Index: func() *inventory.Index { return ix }, Every: 10 * time.Millisecond}, rec, log.NewNopLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); wr.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec.mu.Lock()
		n := len(rec.rounds)
		rec.mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rounds written in 5s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if got := len(rec.rounds[0]); got != 2*len(fleet.Kiosks) {
		t.Fatalf("%d samples in a round, want 2 per kiosk", got)
	}

	rec.fail = true
	if err := wr.Write(time.Now()); err == nil {
		t.Fatal("a failed write is not reported")
	}
	if got := wr.failures.Get(); got != 1 {
		t.Fatalf("failures counted: %d", got)
	}
}

func TestConfig(t *testing.T) {
	if _, err := New(Config{}, nil, log.NewNopLogger(), nil); err == nil {
		t.Error("no inventory accepted")
	}
	ix := func() *inventory.Index { return inventory.NewIndex(fleet) }
	if _, err := New(Config{Index: ix, Every: 10 * time.Minute}, nil, log.NewNopLogger(), nil); err == nil {
		t.Error("a 10m interval accepted: instant lookups would miss samples")
	}
}

// TestTheRulebookReadsTheseSeries: a renamed series would silence the
// forecasts without an error anywhere.
func TestTheRulebookReadsTheseSeries(t *testing.T) {
	for _, id := range []string{"consumables.paper_forecast", "consumables.toner_forecast"} {
		f := rulebook.Default().Fault(id)
		if f == nil || !strings.Contains(f.Expr, MetricOpenSeconds) {
			t.Errorf("%s does not count opening time with %s", id, MetricOpenSeconds)
		}
	}
}
