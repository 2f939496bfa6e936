package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kioskmon/kioskmon/slo/compliance"
)

// CSVColumns are the CSV's columns. The report is one table, so a
// spreadsheet opens it in one sheet and filters it by its first column,
// the section:
//
//   - summary: one figure per row, its name under dimension and its value
//     under value (month, policy_version, breach_count, ...);
//   - group: the compliance figures of the whole month (dimension total)
//     and of each provider, district, site and severity;
//   - category and refill: incidents by category, consumables refills by
//     fault;
//   - breach: one row per listed breach, the worst first;
//   - availability: by provider and district, then the least available
//     kiosks (dimension kiosk);
//   - inspection: coverage by provider, then the kiosks not covered
//     (dimension uncovered).
//
// A row leaves empty the columns its section does not use. Names are
// English whatever the report's language: programs read them. Times are
// RFC 3339 in the policy's timezone; durations are in seconds.
var CSVColumns = []string{
	"section", "dimension", "value",
	"incidents", "open", "decided", "compliant", "compliance_pct", "mtta_seconds", "mttr_seconds", "p90_repair_seconds",
	"response_met", "response_breached", "arrival_met", "arrival_breached", "repair_met", "repair_breached",
	"incident", "kiosk", "site", "district", "provider", "fault", "severity", "target", "clock", "target_source",
	"detected", "deadline", "allowed_seconds", "elapsed_seconds", "paused_seconds", "over_seconds", "still_open",
	"availability_pct", "open_seconds", "down_seconds",
	"kiosks", "covered", "coverage_pct", "longest_gap_seconds", "resolved",
}

var csvIndex = func() map[string]int {
	m := make(map[string]int, len(CSVColumns))
	for i, c := range CSVColumns {
		m[c] = i
	}
	return m
}()

// csvRow is one row being filled by column name.
type csvRow []string

func (r csvRow) set(col, value string) csvRow {
	i, ok := csvIndex[col]
	if !ok {
		panic("report: no CSV column " + col) // a typo in this file; the tests write every section
	}
	r[i] = value
	return r
}

func (r csvRow) setInt(col string, v int) csvRow { return r.set(col, strconv.Itoa(v)) }

// CSV writes the report as CSV (see CSVColumns). lang (zh, the default,
// or en) only decides the byte order mark: the columns and values are the
// same in both.
func (m *Month) CSV(w io.Writer, lang string) error {
	l, err := lookupLanguage(lang)
	if err != nil {
		return err
	}
	if l.code == "zh" {
		// Excel reads a CSV without a byte order mark in the system's ANSI
		// code page (GBK on Chinese Windows) and garbles UTF-8 names of
		// sites and districts; with the mark it reads UTF-8. English
		// reports go without: some CSV readers take the mark for part of
		// the first column's name.
		if _, err := io.WriteString(w, "\uFEFF"); err != nil {
			return fmt.Errorf("write CSV of report %s: %w", m.Month, err)
		}
	}
	cw := csv.NewWriter(w)
	loc := m.location()
	row := func(section string) csvRow {
		r := make(csvRow, len(CSVColumns))
		return r.set("section", section)
	}
	write := func(r csvRow) { _ = cw.Write(r) } // csv.Writer keeps the first error for Error()
	write(CSVColumns)

	c := m.compliance()
	summary := func(name, value string) { write(row("summary").set("dimension", name).set("value", value)) }
	summary("month", m.Month)
	summary("from", rfc3339(m.From, loc))
	summary("to", rfc3339(m.To, loc))
	summary("generated", rfc3339(m.Generated, loc))
	summary("policy", m.PolicyName)
	summary("policy_version", c.Policy)
	summary("chain_from_seq", strconv.FormatInt(m.Chain.FromSeq, 10))
	summary("chain_events", strconv.FormatInt(m.Chain.Events, 10))
	summary("chain_error", m.Chain.Err)
	summary("kiosks", strconv.Itoa(m.Kiosks))
	summary("kiosks_with_incidents", strconv.Itoa(m.KiosksWithIncidents))
	summary("breach_count", strconv.Itoa(c.BreachCount))
	summary("breaches_listed", strconv.Itoa(len(c.Breaches)))
	summary("availability_severity", m.Availability.Severity)
	summary("availability_kiosks", strconv.Itoa(m.Availability.Kiosks))
	if m.Availability.Kiosks > 0 { // none had opening time yet: no figure, not 0%
		summary("availability_fleet_pct", pct(100*m.Availability.Fleet))
		summary("kiosks_below_99", strconv.Itoa(m.Availability.Below99))
		summary("kiosks_below_95", strconv.Itoa(m.Availability.Below95))
	}
	if cov := &m.Inspection; cov.Interval > 0 {
		summary("inspection_interval_seconds", seconds(cov.Interval))
		summary("inspection_kiosks", strconv.Itoa(cov.Kiosks))
		summary("inspection_covered", strconv.Itoa(cov.Covered))
		if cov.Kiosks > 0 {
			summary("inspection_coverage_pct", pct(100*float64(cov.Covered)/float64(cov.Kiosks)))
		}
		summary("inspections", strconv.Itoa(cov.Inspections))
		summary("inspections_failed", strconv.Itoa(cov.Failed))
	}
	summary("satisfaction_count", strconv.Itoa(m.Satisfaction.Count))
	if m.Satisfaction.Count > 0 {
		summary("satisfaction_mean", strconv.FormatFloat(m.Satisfaction.Mean, 'f', 3, 64))
	}
	for s := 1; s <= 5; s++ {
		summary("satisfaction_score_"+strconv.Itoa(s), strconv.Itoa(m.Satisfaction.Scores[s]))
	}
	if len(c.MissingHolidays) > 0 {
		years := make([]string, len(c.MissingHolidays))
		for i, y := range c.MissingHolidays {
			years[i] = strconv.Itoa(y)
		}
		summary("missing_holidays", strings.Join(years, " "))
	}

	write(csvGroup("total", "", &c.Total, row("group")))
	for _, dim := range compliance.Dimensions {
		for _, name := range slices.Sorted(maps.Keys(c.By[dim])) {
			write(csvGroup(dim, name, c.By[dim][name], row("group")))
		}
	}
	for _, cat := range slices.Sorted(maps.Keys(m.ByCategory)) {
		write(row("category").set("dimension", "category").set("value", cat).setInt("incidents", m.ByCategory[cat]))
	}
	for _, fault := range slices.Sorted(maps.Keys(m.Refills)) {
		n := m.Refills[fault]
		write(row("refill").set("dimension", "fault").set("value", fault).setInt("incidents", n.Incidents).
			setInt("resolved", n.Resolved))
	}

	for _, b := range c.Breaches {
		ms := &b.Measure
		write(row("breach").set("incident", strconv.FormatInt(b.Incident, 10)).set("kiosk", b.Kiosk).set("site", b.Site).
			set("district", b.District).set("provider", b.Provider).set("fault", b.Fault).set("severity", b.Severity).
			set("target", b.Kind).set("clock", ms.Target.Clock).set("target_source", ms.Target.Source).
			set("detected", rfc3339(b.Detected, loc)).set("deadline", rfc3339(ms.Deadline, loc)).
			set("allowed_seconds", seconds(ms.Target.Within)).set("elapsed_seconds", seconds(ms.Elapsed)).
			set("paused_seconds", seconds(ms.Paused)).set("over_seconds", seconds(ms.Over)).
			set("still_open", strconv.FormatBool(b.Open)))
	}

	av := &m.Availability
	for _, g := range []struct {
		dim    string
		ratios map[string]float64
	}{{"provider", av.ByProvider}, {"district", av.ByDistrict}} {
		for _, name := range slices.Sorted(maps.Keys(g.ratios)) {
			write(row("availability").set("dimension", g.dim).set("value", name).set("availability_pct", pct(100*g.ratios[name])))
		}
	}
	for _, k := range av.Worst {
		write(row("availability").set("dimension", "kiosk").set("value", k.Kiosk).set("kiosk", k.Kiosk).set("site", k.Site).
			set("district", k.District).set("provider", k.Provider).set("open_seconds", seconds(k.Open)).
			set("down_seconds", seconds(k.Down)).set("availability_pct", pct(100*k.Ratio)))
	}

	cov := &m.Inspection
	providers := slices.Sorted(maps.Keys(cov.ByProvider))
	for _, prov := range providers {
		n := cov.ByProvider[prov]
		r := row("inspection").set("dimension", "provider").set("value", prov).setInt("kiosks", n[0]).setInt("covered", n[1])
		if n[0] > 0 {
			r.set("coverage_pct", pct(100*float64(n[1])/float64(n[0])))
		}
		write(r)
	}
	for _, g := range cov.Uncovered {
		write(row("inspection").set("dimension", "uncovered").set("value", g.Kiosk).set("kiosk", g.Kiosk).
			set("provider", g.Provider).set("longest_gap_seconds", seconds(g.Longest)))
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write CSV of report %s: %w", m.Month, err)
	}
	return nil
}

func csvGroup(dim, value string, s *compliance.Stats, r csvRow) csvRow {
	r.set("dimension", dim).set("value", value).setInt("incidents", s.Incidents).setInt("open", s.Open).
		setInt("decided", s.Decided).setInt("compliant", s.Compliant).
		set("mtta_seconds", seconds(s.MTTA())).set("mttr_seconds", seconds(s.MTTR())).
		set("p90_repair_seconds", seconds(s.P90Repair())).
		setInt("response_met", s.Response.Met).setInt("response_breached", s.Response.Breached).
		setInt("arrival_met", s.Arrival.Met).setInt("arrival_breached", s.Arrival.Breached).
		setInt("repair_met", s.Repair.Met).setInt("repair_breached", s.Repair.Breached)
	if v, ok := s.Compliance(); ok {
		r.set("compliance_pct", pct(v))
	}
	return r
}

// pct writes a percentage with three decimals: enough to tell 99.995%
// from 100%.
func pct(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }

// seconds writes d in seconds, with its fraction when it has one.
func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }

func rfc3339(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format(time.RFC3339)
}
