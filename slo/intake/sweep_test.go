package intake_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/kioskmon/kioskmon/alerting/evaluator"
	"github.com/kioskmon/kioskmon/alerting/ruletest"
	"github.com/kioskmon/kioskmon/slo/intake"
	"github.com/kioskmon/kioskmon/slo/ledger"
)

// TestSweepGoesOnPastAKioskAhead: a kiosk whose clock runs an hour ahead
// says its service mode began in the future; its arrival is recorded now,
// and the sweep still resolves the other incidents.
func TestSweepGoesOnPastAKioskAhead(t *testing.T) {
	ctx := context.Background()
	l := openLedger(t)
	in := intake.New(intake.Config{}, l, storage, log.NewNopLogger(), nil)
	now := time.Now().Truncate(time.Minute).UTC()
	old, _, err := l.OpenIncident(ctx, ledger.OpenRequest{Kiosk: "k10", Site: "s1", District: "d1", Provider: "p1", Fault: "hw.printer_fault",
		Category: "hardware", Severity: "moderate", Source: "alert", Channel: "system", Actor: "kioskmon", At: now.Add(-2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Record(ctx, old.ID, ledger.Event{Kind: ledger.KindCleared, At: now.Add(-time.Hour), Actor: "kioskmon", Source: "alert"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.OpenIncident(ctx, ledger.OpenRequest{Kiosk: "k9", Site: "s1", District: "d1", Provider: "p1", Fault: "hw.printer_fault",
		Category: "hardware", Severity: "moderate", Source: "alert", Channel: "system", Actor: "kioskmon", At: now.Add(-30 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	var pts, since []ruletest.Point
	for m := -10; m <= 0; m++ {
		at := now.Add(time.Duration(m) * time.Minute)
		pts = append(pts, ruletest.Point{T: at, V: 1})
		since = append(since, ruletest.Point{T: at, V: float64(now.Add(time.Hour).Unix())}) // the kiosk's clock is 1h ahead
	}
	kioskLabels := func(name string) []evaluator.Label {
		return []evaluator.Label{{Name: "__name__", Value: name}, {Name: "kiosk", Value: "k9"}, {Name: "site", Value: "s1"}}
	}
	if err := storage.Add(kioskLabels("kiosk_service_mode"), pts); err != nil {
		t.Fatal(err)
	}
	if err := storage.Add(kioskLabels("kiosk_service_mode_since_timestamp_seconds"), since); err != nil {
		t.Fatal(err)
	}
	storage.MakeSearchable()
	for range 3 {
		err = in.Sweep(ctx, now)
	}
	inc, _, _ := l.Incident(ctx, old.ID)
	if inc.State != ledger.StateResolved {
		t.Fatalf("incident of k10, clear for an hour: %s after 3 sweeps (sweep error: %v)", inc.State, err)
	}
}
