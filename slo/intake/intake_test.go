package intake_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/kioskmon/kioskmon/alerting/evaluator"
	"github.com/kioskmon/kioskmon/alerting/ruletest"
	"github.com/kioskmon/kioskmon/server"
	"github.com/kioskmon/kioskmon/slo/intake"
	"github.com/kioskmon/kioskmon/slo/ledger"
)

var storage *server.RuleTestStorage

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "intake-test-")
	if err != nil {
		panic(err)
	}
	if storage, err = server.OpenRuleTestStorage(dir); err != nil {
		panic(err)
	}
	code := m.Run()
	storage.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

func openLedger(t *testing.T) *ledger.Ledger {
	l, err := ledger.Open(context.Background(), "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func labels(kiosk, fault string) map[string]string {
	return map[string]string{"kiosk": kiosk, "site": "s1", "district": "d1", "provider": "p1", "fault": fault,
		"category": "hardware", "severity": "moderate", "alertname": "x"}
}

func post(t *testing.T, h http.Handler, body string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/sla/alertmanager", strings.NewReader(body)))
	return rec
}

func webhook(status, kiosk, fault string, start, end time.Time) string {
	return fmt.Sprintf(`{"version":"4","status":%q,"receiver":"sla-ledger","alerts":[{"status":%q,"labels":{"kiosk":%q,"site":"s1","district":"d1","provider":"p1","fault":%q,"category":"hardware","severity":"moderate"},"startsAt":%q,"endsAt":%q,"fingerprint":"abc"}]}`,
		status, status, kiosk, fault, start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano))
}

func TestAlertsBecomeIncidentsOnce(t *testing.T) {
	ctx := context.Background()
	l := openLedger(t)
	in := intake.New(intake.Config{}, l, nil, log.NewNopLogger(), nil)
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Second).UTC()
	alert := evaluator.Alert{Labels: labels("k1", "hw.paper_jam"), ActiveAt: start, State: evaluator.StateFiring}
	if err := in.Transition(ctx, evaluator.Transition{Alert: alert, From: evaluator.StatePending, To: evaluator.StateFiring, At: start.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	// The same alert through Alertmanager, twice (a retry): still one incident.
	for range 2 {
		if rec := post(t, in.WebhookHandler(), webhook("firing", "k1", "hw.paper_jam", start, time.Time{})); rec.Code != http.StatusNoContent {
			t.Fatalf("webhook: %d %s", rec.Code, rec.Body)
		}
	}
	incs, err := l.Incidents(ctx, ledger.Filter{})
	if err != nil || len(incs) != 1 || !incs[0].OpenedAt.Equal(start) || incs[0].Source != "alert" {
		t.Fatalf("incidents %+v (err %v), want one opened at the alert's start", incs, err)
	}
	// Resolved by Alertmanager 30 minutes later: cleared, and resolved once
	// it has stayed clear for ResolveAfter (10m), at the time it cleared.
	cleared := start.Add(30 * time.Minute)
	if rec := post(t, in.WebhookHandler(), webhook("resolved", "k1", "hw.paper_jam", start, cleared)); rec.Code != http.StatusNoContent {
		t.Fatalf("webhook resolved: %d %s", rec.Code, rec.Body)
	}
	if err := in.Sweep(ctx, cleared.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if inc, _, _ := l.Incident(ctx, incs[0].ID); inc.State != ledger.StateOpen || !inc.ClearedAt.Equal(cleared) {
		t.Fatalf("5 minutes after clearing: %+v, want open and cleared", inc)
	}
	if err := in.Sweep(ctx, cleared.Add(11*time.Minute)); err != nil {
		t.Fatal(err)
	}
	inc, events, _ := l.Incident(ctx, incs[0].ID)
	if inc.State != ledger.StateResolved || !inc.ResolvedAt.Equal(cleared) || len(events) != 3 {
		t.Errorf("11 minutes after clearing: %+v with %d events, want resolved at %s", inc, len(events), cleared)
	}
}

func TestWebhookRefusesWhatIsNotAlertmanagers(t *testing.T) {
	in := intake.New(intake.Config{}, openLedger(t), nil, log.NewNopLogger(), nil)
	for body, want := range map[string]string{
		`{"alerts": [`:                "not an Alertmanager webhook message",
		`{"version":"3","alerts":[]}`: "version 4",
		`{"version":"4","alerts":[{"status":"burning","labels":{}}]}`: `alerts[0].status "burning" is not firing or resolved`,
	} {
		if rec := post(t, in.WebhookHandler(), body); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("%s: %d %q, want 400 with %q", body, rec.Code, rec.Body, want)
		}
	}
	rec := httptest.NewRecorder()
	in.WebhookHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/sla/alertmanager", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", rec.Code)
	}
}

// TestServiceModeProvesArrival: the kiosk's service mode, in the real
// embedded storage, records the engineer's arrival at the time it began.
func TestServiceModeProvesArrival(t *testing.T) {
	ctx := context.Background()
	l := openLedger(t)
	in := intake.New(intake.Config{}, l, storage, log.NewNopLogger(), nil)
	now := time.Now().Truncate(time.Minute).UTC()
	opened, arrived := now.Add(-90*time.Minute), now.Add(-20*time.Minute)
	for _, kiosk := range []string{"k7", "k8"} {
		if _, _, err := l.OpenIncident(ctx, ledger.OpenRequest{Kiosk: kiosk, Site: "s1", District: "d1", Provider: "p1", Fault: "hw.printer_fault",
			Category: "hardware", Severity: "moderate", Source: "alert", Channel: "system", Actor: "kioskmon", At: opened}); err != nil {
			t.Fatal(err)
		}
	}
	var pts, since []ruletest.Point
	for m := -25; m <= 0; m++ {
		on := 0.0
		if m >= -20 {
			on = 1
		}
		pts = append(pts, ruletest.Point{T: now.Add(time.Duration(m) * time.Minute), V: on})
		since = append(since, ruletest.Point{T: now.Add(time.Duration(m) * time.Minute), V: float64(arrived.Unix())})
	}
	kioskLabels := func(name string) []evaluator.Label {
		return []evaluator.Label{{Name: "__name__", Value: name}, {Name: "kiosk", Value: "k7"}, {Name: "site", Value: "s1"}}
	}
	if err := storage.Add(kioskLabels("kiosk_service_mode"), pts); err != nil {
		t.Fatal(err)
	}
	if err := storage.Add(kioskLabels("kiosk_service_mode_since_timestamp_seconds"), since[5:]); err != nil {
		t.Fatal(err)
	}
	storage.MakeSearchable()
	if err := in.Sweep(ctx, now); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		kiosk, state string
	}{{"k7", ledger.StateOnSite}, {"k8", ledger.StateOpen}} {
		incs, _ := l.Incidents(ctx, ledger.Filter{Kiosk: tc.kiosk})
		if len(incs) != 1 || incs[0].State != tc.state {
			t.Fatalf("%s: %+v, want %s", tc.kiosk, incs, tc.state)
		}
		if tc.state == ledger.StateOnSite {
			_, events, _ := l.Incident(ctx, incs[0].ID)
			last := events[len(events)-1]
			if last.Kind != ledger.KindArrived || !last.At.Equal(arrived) || last.Data.Proof != ledger.ProofServiceMode {
				t.Errorf("arrival event %+v, want arrived at %s by service mode", last, arrived)
			}
		}
	}
}

// TestSweepOpensWhatTheSinkMissed: a firing alert whose transition never
// reached the ledger gets its incident at the next sweep, once.
func TestSweepOpensWhatTheSinkMissed(t *testing.T) {
	ctx := context.Background()
	l := openLedger(t)
	start := time.Now().Add(-time.Hour).Truncate(time.Second).UTC()
	firing := []evaluator.Alert{{Labels: labels("k3", "net.link_down"), ActiveAt: start, State: evaluator.StateFiring},
		{Labels: labels("k4", "net.link_down"), ActiveAt: start, State: evaluator.StatePending}}
	in := intake.New(intake.Config{Firing: func() []evaluator.Alert { return firing }}, l, nil, log.NewNopLogger(), nil)
	for range 2 {
		if err := in.Sweep(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	incs, err := l.Incidents(ctx, ledger.Filter{})
	if err != nil || len(incs) != 1 || incs[0].Kiosk != "k3" || !incs[0].OpenedAt.Equal(start) {
		t.Errorf("after two sweeps: %+v (err %v), want k3's incident only, once", incs, err)
	}
}
