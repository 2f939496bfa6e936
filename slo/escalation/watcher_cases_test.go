package escalation

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/go-kit/log"

	"github.com/kioskmon/kioskmon/alerting/evaluator"
	"github.com/kioskmon/kioskmon/slo/compliance"
	"github.com/kioskmon/kioskmon/slo/ledger"
	"github.com/kioskmon/kioskmon/slo/policy"
)

func dbSetup(t *testing.T) (*ledger.Ledger, *compliance.Engine) {
	t.Helper()
	l, err := ledger.Open(context.Background(), "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p, err := policy.FromPreset(policy.PresetDB12)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := compliance.New(compliance.Config{Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	return l, eng
}

func urgent(kiosk string, at time.Time) ledger.OpenRequest {
	return ledger.OpenRequest{Kiosk: kiosk, Site: "s1", District: "d1", Provider: "acme", Fault: "hw.card_reader_fault",
		Category: "hardware", Severity: "urgent", Source: "person", Channel: "phone", Actor: "li", At: at}
}

// TestMoreThan1000OpenIncidents: every open incident is checked, not only
// the newest thousand: with 1,001 open, the oldest (nearest its deadline)
// is warned about, and the open count says 1,001.
func TestMoreThan1000OpenIncidents(t *testing.T) {
	ctx := context.Background()
	l, eng := dbSetup(t)
	t0 := time.Date(2026, 11, 3, 2, 0, 0, 0, time.UTC)
	hist := []ledger.History{{Open: urgent("old", t0)}}
	for i := range 1000 {
		hist = append(hist, ledger.History{Open: urgent(fmt.Sprintf("k%04d", i), t0.Add(10*time.Minute))})
	}
	if _, err := l.Import(ctx, hist); err != nil {
		t.Fatal(err)
	}
	series := &seriesLog{}
	w := New(Config{}, l, func() (*compliance.Engine, error) { return eng, nil }, series, log.NewNopLogger(), metrics.NewSet())
	if err := w.Check(ctx, t0.Add(16*time.Minute)); err != nil { // old: 16/30 = 53%, the others 20%
		t.Fatal(err)
	}
	if v, _ := series.value(MetricOpen, map[string]string{"provider": "acme", "severity": "urgent"}); v != 1001 {
		t.Errorf("%s = %g, want 1001", MetricOpen, v)
	}
	if got := firing(w); got["response"] != "SLATargetAtRisk 50% warning" {
		t.Errorf("firing %v, want the oldest incident's response at 50%%", got)
	}
}

// TestDeadlineInThePolicysTimezone: the warning gives the deadline in the
// policy's zone, with the zone, whatever the server's own: on a host in UTC
// a Shanghai provider reads 10:30, not 02:30.
func TestDeadlineInThePolicysTimezone(t *testing.T) {
	saved := time.Local
	time.Local = time.UTC // a container's usual zone
	defer func() { time.Local = saved }()
	ctx := context.Background()
	l, eng := dbSetup(t)
	t0 := time.Date(2026, 11, 3, 2, 0, 0, 0, time.UTC) // 10:00 in Shanghai; response due 10:30
	if _, _, err := l.OpenIncident(ctx, urgent("k1", t0)); err != nil {
		t.Fatal(err)
	}
	w := New(Config{}, l, func() (*compliance.Engine, error) { return eng, nil }, nil, log.NewNopLogger(), metrics.NewSet())
	if err := w.Check(ctx, t0.Add(16*time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, a := range w.Alerts() {
		if s := a.Annotations["summary"]; !strings.Contains(s, "10:30") {
			t.Errorf("summary %q: want the deadline 10:30 (Asia/Shanghai, the policy's zone)", s)
		}
	}
}

// TestPausedIncidentIsNotPaged: a paused clock has no deadline until it
// resumes: it raises no warning (nor one "due 0001-01-01").
func TestPausedIncidentIsNotPaged(t *testing.T) {
	ctx := context.Background()
	l, eng := dbSetup(t)
	t0 := time.Date(2026, 11, 3, 2, 0, 0, 0, time.UTC)
	inc, _, err := l.OpenIncident(ctx, urgent("k1", t0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Record(ctx, inc.ID, ledger.Event{Kind: ledger.KindPaused, At: t0.Add(20 * time.Minute), Actor: "li",
		Data: ledger.EventData{Reason: ledger.PauseAwaitingParts}}); err != nil {
		t.Fatal(err)
	}
	w := New(Config{}, l, func() (*compliance.Engine, error) { return eng, nil }, nil, log.NewNopLogger(), metrics.NewSet())
	if err := w.Check(ctx, t0.Add(3*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, a := range w.Alerts() {
		if a.State == evaluator.StateFiring {
			t.Errorf("paused 3 days, still paged: %s %s %s; summary %q deadline %q", a.Labels["alertname"], a.Labels["target"],
				a.Labels["escalation"], a.Annotations["summary"], a.Annotations["deadline"])
		}
	}
}
