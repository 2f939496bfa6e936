package inspection_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/kioskmon/kioskmon/alerting/evaluator"
	"github.com/kioskmon/kioskmon/alerting/inspection"
	"github.com/kioskmon/kioskmon/alerting/rulebook"
	"github.com/kioskmon/kioskmon/alerting/ruletest"
	"github.com/kioskmon/kioskmon/server"
)

var fleet = []inspection.Kiosk{
	{ID: "k1", Site: "s1", District: "d1", Provider: "p1"}, // camera in fault, paper out
	{ID: "k2", Site: "s1", District: "d1", Provider: "p2"}, // all well, no printer
	{ID: "k3", Site: "s2", District: "d2", Provider: "p1"}, // sends nothing
}

type fixture struct {
	t     *testing.T
	st    *server.RuleTestStorage
	dir   string
	start time.Time
}

// The embedded storage opens once per process: the tests share it, each in
// its own day of the past.
var (
	shared   *server.RuleTestStorage
	nextSlot int
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "inspection-test-")
	if err != nil {
		panic(err)
	}
	if shared, err = server.OpenRuleTestStorage(dir); err != nil {
		panic(err)
	}
	code := m.Run()
	shared.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newFixture(t *testing.T) *fixture {
	nextSlot++
	start := time.Now().Add(-time.Duration(nextSlot)*48*time.Hour - 3*time.Hour).Truncate(time.Minute)
	return &fixture{t: t, st: shared, dir: t.TempDir(), start: start}
}

// series stores one sample a minute of value v from minute from to minute to.
func (f *fixture) series(from, to int, v float64, name string, kv ...string) {
	labels := []evaluator.Label{{Name: "__name__", Value: name}}
	for i := 0; i < len(kv); i += 2 {
		labels = append(labels, evaluator.Label{Name: kv[i], Value: kv[i+1]})
	}
	var pts []ruletest.Point
	for m := from; m <= to; m++ {
		pts = append(pts, ruletest.Point{T: f.start.Add(time.Duration(m) * time.Minute), V: v})
	}
	if err := f.st.Add(labels, pts); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) at(minute int) time.Time { return f.start.Add(time.Duration(minute) * time.Minute) }

func kioskLabels(k inspection.Kiosk, kv ...string) []string {
	return append([]string{"kiosk", k.ID, "site", k.Site, "district", k.District, "provider", k.Provider}, kv...)
}

type openAlerts []evaluator.Alert

func (a openAlerts) Alerts() []evaluator.Alert { return a }

func (f *fixture) inspector(alerts inspection.AlertSource) *inspection.Inspector {
	in, err := inspection.New(inspection.Config{Rulebook: rulebook.Default(), Dir: f.dir, Kiosks: func() []inspection.Kiosk { return fleet }},
		f.st, alerts, f.st, log.NewNopLogger(), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return in
}

// healthy stores what a working kiosk reports from minute from to to.
func (f *fixture) healthy(k inspection.Kiosk, from, to int) {
	f.series(from, to, 1, "kiosk_exporter_build_info", kioskLabels(k, "version", "t")...)
	f.series(from, to, 1, "kiosk_peripheral_state", kioskLabels(k, "device", "cam", "kind", "camera", "state", "ok")...)
	f.series(from, to, 1, "kiosk_peripheral_state", kioskLabels(k, "device", "idr", "kind", "id_card_reader", "state", "ok")...)
	f.series(from, to, 1, "kiosk_network_link_up", kioskLabels(k, "interface", "eth0")...)
}

func findItem(t *testing.T, r inspection.Record, item string) inspection.ItemResult {
	t.Helper()
	it, ok := r.Item(item)
	if !ok {
		t.Fatalf("%s: no item %s in %+v", r.Kiosk, item, r)
	}
	return it
}

func TestInspectionRecordsRaisesAndResolves(t *testing.T) {
	f := newFixture(t)
	k1, k2 := fleet[0], fleet[1]
	f.healthy(k2, 0, 120)
	f.series(0, 120, 1, "kiosk_exporter_build_info", kioskLabels(k1, "version", "t")...)
	f.series(0, 60, 1, "kiosk_peripheral_state", kioskLabels(k1, "device", "cam", "kind", "camera", "state", "fault")...)
	f.series(61, 120, 1, "kiosk_peripheral_state", kioskLabels(k1, "device", "cam", "kind", "camera", "state", "ok")...)
	f.series(0, 120, 1, "kiosk_paper_state", kioskLabels(k1, "printer", "a4", "tray", "t1", "state", "empty")...)
	f.st.MakeSearchable()

	// Paper out is already alerted; the camera in fault is not (no rule grades it).
	alerts := openAlerts{{State: evaluator.StateFiring, Labels: map[string]string{"kiosk": "k1", "fault": "hw.paper_out"}}}
	in := f.inspector(alerts)
	recs, err := in.Round(context.Background(), f.at(30))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("round inspected %d kiosks, want 3: %+v", len(recs), recs)
	}
	byKiosk := map[string]inspection.Record{}
	for _, r := range recs {
		byKiosk[r.Kiosk] = r
	}
	r1, r2, r3 := byKiosk["k1"], byKiosk["k2"], byKiosk["k3"]
	if r1.Result != inspection.Fail || r2.Result != inspection.Pass || r3.Result != inspection.Unreachable {
		t.Fatalf("results k1 %s k2 %s k3 %s, want fail pass unreachable", r1.Result, r2.Result, r3.Result)
	}
	if cam := findItem(t, r1, "camera"); cam.Result != inspection.Fail || len(cam.Findings) != 1 ||
		cam.Findings[0].Detail != "camera cam is fault" || cam.Findings[0].Alert != "" {
		t.Errorf("k1 camera: %+v", cam)
	}
	if cons := findItem(t, r1, "consumables"); cons.Result != inspection.Fail || cons.Findings[0].Fault != "hw.paper_out" ||
		cons.Findings[0].Alert != evaluator.StateFiring {
		t.Errorf("k1 consumables: %+v", cons)
	}
	for item, want := range map[string]string{"camera": inspection.Pass, "card_reader": inspection.Pass, "printer": inspection.NotApplicable,
		"consumables": inspection.NotApplicable, "network": inspection.Pass, "client_pages": inspection.Pass, "fingerprint_reader": inspection.NotApplicable} {
		if got := findItem(t, r2, item).Result; got != want {
			t.Errorf("k2 %s: %s, want %s", item, got, want)
		}
	}

	// Only the camera, which no alert covers, opens a fault, through the
	// series the rulebook's inspection.hardware fires on.
	f.st.MakeSearchable()
	expr := rulebook.Default().Fault("inspection.hardware").Expr
	fired := func(minute int) []evaluator.Sample {
		got, err := f.st.Query(context.Background(), expr, f.at(minute))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := fired(31)
	if len(got) != 1 || !hasLabel(got[0], "kiosk", "k1") || !hasLabel(got[0], "item", "camera") {
		t.Fatalf("inspection.hardware at minute 31: %+v, want k1 camera only", got)
	}

	// Nothing is due ten minutes later; an hour later k1 (failed) and k3
	// (unreachable) are inspected again, k2 not. The camera works again.
	if recs, _ := in.Round(context.Background(), f.at(40)); len(recs) != 0 {
		t.Errorf("round at minute 40 inspected %d kiosks, want none", len(recs))
	}
	recs, err = in.Round(context.Background(), f.at(91))
	if err != nil {
		t.Fatal(err)
	}
	var again []string
	for _, r := range recs {
		again = append(again, r.Kiosk)
	}
	if strings.Join(again, ",") != "k1,k3" && strings.Join(again, ",") != "k3,k1" {
		t.Fatalf("rechecked %v, want k1 and k3", again)
	}
	f.st.MakeSearchable()
	if got := fired(92); len(got) != 0 {
		t.Errorf("inspection.hardware after the camera passed: %+v, want none", got)
	}

	// The records are durable: a new inspector over the same ledger knows
	// whom it inspected, and coverage counts the two that were reached.
	in2 := f.inspector(alerts)
	last := in2.LastInspections()
	if !last["k1"].Equal(f.at(91)) || !last["k2"].Equal(f.at(30)) || !last["k3"].IsZero() {
		t.Errorf("restored last inspections %v", last)
	}
	cov := in2.Coverage(f.at(100))
	if cov.Kiosks != 3 || cov.Inspected != 2 || len(cov.Overdue) != 1 || cov.Overdue[0].Kiosk != "k3" || cov.ByProvider["p1"] != [2]int{2, 1} {
		t.Errorf("coverage %+v", cov)
	}
}

func hasLabel(s evaluator.Sample, name, value string) bool {
	for _, l := range s.Labels {
		if l.Name == name && l.Value == value {
			return true
		}
	}
	return false
}

func TestDueSpreadsAndRespectsOpeningHours(t *testing.T) {
	f := newFixture(t)
	in, err := inspection.New(inspection.Config{Rulebook: rulebook.Default(), Dir: f.dir, BatchSize: 1,
		Kiosks: func() []inspection.Kiosk { return fleet },
		IsOpen: func(site string, _ time.Time) bool { return site == "s1" }}, f.st, nil, f.st, log.NewNopLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// A budget of one batch of one kiosk a round; s2 (k3) is closed.
	seen := map[string]bool{}
	for round := range 3 {
		recs, err := in.Round(context.Background(), f.at(round*10))
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > 1 {
			t.Fatalf("round %d inspected %d kiosks over a budget of 1", round, len(recs))
		}
		for _, r := range recs {
			seen[r.Kiosk] = true
		}
	}
	if !seen["k1"] || !seen["k2"] || seen["k3"] {
		t.Errorf("inspected %v: want k1 and k2, not k3 whose site is closed", seen)
	}
}

func TestLedgerSurvivesATornWrite(t *testing.T) {
	dir := t.TempDir()
	l, err := inspection.OpenLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	recs := []inspection.Record{{Kiosk: "k1", At: at, Result: inspection.Pass}, {Kiosk: "k2", At: at.AddDate(0, 1, 0), Result: inspection.Fail}}
	if err := l.Append(recs); err != nil {
		t.Fatal(err)
	}
	// A crash in the middle of the next write.
	path := filepath.Join(dir, "inspections-2026-12.jsonl")
	fh, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	fh.WriteString(`{"kiosk":"k3","at":"2026-12-24T10:00:00Z","res`)
	fh.Close()
	if l, err = inspection.OpenLedger(dir); err != nil {
		t.Fatal(err)
	}
	if err := l.Append([]inspection.Record{{Kiosk: "k4", At: at.AddDate(0, 1, 1), Result: inspection.Pass}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	skipped, err := l.Scan(at.Add(-time.Hour), at.AddDate(0, 2, 0), func(r inspection.Record) bool {
		got = append(got, r.Kiosk+":"+r.Result)
		return true
	})
	if err != nil || skipped != 0 || strings.Join(got, " ") != "k1:pass k2:fail k4:pass" {
		t.Errorf("scan after a torn write: %v (skipped %d, err %v), want k1:pass k2:fail k4:pass", got, skipped, err)
	}
}

func TestAPI(t *testing.T) {
	f := newFixture(t)
	f.start = time.Now().Add(-30 * time.Minute).Truncate(time.Minute) // the run endpoint inspects now
	f.healthy(fleet[1], 0, 30)
	f.st.MakeSearchable()
	in := f.inspector(nil)
	mux := http.NewServeMux()
	mux.Handle("/api/v1/inspections", in.RecordsHandler())
	mux.Handle("/api/v1/inspections/coverage", in.CoverageHandler())
	mux.Handle("/api/v1/inspections/run", in.RunHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	check := func(method, path string, wantStatus int, wantBody string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		text, _ := json.Marshal(body)
		if resp.StatusCode != wantStatus || !strings.Contains(string(text), wantBody) {
			t.Errorf("%s %s: %d %s, want %d with %q", method, path, resp.StatusCode, text, wantStatus, wantBody)
		}
		return body
	}
	check("POST", "/api/v1/inspections/run?kiosk=k2", 200, `"result":"pass"`)
	check("POST", "/api/v1/inspections/run?kiosk=k9", 404, `kiosk not in the inventory: \"k9\"`)
	check("GET", "/api/v1/inspections/run?kiosk=k2", 405, "use POST")
	check("POST", "/api/v1/inspections/run", 400, "name 1 to 1000 kiosks")
	check("GET", "/api/v1/inspections?kiosk=k2", 200, `"matched":1`)
	check("GET", "/api/v1/inspections?kiosk=k1", 200, `"matched":0`)
	check("GET", "/api/v1/inspections?result=broken", 400, `result \"broken\" is not one of pass, fail, unreachable`)
	check("GET", "/api/v1/inspections?from=yesterday", 400, `from \"yesterday\"`)
	check("GET", "/api/v1/inspections/coverage", 200, `"inspected":1`)
}

// The checklist, the rulebook's item names and its inspection faults agree:
// every item that fails raises a fault.
func TestChecklistMatchesTheRulebook(t *testing.T) {
	var ids []string
	for _, it := range inspection.Checklist {
		ids = append(ids, it.ID)
	}
	if strings.Join(ids, ",") != strings.Join(rulebook.InspectionItems, ",") {
		t.Fatalf("checklist %v, rulebook items %v", ids, rulebook.InspectionItems)
	}
	f := newFixture(t)
	for _, item := range ids {
		f.series(1, 1, 1, inspection.MetricItemFailed, kioskLabels(fleet[0], "item", item)...)
	}
	f.st.MakeSearchable()
	raised := map[string]bool{}
	for _, fault := range rulebook.Default().Faults {
		if !strings.HasPrefix(fault.ID, "inspection.") {
			continue
		}
		got, err := f.st.Query(context.Background(), fault.Expr, f.at(2))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range got {
			for _, l := range s.Labels {
				if l.Name == "item" && hasLabel(s, "kiosk", "k1") {
					if raised[l.Value] {
						t.Errorf("item %s raises two faults", l.Value)
					}
					raised[l.Value] = true
				}
			}
		}
	}
	for _, item := range ids {
		if !raised[item] {
			t.Errorf("a failed %s raises no fault of the rulebook", item)
		}
	}
}
