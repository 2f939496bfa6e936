package compliance_test

import (
	"fmt"
	"time"

	"github.com/kioskmon/kioskmon/slo/calendar"
	"github.com/kioskmon/kioskmon/slo/compliance"
	"github.com/kioskmon/kioskmon/slo/ledger"
	"github.com/kioskmon/kioskmon/slo/policy"
)

// An urgent fault under DB12/T 1060, acknowledged after 20 minutes, paused
// two hours awaiting parts, resolved at 13:00.
func ExampleEngine_Incident() {
	p, err := policy.FromPreset(policy.PresetDB12)
	if err != nil {
		panic(err)
	}
	e, err := compliance.New(compliance.Config{Policy: p})
	if err != nil {
		panic(err)
	}
	at := func(hhmm string) time.Time {
		t, _ := time.ParseInLocation("2006-01-02 15:04", "2026-03-09 "+hhmm, calendar.Shanghai)
		return t
	}
	events := []ledger.Event{
		{Kind: ledger.KindOpened, At: at("10:00"), Data: ledger.EventData{Kiosk: "k1", Provider: "acme", Severity: "urgent"}},
		{Kind: ledger.KindAcknowledged, At: at("10:20")},
		{Kind: ledger.KindPaused, At: at("10:30"), Data: ledger.EventData{Reason: ledger.PauseAwaitingParts}},
		{Kind: ledger.KindResumed, At: at("12:30")},
		{Kind: ledger.KindResolved, At: at("13:00")},
	}
	r, err := e.Incident(events, at("18:00"))
	if err != nil {
		panic(err)
	}
	for _, m := range []struct {
		name string
		m    compliance.Measure
	}{{"response", r.Response}, {"arrival", r.Arrival}, {"repair", r.Repair}} {
		fmt.Printf("%s: %s, %s of %s (%s)\n", m.name, m.m.Status, m.m.Elapsed, m.m.Target.Within, m.m.Target.Source)
	}
	// Output:
	// response: met, 20m0s of 30m0s (DB12/T 1060—2021 table 1)
	// arrival: n/a, 0s of 2h0m0s (DB12/T 1060—2021 table 1)
	// repair: met, 1h0m0s of 2h0m0s (DB12/T 1060—2021 table 2)
}
