// Command slobench fills an incident ledger with a month of a simulated
// fleet's incidents, for the SLA report benchmark (scripts/bench-sla.sh):
// the fleet is the simulator's (kiosk-sim's inventory: sites with opening
// hours, districts, providers), the faults the default rulebook's, and
// every incident goes through a plausible lifecycle (acknowledged,
// dispatched and on site for hardware, paused for parts now and then,
// resolved, closed with a satisfaction score) via Ledger.Import, so the
// hash chain and the lifecycle checks are those of live incidents.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/kioskmon/kioskmon/alerting/rulebook"
	"github.com/kioskmon/kioskmon/exporter/sim"
	"github.com/kioskmon/kioskmon/slo/calendar"
	"github.com/kioskmon/kioskmon/slo/ledger"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "slobench:", err)
		os.Exit(1)
	}
}

func run() error {
	kiosks := flag.Int("kiosks", 100000, "fleet size")
	incidents := flag.Int("incidents", 1000000, "incidents opened in the month")
	month := flag.String("month", "2026-10", "the month, YYYY-MM (Asia/Shanghai)")
	inv := flag.String("inventory", "inventory.yml", "inventory file to create or complete with the simulated fleet")
	dsn := flag.String("ledger", "", "ledger: postgres://... or a SQLite file path ending in .db")
	batch := flag.Int("batch", 20000, "incidents per transaction")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if *dsn == "" {
		return fmt.Errorf("--ledger is required")
	}
	from, err := time.ParseInLocation("2006-01", *month, calendar.Shanghai)
	if err != nil {
		return fmt.Errorf("--month %q: want YYYY-MM", *month)
	}
	to := from.AddDate(0, 1, 0)
	start := time.Now()
	members, _, err := sim.EnsureFleet(*inv, *inv+".sim-tokens.json", *kiosks)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "slobench: inventory of %d kiosks in %s\n", len(members), time.Since(start).Round(time.Millisecond))
	ctx := context.Background()
	l, err := ledger.Open(ctx, *dsn, ".")
	if err != nil {
		return err
	}
	defer l.Close()
	rb := rulebook.Default()
	rng := rand.New(rand.NewPCG(*seed, 2))
	lognormal := func(median time.Duration, sigma float64) time.Duration {
		return time.Duration(float64(median) * math.Exp(sigma*rng.NormFloat64()))
	}
	ev := func(kind string, at time.Time, actor string, d ledger.EventData) ledger.Event {
		return ledger.Event{Kind: kind, At: at, Actor: actor, Source: "api", Data: d}
	}
	span := to.Sub(from)
	histories := make([]ledger.History, 0, *batch)
	done := 0
	flush := func() error {
		if len(histories) == 0 {
			return nil
		}
		if _, err := l.Import(ctx, histories); err != nil {
			return err
		}
		done += len(histories)
		histories = histories[:0]
		el := time.Since(start)
		fmt.Fprintf(os.Stderr, "slobench: %d/%d incidents (%.0f/s)\n", done, *incidents, float64(done)/el.Seconds())
		return nil
	}
	for range *incidents {
		m := members[rng.IntN(len(members))]
		f := rb.Faults[rng.IntN(len(rb.Faults))]
		at := from.Add(time.Duration(rng.Int64N(int64(span)))).Truncate(time.Second)
		open := ledger.OpenRequest{Kiosk: m.Kiosk.ID, Site: m.Kiosk.Site, District: m.Kiosk.District, Provider: m.Kiosk.Provider,
			Fault: f.ID, Category: f.Category, Severity: rb.Severity(f.ID, "", m.Kiosk.Provider), Source: "alert",
			Channel: "system", Actor: "kioskmon", At: at}
		engineer := fmt.Sprintf("eng-%s-%d", m.Kiosk.Provider, rng.IntN(20))
		t := at.Add(lognormal(12*time.Minute, 0.8))
		events := []ledger.Event{ev(ledger.KindAcknowledged, t, engineer, ledger.EventData{})}
		onSite := f.Category == "hardware" || f.Category == "consumables"
		if onSite {
			t = t.Add(lognormal(5*time.Minute, 0.5))
			events = append(events, ev(ledger.KindDispatched, t, engineer, ledger.EventData{CommittedArrival: t.Add(2 * time.Hour)}))
			t = t.Add(lognormal(70*time.Minute, 0.5))
			events = append(events, ev(ledger.KindArrived, t, engineer, ledger.EventData{Proof: ledger.ProofServiceMode}))
			if rng.Float64() < 0.05 {
				t = t.Add(10 * time.Minute)
				events = append(events, ev(ledger.KindPaused, t, engineer, ledger.EventData{Reason: ledger.PauseAwaitingParts}))
				t = t.Add(lognormal(6*time.Hour, 0.7))
				events = append(events, ev(ledger.KindResumed, t, engineer, ledger.EventData{}))
			}
		}
		t = t.Add(lognormal(45*time.Minute, 0.9))
		events = append(events, ev(ledger.KindResolved, t, engineer, ledger.EventData{}))
		if rng.Float64() < 0.5 {
			events = append(events, ev(ledger.KindClosed, t.Add(24*time.Hour), engineer,
				ledger.EventData{Satisfaction: 3 + rng.IntN(3)}))
		}
		histories = append(histories, ledger.History{Open: open, Events: events})
		if len(histories) == *batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "slobench: %d incidents in %s\n", done, time.Since(start).Round(time.Second))
	return nil
}
