package e2e

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kioskmon/kioskmon/ingest/inventory"
)

// The month the SLA test replays: October 2026 holds the National Day
// holidays (1-7 October) and a make-up working Saturday (10 October).
const slaMonth = "2026-10"

var shanghai = time.FixedZone("CST", 8*3600)

// injectedFault is one fault the simulator injected.
type injectedFault struct {
	Kiosk, Fault string
	Start, End   time.Time
	Onsite       time.Time
}

// slaPolicy is the policy the test measures against: DB12/T 1060 (7x24:
// response 30 min, arrival 2 h, repair 2/4/8 h) with a contract's 4 h
// beyond 100 km and 3 h response on non-working days.
const slaPolicy = `version: v1
name: e2e-2026
preset: db12-1060
targets:
  arrival_far: {within: 4h}
  non_working_day_response: {within: 3h}
`

// nonWorkingDay is the State Council's calendar for October 2026, written
// out here independently of kioskmon's holiday files.
func nonWorkingDay(t time.Time) bool {
	d := t.In(shanghai)
	if d.Month() != time.October || d.Year() != 2026 {
		return d.Weekday() == time.Saturday || d.Weekday() == time.Sunday
	}
	switch {
	case d.Day() <= 7:
		return true // 国庆节
	case d.Day() == 10:
		return false // 调休: Saturday worked
	}
	return d.Weekday() == time.Saturday || d.Weekday() == time.Sunday
}

// engineer is the scripted engineer's handling of one fault, derived from
// the fault alone so the test can recompute it.
type engineer struct {
	ack, dispatch, arrive, pause, resume, resolve time.Time
	satisfaction                                  int
}

func script(tl injectedFault) engineer {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s|%s|%d", tl.Kiosk, tl.Fault, tl.Start.Unix())
	x := h.Sum64()
	dur := tl.End.Sub(tl.Start)
	e := engineer{resolve: tl.End}
	// Acknowledged 5 to 44 minutes after detection: some are late.
	e.ack = tl.Start.Add(min(time.Duration(5+x%40)*time.Minute, dur/3)).Truncate(time.Second)
	if !tl.Onsite.IsZero() && tl.Onsite.After(e.ack.Add(2*time.Minute)) && tl.Onsite.Before(tl.End) {
		e.dispatch, e.arrive = e.ack.Add(time.Minute), tl.Onsite
		// One in ten waits for parts after arriving.
		if rest := tl.End.Sub(tl.Onsite); x%10 == 0 && rest > 30*time.Minute {
			e.pause = tl.Onsite.Add(5 * time.Minute)
			e.resume = e.pause.Add(min(2*time.Hour, (rest-10*time.Minute)/2)).Truncate(time.Second)
		}
	}
	if x%3 != 0 {
		e.satisfaction = int(1 + (x/3)%5)
	}
	return e
}

// figures are what the report must say of a group of incidents.
type figures struct {
	incidents, decided, compliant              int
	respMet, respBreached, arrMet, arrBreached int
	repMet, repBreached                        int
	ackSum, repairSum                          time.Duration
}

func (f *figures) add(tl injectedFault, e engineer, severity string, distanceKm float64) {
	f.incidents++
	breached, met := false, false
	judge := func(elapsed, allowed time.Duration, metCount, breachedCount *int) {
		if elapsed <= allowed {
			*metCount++
			met = true
		} else {
			*breachedCount++
			breached = true
		}
	}
	responseTarget := 30 * time.Minute
	if nonWorkingDay(tl.Start) {
		responseTarget = 3 * time.Hour
	}
	f.ackSum += e.ack.Sub(tl.Start)
	judge(e.ack.Sub(tl.Start), responseTarget, &f.respMet, &f.respBreached)
	if !e.dispatch.IsZero() {
		arrivalTarget := 2 * time.Hour
		if distanceKm > 100 {
			arrivalTarget = 4 * time.Hour
		}
		judge(e.arrive.Sub(tl.Start), arrivalTarget, &f.arrMet, &f.arrBreached)
	}
	repair := tl.End.Sub(tl.Start) - e.resume.Sub(e.pause)
	f.repairSum += repair
	judge(repair, map[string]time.Duration{"urgent": 2 * time.Hour, "moderate": 4 * time.Hour, "minor": 8 * time.Hour}[severity],
		&f.repMet, &f.repBreached)
	if breached || met {
		f.decided++
	}
	if !breached {
		f.compliant++
	}
}

// TestSLAMonthAgainstTruth replays a month of a simulated fleet: the
// simulator's faults arrive as Alertmanager webhooks, a scripted engineer
// acknowledges, dispatches, arrives, waits for parts, resolves and closes
// them through the API with their times in October, and the report's
// figures must equal what this test computes from the truth file and the
// script with the policy's numbers and the official holiday calendar.
func TestSLAMonthAgainstTruth(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.yml")
	truthPath := filepath.Join(dir, "truth.jsonl")
	sim := exec.Command(simBin, "--kiosks", "200", "--inventory", inv, "--truth-only", "--duration", "744h",
		"--end", "2026-11-01T00:00:00+08:00", "--interval", "5m", "--fault-rate", "0.4", "--truth", truthPath, "--seed", "3")
	if out, err := sim.CombinedOutput(); err != nil {
		t.Fatalf("kiosk-sim: %v\n%s", err, out)
	}
	var truth []injectedFault
	f, err := os.Open(truthPath)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var tl injectedFault
		if err := json.Unmarshal(sc.Bytes(), &tl); err != nil {
			t.Fatal(err)
		}
		truth = append(truth, tl)
	}
	f.Close()
	slices.SortFunc(truth, func(a, b injectedFault) int { return a.Start.Compare(b.Start) })
	if len(truth) < 200 {
		t.Fatalf("%d faults in a month of 200 kiosks: the simulator injected too few to measure", len(truth))
	}
	policyPath := filepath.Join(dir, "sla.yml")
	os.WriteFile(policyPath, []byte(slaPolicy), 0o600)
	s := newServer(t, inv, "--rules.disable", "--sla.policy", policyPath)
	token := s.adminToken()

	index, err := inventory.Load(inv)
	if err != nil {
		t.Fatal(err)
	}
	kiosks := inventory.NewIndex(index)
	severity := map[string]string{}
	category := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(kioskmonCLI(t, "rules", "list", "--preset", "db12-1060")), "\n") {
		f := strings.Split(line, "\t")
		category[f[0]], severity[f[0]] = f[1], f[2]
	}

	api := func(method, path string, body any) []byte {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, s.url(path), strings.NewReader(string(b)))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s %s: %d %s", method, path, b, resp.StatusCode, out)
		}
		return out
	}
	type eventBody map[string]any
	want := map[string]*figures{"total": {}}
	sat := map[int]int{}
	refills := 0
	start := time.Now()
	for _, tl := range truth {
		k, ok := kiosks.Kiosk(tl.Kiosk)
		if !ok {
			t.Fatalf("truth names kiosk %s, not in the inventory", tl.Kiosk)
		}
		labels := map[string]string{"alertname": strings.ReplaceAll(tl.Fault, ".", "_"), "kiosk": k.ID, "site": k.Site,
			"district": k.District, "provider": k.Provider, "fault": tl.Fault, "category": category[tl.Fault],
			"severity": severity[tl.Fault]}
		api("POST", "/api/v1/sla/alertmanager", map[string]any{"version": "4", "status": "firing", "receiver": "sla-ledger",
			"alerts": []map[string]any{{"status": "firing", "labels": labels, "startsAt": tl.Start, "endsAt": time.Time{}}}})
		var list struct {
			Data struct {
				Incidents []struct{ ID int64 } `json:"incidents"`
			} `json:"data"`
		}
		json.Unmarshal(api("GET", "/api/v1/incidents?open=true&kiosk="+url.QueryEscape(k.ID)+"&fault="+tl.Fault, nil), &list)
		if len(list.Data.Incidents) != 1 {
			t.Fatalf("%s on %s at %s: %d open incidents, want 1", tl.Fault, k.ID, tl.Start, len(list.Data.Incidents))
		}
		path := fmt.Sprintf("/api/v1/incidents/%d/events", list.Data.Incidents[0].ID)
		e := script(tl)
		api("POST", path, eventBody{"kind": "acknowledged", "at": e.ack})
		if !e.dispatch.IsZero() {
			api("POST", path, eventBody{"kind": "dispatched", "at": e.dispatch, "committed_arrival": e.arrive.Add(30 * time.Minute)})
			api("POST", path, eventBody{"kind": "arrived", "at": e.arrive})
		}
		if !e.pause.IsZero() {
			api("POST", path, eventBody{"kind": "paused", "at": e.pause, "reason": "awaiting_parts"})
			api("POST", path, eventBody{"kind": "resumed", "at": e.resume})
		}
		api("POST", path, eventBody{"kind": "resolved", "at": e.resolve})
		if e.satisfaction > 0 {
			api("POST", path, eventBody{"kind": "closed", "at": e.resolve.Add(time.Hour), "satisfaction": e.satisfaction})
			sat[e.satisfaction]++
		}
		for _, g := range []string{"total", "provider=" + k.Provider, "severity=" + severity[tl.Fault], "district=" + k.District} {
			if want[g] == nil {
				want[g] = &figures{}
			}
			want[g].add(tl, e, severity[tl.Fault], k.DistanceKm)
		}
		if category[tl.Fault] == "consumables" {
			refills++
		}
	}
	t.Logf("%d incidents of %d kiosks recorded through the API in %s", len(truth), kiosks.Len(), time.Since(start).Round(time.Millisecond))

	// The report, as a spreadsheet reads it.
	rows := reportCSV(t, s, token)
	checked := 0
	for _, r := range rows {
		if r["section"] != "group" {
			continue
		}
		key := r["dimension"]
		if key != "total" {
			key += "=" + r["value"]
		}
		w := want[key]
		if w == nil {
			if r["dimension"] != "site" {
				t.Errorf("the report has group %s that no fault of the truth made", key)
			}
			continue
		}
		checked++
		for col, v := range map[string]int{"incidents": w.incidents, "decided": w.decided, "compliant": w.compliant,
			"response_met": w.respMet, "response_breached": w.respBreached, "arrival_met": w.arrMet,
			"arrival_breached": w.arrBreached, "repair_met": w.repMet, "repair_breached": w.repBreached, "open": 0} {
			if r[col] != strconv.Itoa(v) {
				t.Errorf("%s %s: report %q, truth %d", key, col, r[col], v)
			}
		}
		closeTo(t, key+" mtta_seconds", r["mtta_seconds"], (w.ackSum / time.Duration(w.incidents)).Seconds())
		closeTo(t, key+" mttr_seconds", r["mttr_seconds"], (w.repairSum / time.Duration(w.incidents)).Seconds())
	}
	if checked < len(want) {
		t.Errorf("the report has %d of the %d groups the truth makes", checked, len(want))
	}
	summary := map[string]string{}
	refillRows := 0
	for _, r := range rows {
		switch r["section"] {
		case "summary":
			summary[r["dimension"]] = r["value"]
		case "refill":
			n, _ := strconv.Atoi(r["incidents"])
			refillRows += n
		}
	}
	count := 0
	for s, n := range sat {
		count += n
		if got := summary["satisfaction_score_"+strconv.Itoa(s)]; got != strconv.Itoa(n) {
			t.Errorf("satisfaction %d: report %s, script %d", s, got, n)
		}
	}
	if summary["satisfaction_count"] != strconv.Itoa(count) {
		t.Errorf("satisfaction count: report %s, script %d", summary["satisfaction_count"], count)
	}
	if refillRows != refills {
		t.Errorf("consumables refills: report %d, truth %d", refillRows, refills)
	}
	if summary["chain_error"] != "" || summary["policy"] != "e2e-2026" {
		t.Errorf("report summary: chain error %q, policy %q", summary["chain_error"], summary["policy"])
	}
	// The page a manager opens, and the same CSV through the CLI.
	page := reportBody(t, s, token, "html", "zh")
	for _, want := range []string{"<svg", strconv.Itoa(want["total"].incidents), "e2e-2026"} {
		if !strings.Contains(page, want) {
			t.Errorf("the HTML report lacks %q", want)
		}
	}
	out := filepath.Join(dir, "report.csv")
	kioskmonCLI(t, "sla", "report", "--server", "http://"+s.addr, "--token", token, "--month", slaMonth, "--format", "csv",
		"--lang", "en", "--out", out)
	if b, err := os.ReadFile(out); err != nil || !strings.Contains(string(b), "group,total,,"+strconv.Itoa(want["total"].incidents)+",") {
		t.Errorf("kioskmon sla report --out: %v\n%.300s", err, b)
	}
	t.Logf("report: %d incidents, %d breaches, compliance %s%%", want["total"].incidents, want["total"].respBreached+
		want["total"].arrBreached+want["total"].repBreached, groupValue(rows, "total", "compliance_pct"))
}

func reportBody(t *testing.T, s *server, token, format, lang string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), "GET",
		s.url("/api/v1/sla/report?month="+slaMonth+"&format="+format+"&lang="+lang), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("report: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

func reportCSV(t *testing.T, s *server, token string) []map[string]string {
	t.Helper()
	records, err := csv.NewReader(strings.NewReader(reportBody(t, s, token, "csv", "en"))).ReadAll()
	if err != nil {
		t.Fatalf("the report is not CSV: %v", err)
	}
	var rows []map[string]string
	for _, rec := range records[1:] {
		r := map[string]string{}
		for i, col := range records[0] {
			r[col] = rec[i]
		}
		rows = append(rows, r)
	}
	return rows
}

func groupValue(rows []map[string]string, dim, col string) string {
	for _, r := range rows {
		if r["section"] == "group" && r["dimension"] == dim {
			return r[col]
		}
	}
	return ""
}

func closeTo(t *testing.T, what, got string, want float64) {
	t.Helper()
	v, err := strconv.ParseFloat(got, 64)
	if err != nil || math.Abs(v-want) > 1 {
		t.Errorf("%s: report %q, truth %.0f", what, got, want)
	}
}
