package escalation

import (
	"context"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/go-kit/log"

	"github.com/kioskmon/kioskmon/alerting/evaluator"
	"github.com/kioskmon/kioskmon/alerting/inspection"
	"github.com/kioskmon/kioskmon/slo/compliance"
	"github.com/kioskmon/kioskmon/slo/ledger"
)

type seriesLog struct{ batches [][]inspection.Series }

func (s *seriesLog) WriteSeries(series []inspection.Series) error {
	s.batches = append(s.batches, series)
	return nil
}

// value returns the last written value of the series named name whose
// labels include want.
func (s *seriesLog) value(name string, want map[string]string) (float64, bool) {
	last := s.batches[len(s.batches)-1]
next:
	for _, ser := range last {
		got := map[string]string{}
		for _, l := range ser.Labels {
			got[l.Name] = l.Value
		}
		if got["__name__"] != name {
			continue
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		return ser.Value, true
	}
	return 0, false
}

func firing(w *Watcher) map[string]string {
	out := map[string]string{}
	for _, a := range w.Alerts() {
		if a.State == evaluator.StateFiring {
			out[a.Labels["target"]] = a.Labels["alertname"] + " " + a.Labels["escalation"] + " " + a.Labels["urgency"]
		}
	}
	return out
}

// TestWarningsEscalateAndClear follows an urgent incident under DB12/T 1060
// (response 30 min, repair 2 h, 7x24): warnings at 50, 75 and 90% of the
// response time, its breach, then an acknowledgement that ends the
// response page while the repair clock goes on.
func TestWarningsEscalateAndClear(t *testing.T) {
	ctx := context.Background()
	l, eng := dbSetup(t)
	t0 := time.Date(2026, 11, 3, 2, 0, 0, 0, time.UTC) // Tuesday 10:00 in Shanghai
	inc, _, err := l.OpenIncident(ctx, ledger.OpenRequest{Kiosk: "k1", Site: "s1", District: "d1", Provider: "acme",
		Fault: "hw.card_reader_fault", Category: "hardware", Severity: "urgent", Source: "alert", Channel: "system",
		Actor: "kioskmon", At: t0, AlertKey: "k1/x@t0"})
	if err != nil {
		t.Fatal(err)
	}
	series := &seriesLog{}
	w := New(Config{}, l, func() (*compliance.Engine, error) { return eng, nil }, series, log.NewNopLogger(), metrics.NewSet())
	step := func(at time.Duration, want map[string]string) {
		t.Helper()
		if err := w.Check(ctx, t0.Add(at)); err != nil {
			t.Fatal(err)
		}
		got := firing(w)
		if len(got) != len(want) {
			t.Errorf("at +%s: firing %v, want %v", at, got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("at +%s: %s alert %q, want %q", at, k, got[k], v)
			}
		}
	}
	step(10*time.Minute, nil)
	if v, ok := series.value(MetricUsed, map[string]string{"target": "response", "incident": "1"}); !ok || v < 0.33 || v > 0.34 {
		t.Errorf("response used %g %v at +10m, want 1/3", v, ok)
	}
	if v, _ := series.value(MetricOpen, map[string]string{"provider": "acme", "severity": "urgent"}); v != 1 {
		t.Errorf("open incidents %g, want 1", v)
	}
	step(15*time.Minute, map[string]string{"response": "SLATargetAtRisk 50% warning"})
	step(23*time.Minute, map[string]string{"response": "SLATargetAtRisk 75% warning"})
	step(27*time.Minute, map[string]string{"response": "SLATargetAtRisk 90% critical"})
	step(31*time.Minute, map[string]string{"response": "SLATargetBreached breached critical"})
	if v, _ := series.value(MetricOpenBreached, map[string]string{"provider": "acme", "target": "response"}); v != 1 {
		t.Errorf("open breached %g, want 1", v)
	}
	// Each level was a new alert; the earlier ones are sent resolved.
	resolved := 0
	for _, a := range w.Alerts() {
		if a.State == evaluator.StateInactive {
			resolved++
		}
	}
	if resolved != 3 {
		t.Errorf("%d resolved warnings kept for Alertmanager, want 3 (50%%, 75%%, 90%%)", resolved)
	}
	if _, err := l.Record(ctx, inc.ID, ledger.Event{Kind: ledger.KindAcknowledged, At: t0.Add(32 * time.Minute), Actor: "li"}); err != nil {
		t.Fatal(err)
	}
	// Acknowledged late: a breach for the report, no longer a page. The
	// repair clock (2 h) is at 50% after an hour.
	step(60*time.Minute, map[string]string{"repair": "SLATargetAtRisk 50% warning"})
	if _, err := l.Record(ctx, inc.ID, ledger.Event{Kind: ledger.KindResolved, At: t0.Add(70 * time.Minute), Actor: "li"}); err != nil {
		t.Fatal(err)
	}
	step(71*time.Minute, nil)
	// The month-to-date figures: one incident of acme, decided (the
	// response breached), not compliant, acknowledged after 32 minutes.
	w.lastMonth = time.Time{}
	step(72*time.Minute, nil)
	for name, want := range map[string]float64{MetricMonthIncidents: 1, MetricMonthDecided: 1, MetricMonthCompliant: 0,
		MetricMonthMTTA: 32 * 60, MetricMonthMTTR: 70 * 60} {
		if v, ok := series.value(name, map[string]string{"provider": "acme"}); !ok || v != want {
			t.Errorf("%s = %g %v, want %g", name, v, ok, want)
		}
	}
	if v, _ := series.value(MetricMonthBreaches, map[string]string{"provider": "acme", "target": "response"}); v != 1 {
		t.Errorf("response breaches %g, want 1", v)
	}
	// Resolved warnings are forgotten after KeepResolved.
	step(2*time.Hour, nil)
	if n := len(w.Alerts()); n != 0 {
		t.Errorf("%d alerts kept long after resolution", n)
	}
}
