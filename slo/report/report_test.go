package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/xml"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kioskmon/kioskmon/alerting/inspection"
	"github.com/kioskmon/kioskmon/ingest/inventory"
	"github.com/kioskmon/kioskmon/internal/peertest"
	"github.com/kioskmon/kioskmon/slo/calendar"
	"github.com/kioskmon/kioskmon/slo/compliance"
	"github.com/kioskmon/kioskmon/slo/ledger"
	"github.com/kioskmon/kioskmon/slo/policy"
)

func sh(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, calendar.Shanghai)
	if err != nil {
		panic(err)
	}
	return t
}

// hostileNote is a note a person typed into an incident: the page must
// show it as text.
const hostileNote = `<script>alert("x")</script> & 'quotes'`

var testInventory = &inventory.Inventory{
	Version: "v1",
	Sites: []inventory.Site{
		{ID: "市民中心", District: "和平区"},
		{ID: "station-7", District: "河西区"},
	},
	Kiosks: []inventory.Kiosk{
		{ID: "k1", Site: "市民中心", District: "和平区", Provider: "acme", DistanceKm: 5},
		{ID: "k2", Site: "市民中心", District: "和平区", Provider: "acme", DistanceKm: 5},
		{ID: "k3", Site: "station-7", District: "河西区", Provider: "蓝天运维", DistanceKm: 8},
		{ID: "k4", Site: "station-7", District: "河西区", Provider: "蓝天运维", DistanceKm: 8},
		{ID: "k5", Site: "station-7", District: "河西区", Provider: "蓝天运维", DistanceKm: 8}, // no incident in October
	},
}

// testLedger is an empty SQLite ledger, closed with the test.
func testLedger(t testing.TB) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(context.Background(), "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// testEngine computes under the DB12/T 1060 preset over inv.
func testEngine(t testing.TB, inv *inventory.Inventory) *compliance.Engine {
	t.Helper()
	p, err := policy.FromPreset(policy.PresetDB12)
	if err != nil {
		t.Fatal(err)
	}
	e, err := compliance.New(compliance.Config{Policy: p, Inventory: inv})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// reportNow is when the test's report of October 2026 is made.
var reportNow = sh("2026-11-05 12:00")

// testMonth builds the report of October 2026 through Build, from a real
// SQLite ledger holding four incidents under the DB12/T 1060 preset
// (response 30m, arrival 2h, repair 2h urgent / 4h moderate / 8h minor,
// all 7x24):
//
//   - #1 k1 urgent: acknowledged in 10m (met), arrived after 3h30 (arrival
//     breached by 1h30), resolved after 4h (repair breached by 2h); closed
//     with satisfaction 2 and a hostile note.
//   - #2 k2 moderate: acknowledged in 5m, resolved after 1h: compliant;
//     satisfaction 5.
//   - #3 k3 minor consumables: acknowledged after 50m (response breached by
//     20m), resolved after 2h; satisfaction 4.
//   - #4 k4 urgent, 10-30 09:00, acknowledged in 5m, still open at the
//     report's time 11-05 12:00: repair breached by 6d 3h - 2h = 6d 1h.
//
// So: 4 incidents, 1 open, 4 decided, 1 compliant (25%), 4 breaches; MTTA
// (10m+5m+50m+5m)/4 = 17m 30s; MTTR over the resolved (4h+1h+2h)/3 =
// 2h 20m; p90 repair the nearest rank 3 of 3 = 4h.
func testMonth(t testing.TB) *Month {
	t.Helper()
	ctx := context.Background()
	l := testLedger(t)
	open := func(kiosk, fault, category, severity, at string) ledger.OpenRequest {
		for _, k := range testInventory.Kiosks {
			if k.ID == kiosk {
				return ledger.OpenRequest{Kiosk: kiosk, Site: k.Site, District: k.District, Provider: k.Provider, Fault: fault,
					Category: category, Severity: severity, Source: "alert", Channel: "system", Actor: "kioskmon", At: sh(at)}
			}
		}
		t.Fatalf("no kiosk %s", kiosk)
		return ledger.OpenRequest{}
	}
	ev := func(kind, at, actor string, d ledger.EventData) ledger.Event {
		return ledger.Event{Kind: kind, At: sh(at), Actor: actor, Source: "api", Data: d}
	}
	none := ledger.EventData{}
	_, err := l.Import(ctx, []ledger.History{
		{Open: open("k1", "hw.printer_jam", "hardware", "urgent", "2026-10-12 09:00"), Events: []ledger.Event{
			ev(ledger.KindAcknowledged, "2026-10-12 09:10", "张工", none),
			ev(ledger.KindDispatched, "2026-10-12 09:20", "张工", ledger.EventData{CommittedArrival: sh("2026-10-12 11:00")}),
			ev(ledger.KindArrived, "2026-10-12 12:30", "王师傅", ledger.EventData{Proof: ledger.ProofServiceMode}),
			ev(ledger.KindResolved, "2026-10-12 13:00", "王师傅", none),
			ev(ledger.KindClosed, "2026-10-13 10:00", "回访员", ledger.EventData{Satisfaction: 2, Note: hostileNote}),
		}},
		{Open: open("k2", "sw.app_crash", "software", "moderate", "2026-10-13 10:00"), Events: []ledger.Event{
			ev(ledger.KindAcknowledged, "2026-10-13 10:05", "李工", none),
			ev(ledger.KindResolved, "2026-10-13 11:00", "李工", none),
			ev(ledger.KindClosed, "2026-10-14 10:00", "回访员", ledger.EventData{Satisfaction: 5}),
		}},
		{Open: open("k3", "consumables.paper_out", "consumables", "minor", "2026-10-14 08:00"), Events: []ledger.Event{
			ev(ledger.KindAcknowledged, "2026-10-14 08:50", "赵工", none),
			ev(ledger.KindResolved, "2026-10-14 10:00", "赵工", none),
			ev(ledger.KindClosed, "2026-10-15 10:00", "回访员", ledger.EventData{Satisfaction: 4}),
		}},
		{Open: open("k4", "hw.screen_dead", "hardware", "urgent", "2026-10-30 09:00"), Events: []ledger.Event{
			ev(ledger.KindAcknowledged, "2026-10-30 09:05", "赵工", none),
		}},
		// November's: read with October's (the chain runs to the head),
		// counted in none of its figures.
		{Open: open("k5", "consumables.paper_out", "consumables", "urgent", "2026-11-02 08:00"), Events: []ledger.Event{
			ev(ledger.KindResolved, "2026-11-02 10:00", "赵工", none),
			ev(ledger.KindClosed, "2026-11-03 10:00", "回访员", ledger.EventData{Satisfaction: 1}),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := testEngine(t, testInventory)
	// k1 and k2 are inspected weekly; k3 once, early in the month; k4 never.
	insp, err := inspection.OpenLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var recs []inspection.Record
	for d := 0; d < 40; d += 7 {
		at := sh("2026-09-28 03:00").AddDate(0, 0, d)
		recs = append(recs, inspection.Record{Kiosk: "k1", Provider: "acme", At: at, Result: "pass"},
			inspection.Record{Kiosk: "k2", Provider: "acme", At: at, Result: "pass"})
	}
	recs = append(recs, inspection.Record{Kiosk: "k3", Provider: "蓝天运维", At: sh("2026-10-03 03:00"), Result: "fail"})
	if err := insp.Append(recs); err != nil {
		t.Fatal(err)
	}
	m, err := Build(ctx, Sources{Ledger: l, Engine: e, Inventory: testInventory, Inspections: insp,
		InspectionInterval: 14 * 24 * time.Hour}, "2026-10", reportNow)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func render(t testing.TB, m *Month, lang string) string {
	t.Helper()
	var b bytes.Buffer
	if err := m.HTML(&b, lang); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestMonthFigures pins what the renderers are checked against below.
func TestMonthFigures(t *testing.T) {
	m := testMonth(t)
	c := m.Compliance
	tot := c.Total
	if tot.Incidents != 4 || tot.Open != 1 || tot.Decided != 4 || tot.Compliant != 1 {
		t.Errorf("total %+v", tot)
	}
	if tot.MTTA() != 17*time.Minute+30*time.Second || tot.MTTR() != 140*time.Minute || tot.P90Repair() != 4*time.Hour {
		t.Errorf("MTTA %s MTTR %s p90 %s; want 17m30s 2h20m 4h", tot.MTTA(), tot.MTTR(), tot.P90Repair())
	}
	var got []string
	for _, b := range c.Breaches {
		got = append(got, fmt.Sprintf("#%d %s over %s", b.Incident, b.Kind, b.Measure.Over))
	}
	want := []string{"#4 repair over 145h0m0s", "#1 repair over 2h0m0s", "#1 arrival over 1h30m0s", "#3 response over 20m0s"}
	if !slices.Equal(got, want) || c.BreachCount != 4 {
		t.Errorf("breaches %q (count %d), want %q", got, c.BreachCount, want)
	}
	if len(m.Timelines[1]) != 6 || m.Chain.Err != "" || m.Chain.Events != 19 || m.Chain.FromSeq != 1 {
		t.Errorf("timeline of #1 %d events, chain %+v", len(m.Timelines[1]), m.Chain)
	}
	if m.Kiosks != 5 || m.KiosksWithIncidents != 4 || m.Satisfaction.Count != 3 || m.Inspection.Covered != 2 || m.Inspection.Kiosks != 5 {
		t.Errorf("satisfaction %+v, inspection %+v", m.Satisfaction, m.Inspection)
	}
	// November's paper-out on k5 is in none of them.
	if m.ByCategory["consumables"] != 1 || m.Refills["consumables.paper_out"].Incidents != 1 || m.Satisfaction.Scores[1] != 0 {
		t.Errorf("categories %v, refills %+v, satisfaction %+v: November's incident counted in October", m.ByCategory, m.Refills, m.Satisfaction)
	}
}

func TestHTMLSummaryAndBreaches(t *testing.T) {
	m := testMonth(t)
	f := func(lang string, want ...string) {
		t.Helper()
		page := render(t, m, lang)
		for _, w := range want {
			if !strings.Contains(page, w) {
				t.Errorf("%s page lacks %q", lang, w)
			}
		}
		// The order a manager reads in.
		last := -1
		for _, id := range []string{`id="summary"`, `id="charts"`, `id="tables"`, `id="breaches"`, `id="availability"`,
			`id="inspection"`, `id="satisfaction"`, `id="refills"`} {
			i := strings.Index(page, id)
			if i < last {
				t.Errorf("%s page: %s comes before the section above it", lang, id)
			}
			last = i
		}
		if strings.Contains(page, "http://") && !strings.Contains(page, `xmlns="http://www.w3.org/2000/svg"`) ||
			strings.Contains(page, "<script") || strings.Contains(page, "<link") || strings.Contains(page, "<img") {
			t.Errorf("%s page is not self-contained", lang)
		}
	}
	f("zh",
		`<html lang="zh-CN">`, "月度运维服务质量报告", "2026年10月", "db12-1060", m.Compliance.Policy,
		"2026-11-05 12:00 (北京时间)", "账本哈希链自第 1 条事件起至最新共 19 条事件逐条校验通过",
		// summary figures and sentences
		`<div class="v">4</div>`, "25.0%", "17分30秒", "2小时20分", "4小时", "共有 4 项时限超时",
		"已判定的 4 起故障中，1 起全部时限达标，达标率 25.0%。", "涉及 5 台终端中的 4 台",
		"每 14天 至少巡检一次的终端 2 / 5 台（40.0%）", "回访满意度平均 3.7 分",
		"已响应的 4 起故障平均响应时间 17分30秒；已修复的 3 起平均修复时间 2小时20分，其中 90% 在 4小时 内修复（另有 1 起尚未修复）。",
		// the breach list, worst first, with the evidence of #1 translated
		"#4", "修复时限", "到场时限", "响应时限", "6天1小时", "未解决，仍在增加", "证据时间线 #1",
		"发现故障", "响应", "派单", "到场", "修复", "回访关单", "承诺到场 2026-10-12 11:00", "终端进入维护模式",
		"满意度 2 分", "王师傅", "紧急", "2026-10-12 12:30:00", "时间线见上方同一故障单",
		// the other sections
		"市民中心", "和平区", "蓝天运维", "k4", "consumables.paper_out", "耗材",
		// k4 and k5 never inspected, k3 last on 3 October
		"近 45天 未巡检", "28天21小时")
	f("en",
		`<html lang="en">`, "Monthly O&amp;M service report", "October 2026", "2026-11-05 12:00 (Asia/Shanghai)",
		"on 4 of the 5 kiosks", "2 of 5 kiosks were inspected at least every 14d (40.0%)", "17m 30s", "2h 20m", "6d 1h", "1h 30m", "Of the 4 decided incidents, 1 met every target: 25.0% compliance.",
		"Of the 4 incidents acknowledged, the mean time to acknowledge was 17m 30s; of the 3 repaired, the mean time to repair was 2h 20m, and 90% of them were repaired within 4h (1 not repaired yet).",
		"committed arrival 2026-10-12 11:00", "kiosk in service mode", "satisfaction 2/5", "arrival", "repair", "none in 45d")
}

func TestHTMLEscapesNotes(t *testing.T) {
	page := render(t, testMonth(t), "en")
	if strings.Contains(page, hostileNote) || strings.Contains(page, "<script>") {
		t.Fatal("the note's markup reached the page unescaped")
	}
	if !strings.Contains(page, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#39;quotes&#39;") {
		t.Error("the note is not on the page as text")
	}
}

var svgRE = regexp.MustCompile(`(?s)<svg.*?</svg>`)

func TestSVGWellFormed(t *testing.T) {
	m := testMonth(t)
	for _, lang := range Languages {
		svgs := svgRE.FindAllString(render(t, m, lang), -1)
		if len(svgs) != 4 {
			t.Fatalf("%s: %d charts, want 4", lang, len(svgs))
		}
		for i, s := range svgs {
			d := xml.NewDecoder(strings.NewReader(s))
			var bars, texts int
			for {
				tok, err := d.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("%s chart %d is not well-formed XML: %v\n%s", lang, i, err, s)
				}
				if se, ok := tok.(xml.StartElement); ok {
					switch se.Name.Local {
					case "rect":
						bars++
					case "text":
						texts++
					}
				}
			}
			if bars == 0 || texts == 0 {
				t.Errorf("%s chart %d: %d bars, %d texts", lang, i, bars, texts)
			}
		}
		// The compliance chart has its goal line and the providers' bars.
		if !strings.Contains(svgs[0], `class="goal"`) || !strings.Contains(svgs[0], "蓝天运维") {
			t.Errorf("%s compliance chart:\n%s", lang, svgs[0])
		}
	}
}

func TestHTMLRemainingBreaches(t *testing.T) {
	m := testMonth(t)
	m.Compliance.Breaches = m.Compliance.Breaches[:2] // as if MaxBreaches were 2
	page := render(t, m, "zh")
	if !strings.Contains(page, "另有 2 项超时未列出（仅列出超出最多的 2 项，共 4 项）") {
		t.Error("the page does not say how many breaches it leaves out")
	}
	if strings.Count(page, `<tr class="breach"`) != 2 {
		t.Errorf("%d breach rows, want 2", strings.Count(page, `<tr class="breach"`))
	}
}

func TestHTMLEmptyMonth(t *testing.T) {
	m := &Month{Month: "2026-10", From: sh("2026-10-01 00:00"), To: sh("2026-11-01 00:00"), Generated: reportNow,
		PolicyName: "p", Chain: ChainCheck{Err: "event 7: hash mismatch"}}
	page := render(t, m, "zh")
	for _, w := range []string{"2026年10月未发生故障", "哈希链校验失败", "event 7: hash mismatch", "本月没有时限超时", "无数据"} {
		if !strings.Contains(page, w) {
			t.Errorf("the empty month's page lacks %q", w)
		}
	}
	if err := m.HTML(io.Discard, "fr"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("lang fr: %v", err)
	}
}

func TestDuration(t *testing.T) {
	zh, _ := lookupLanguage("zh")
	en, _ := lookupLanguage("en")
	f := func(d time.Duration, wantEn, wantZh string) {
		t.Helper()
		if got := en.duration(d); got != wantEn {
			t.Errorf("en %s: %q, want %q", d, got, wantEn)
		}
		if got := zh.duration(d); got != wantZh {
			t.Errorf("zh %s: %q, want %q", d, got, wantZh)
		}
	}
	f(0, "0", "0")
	f(400*time.Millisecond, "0", "0")
	f(30*time.Second, "30s", "30秒")
	f(12*time.Minute+30*time.Second, "12m 30s", "12分30秒")
	f(45*time.Minute, "45m", "45分")
	f(85*time.Minute, "1h 25m", "1小时25分")
	f(2*time.Hour+20*time.Second, "2h", "2小时")
	f(51*time.Hour+10*time.Minute, "2d 3h", "2天3小时")
	f(48*time.Hour+10*time.Minute, "2d", "2天")
	f(-90*time.Minute, "-1h 30m", "-1小时30分")
}

// TestWordsComplete keeps the languages in step: every word the template
// or the code asks for exists in both.
func TestWordsComplete(t *testing.T) {
	for k := range zhWords {
		if _, ok := enWords[k]; !ok {
			t.Errorf("en lacks %q", k)
		}
	}
	for k := range enWords {
		if _, ok := zhWords[k]; !ok {
			t.Errorf("zh lacks %q", k)
		}
	}
	// A sentence's arguments are the same in both: zh may reorder them
	// with %[n]s, but each must have the same verb.
	verbRE := regexp.MustCompile(`%(?:\[(\d+)\])?[-+# 0]*[\d.]*([a-zA-Z%])`)
	verbs := func(format string) map[int]string {
		out, pos := map[int]string{}, 0
		for _, m := range verbRE.FindAllStringSubmatch(format, -1) {
			if m[2] == "%" {
				continue
			}
			pos++
			if m[1] != "" {
				pos, _ = strconv.Atoi(m[1])
			}
			out[pos] = m[2]
		}
		return out
	}
	for k, en := range enWords {
		if zh, ok := zhWords[k]; ok && !maps.Equal(verbs(en), verbs(zh)) {
			t.Errorf("%q: the arguments of en %v and zh %v differ", k, verbs(en), verbs(zh))
		}
	}
	src := ""
	for _, f := range []string{"html.go", "lang.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src += string(b)
	}
	used := 0
	for _, m := range regexp.MustCompile(`\.(?:T|F)[( ]"([a-z0-9.]+)"`).FindAllStringSubmatch(src, -1) {
		if _, ok := zhWords[m[1]]; !ok {
			t.Errorf("%q is used but not translated", m[1])
		}
		used++
	}
	if used < 100 {
		t.Errorf("found %d uses of words in the source: the pattern no longer matches the calls", used)
	}
}

func TestCSV(t *testing.T) {
	m := testMonth(t)
	var b bytes.Buffer
	if err := m.CSV(&b, "zh"); err != nil {
		t.Fatal(err)
	}
	data := bytes.Clone(b.Bytes())
	if !bytes.HasPrefix(data, []byte("\xef\xbb\xbfsection,")) {
		t.Fatalf("the zh CSV does not start with a UTF-8 BOM: %q", data[:min(len(data), 20)])
	}
	rows, err := csv.NewReader(bytes.NewReader(data[3:])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows[0], CSVColumns) {
		t.Fatalf("header %q", rows[0])
	}
	col := func(row []string, name string) string { return row[slices.Index(CSVColumns, name)] }
	find := func(section, dimension, value string) []string {
		t.Helper()
		for _, r := range rows[1:] {
			if r[0] == section && col(r, "dimension") == dimension && col(r, "value") == value {
				return r
			}
		}
		t.Fatalf("no %s row %s=%s", section, dimension, value)
		return nil
	}
	count := map[string]int{}
	for _, r := range rows[1:] {
		count[r[0]]++
		if len(r) != len(CSVColumns) {
			t.Fatalf("row of %d fields: %q", len(r), r)
		}
	}
	// total + 2 providers + 2 districts + 2 sites + 3 severities
	if count["group"] != 10 || count["breach"] != 4 || count["category"] != 3 || count["refill"] != 1 {
		t.Errorf("rows by section %v", count)
	}
	f := func(row []string, want map[string]string) {
		t.Helper()
		for k, v := range want {
			if got := col(row, k); got != v {
				t.Errorf("%s %s/%s: %s = %q, want %q", row[0], col(row, "dimension"), col(row, "value"), k, got, v)
			}
		}
	}
	f(find("summary", "month", "2026-10"), nil)
	f(find("summary", "breach_count", "4"), nil)
	f(find("summary", "chain_events", "19"), nil)
	f(find("summary", "policy_version", m.Compliance.Policy), nil)
	f(find("summary", "inspection_coverage_pct", "40.000"), nil)
	f(find("group", "total", ""), map[string]string{"incidents": "4", "open": "1", "decided": "4", "compliant": "1",
		"compliance_pct": "25.000", "mtta_seconds": "1050", "mttr_seconds": "8400", "p90_repair_seconds": "14400",
		"response_met": "3", "response_breached": "1", "arrival_met": "0", "arrival_breached": "1", "repair_met": "2",
		"repair_breached": "2"})
	f(find("group", "provider", "蓝天运维"), map[string]string{"incidents": "2", "compliant": "0", "compliance_pct": "0.000"})
	f(find("group", "severity", "moderate"), map[string]string{"incidents": "1", "compliance_pct": "100.000"})
	f(find("refill", "fault", "consumables.paper_out"), map[string]string{"incidents": "1", "resolved": "1"})
	f(find("inspection", "uncovered", "k4"), map[string]string{"provider": "蓝天运维"})
	var first []string
	for _, r := range rows {
		if r[0] == "breach" {
			first = r
			break
		}
	}
	f(first, map[string]string{"incident": "4", "kiosk": "k4", "site": "station-7", "provider": "蓝天运维", "target": "repair",
		"severity": "urgent", "detected": "2026-10-30T09:00:00+08:00", "deadline": "2026-10-30T11:00:00+08:00",
		"allowed_seconds": "7200", "elapsed_seconds": "529200", "over_seconds": "522000", "still_open": "true",
		"clock": "7x24"})

	b.Reset()
	if err := m.CSV(&b, "en"); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b.Bytes(), []byte("section,")) || !bytes.Equal(b.Bytes(), data[3:]) {
		t.Error("the en CSV differs from the zh one beyond the BOM")
	}
}

// chromium returns the browser for the external tests, or skips.
func chromium(t *testing.T) string {
	t.Helper()
	path, err := FindChromium("")
	if err != nil {
		peertest.Missing(t, err.Error())
	}
	return path
}

// TestHTMLInChromium opens the page as a browser does and reads the DOM
// it built: the page parses as the template meant it, with the summary
// and the breach table where a reader looks for them.
func TestHTMLInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	bin := chromium(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, []byte(render(t, testMonth(t), "zh")), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--no-first-run", "--dump-dom", "file://"+file)
	var stderr tail
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	ownProcessGroup(cmd)
	dom, err := cmd.Output()
	killProcessGroup(cmd)
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v: %s", err, stderr.String())
	}
	for _, want := range []string{
		`<section id="summary">`, "达标率", "25.0%", `<table class="breaches">`, `<tr class="breach" id="breach-4-repair">`,
		"证据时间线 #1", `<svg xmlns="http://www.w3.org/2000/svg"`, "&lt;script&gt;",
	} {
		if !bytes.Contains(dom, []byte(want)) {
			t.Errorf("Chromium's DOM lacks %q", want)
		}
	}
	// Parsed as markup, the note would be a script element.
	if bytes.Contains(dom, []byte("<script")) {
		t.Error("Chromium's DOM has a script element")
	}
}

// TestPDFChinese prints the zh report and checks that Chinese text is in
// the PDF (pdftotext reads it back: the CJK glyphs were embedded with
// their Unicode mapping) and that the first page is not blank (pdftoppm).
func TestPDFChinese(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	bin := chromium(t)
	pdftoppm := peertest.Tool(t, "pdftoppm", "poppler-utils")
	pdftotext := peertest.Tool(t, "pdftotext", "poppler-utils")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pdf, err := PDF(ctx, bin, []byte(render(t, testMonth(t), "zh")))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "report.pdf")
	if err := os.WriteFile(file, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	text, err := exec.CommandContext(ctx, pdftotext, "-enc", "UTF-8", file, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	for _, want := range []string{"月度运维服务质量报告", "超时清单", "蓝天运维"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("the PDF's text lacks %q: no CJK font, or Chromium drew no glyphs", want)
		}
	}
	if out, err := exec.CommandContext(ctx, pdftoppm, "-png", "-r", "50", "-f", "1", "-l", "1", file,
		filepath.Join(dir, "page")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v: %s", err, out)
	}
	pngs, _ := filepath.Glob(filepath.Join(dir, "page*.png"))
	if len(pngs) != 1 {
		t.Fatalf("pdftoppm wrote %q", pngs)
	}
	img := decodePNG(t, pngs[0])
	b := img.Bounds()
	dark := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r < 0xc000 || g < 0xc000 || bl < 0xc000 {
				dark++
			}
		}
	}
	// A4 at 50 dpi is 413x585; a page of text and figures inks a few
	// percent of it, an empty or tofu-only page far less.
	if share := float64(dark) / float64(b.Dx()*b.Dy()); b.Dx() < 300 || share < 0.01 {
		t.Errorf("first page %dx%d has %.2f%% ink: blank", b.Dx(), b.Dy(), 100*share)
	}
}

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return img
}

func TestPDFWithoutChromium(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := PDF(context.Background(), "", []byte("<p>x</p>")); !errors.Is(err, ErrNoChromium) ||
		!strings.Contains(err.Error(), "Debian package chromium") {
		t.Errorf("without Chromium: %v", err)
	}
}

func TestHTMLSiteTableBounded(t *testing.T) {
	m := testMonth(t)
	sites := m.Compliance.By[compliance.BySite]
	for i := range 60 {
		sites[fmt.Sprintf("site-%02d", i)] = &compliance.Stats{Incidents: 1}
	}
	page := render(t, m, "zh")
	if !strings.Contains(page, "仅列出故障数最多的 50 个，共 62 个。") {
		t.Error("the site table does not say it is cut")
	}
	// The two real sites have two incidents each: they lead.
	if !strings.Contains(page, "station-7") || strings.Contains(page, "site-59") || !strings.Contains(page, "site-47") {
		t.Error("the site table does not keep the 50 with the most incidents")
	}
}

func TestNiceScale(t *testing.T) {
	f := func(maxV, wantHi, wantStep float64) {
		t.Helper()
		if hi, step := niceScale(maxV); hi != wantHi || step != wantStep {
			t.Errorf("niceScale(%g) = %g, %g; want %g, %g", maxV, hi, step, wantHi, wantStep)
		}
	}
	f(0, 1, 1)
	f(2, 2, 1)
	f(7, 8, 2)
	f(23, 25, 5)
	f(130, 150, 50)
	f(1000, 1000, 200)
}

// TestNoAvailabilityBeforeAnyOpeningTime: a report of the current month made
// before any site opened (Sunday 2 August, halls open Monday to Friday) has
// no availability figure, on the page or in the CSV, rather than 0 %.
func TestNoAvailabilityBeforeAnyOpeningTime(t *testing.T) {
	ctx := context.Background()
	l := testLedger(t)
	inv := &inventory.Inventory{Version: "v1",
		Sites:  []inventory.Site{{ID: "hall", District: "d", OpeningHours: []inventory.OpeningHours{{Days: "mon-fri", Open: "08:30", Close: "17:30"}}}},
		Kiosks: []inventory.Kiosk{{ID: "k1", Site: "hall", District: "d", Provider: "acme"}}}
	e := testEngine(t, inv)
	m, err := Build(ctx, Sources{Ledger: l, Engine: e, Inventory: inv}, "2026-08", sh("2026-08-02 12:00"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := m.CSV(&b, "en"); err != nil {
		t.Fatal(err)
	}
	if csv := b.String(); strings.Contains(csv, "availability_fleet_pct") || !strings.Contains(csv, "availability_kiosks,0") {
		t.Errorf("CSV with no opening time yet:\n%s", csv)
	}
	if page := render(t, m, "en"); strings.Contains(page, "0.00%") {
		t.Errorf("the page shows an availability of 0.00%% with no opening time yet")
	}
}

// TestAvailabilityCountsIncidentsOpenedBeforeTheMonth: a kiosk unusable
// since September is unusable in October until its repair, whether that
// came in October or has not come yet; a lesser grade does not count.
func TestAvailabilityCountsIncidentsOpenedBeforeTheMonth(t *testing.T) {
	ctx := context.Background()
	l := testLedger(t)
	open := func(kiosk, severity, at string) ledger.OpenRequest {
		return ledger.OpenRequest{Kiosk: kiosk, Site: "station-7", District: "河西区", Provider: "蓝天运维", Fault: "hw.screen_dead",
			Category: "hardware", Severity: severity, Source: "alert", Channel: "system", Actor: "kioskmon", At: sh(at)}
	}
	resolved := func(at string) []ledger.Event {
		return []ledger.Event{{Kind: ledger.KindResolved, At: sh(at), Actor: "王师傅", Source: "api"}}
	}
	if _, err := l.Import(ctx, []ledger.History{
		{Open: open("k3", "urgent", "2026-09-30 09:00"), Events: resolved("2026-10-20 09:00")},
		{Open: open("k4", "urgent", "2026-09-25 09:00")},                                         // still open
		{Open: open("k5", "moderate", "2026-09-30 09:00"), Events: resolved("2026-10-02 09:00")}, // not the top grade
		{Open: open("k5", "urgent", "2026-09-01 09:00"), Events: resolved("2026-09-02 09:00")},   // over before October
	}); err != nil {
		t.Fatal(err)
	}
	e := testEngine(t, testInventory)
	m, err := Build(ctx, Sources{Ledger: l, Engine: e, Inventory: testInventory}, "2026-10", reportNow)
	if err != nil {
		t.Fatal(err)
	}
	down := map[string]time.Duration{}
	for _, k := range m.Availability.Worst {
		down[k.Kiosk] = k.Down
	}
	want := map[string]time.Duration{"k3": 19*24*time.Hour + 9*time.Hour, "k4": 31 * 24 * time.Hour}
	if !maps.Equal(down, want) {
		t.Errorf("down in October %v, want %v", down, want)
	}
	if m.Compliance.Total.Incidents != 0 || m.KiosksWithIncidents != 0 {
		t.Errorf("September's incidents counted in October's figures: %+v", m.Compliance.Total)
	}
	// Neither provider had an incident in October: the page still gives
	// their availability, as the CSV does.
	if page := render(t, m, "en"); !strings.Contains(page, "acme") || !strings.Contains(page, "100.00%") {
		t.Errorf("the providers without incidents are not on the page")
	}
}
