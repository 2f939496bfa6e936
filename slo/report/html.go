package report

import (
	"bufio"
	"cmp"
	"fmt"
	"html/template"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kioskmon/kioskmon/slo/calendar"
	"github.com/kioskmon/kioskmon/slo/compliance"
	"github.com/kioskmon/kioskmon/slo/ledger"
)

// ComplianceGoal is the compliance, in percent, that the provider chart
// draws its goal line at and the page marks shortfalls against. The
// standards set a deadline per incident, not a share of incidents; 95% is
// the share O&M contracts commonly ask for. It guides the eye and changes
// no figure.
const ComplianceGoal = 95.0

// SiteRows bounds the page's site table: a city has hundreds of sites, a
// manager reads those with the most incidents, and the CSV has them all.
const SiteRows = 50

// severityOrder ranks the severities of the rulebook's scales, the most
// severe first, so tables and charts list them as the standards do. The
// Month does not carry its policy; a severity outside these sorts after
// them by name.
var severityOrder = []string{"urgent", "moderate", "minor", "severe", "general"}

// HTML writes the report as one self-contained page in lang (zh, the
// default, or en): inline CSS and SVG, no script and nothing fetched, so
// it can be mailed, archived and printed as is; printing (and PDF) lays it
// out on A4 with the big sections on new pages. It reads, in order: the
// title with the policy and the ledger's integrity check, the summary in
// figures and sentences, the charts, the breakdown tables, the breach list
// with each breached incident's evidence timeline, availability,
// inspection coverage, satisfaction and consumables refills.
func (m *Month) HTML(w io.Writer, lang string) error {
	l, err := lookupLanguage(lang)
	if err != nil {
		return err
	}
	// Execute writes many small pieces; an unbuffered file or response
	// writer would take a system call for each.
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := pageTemplate.Execute(bw, m.page(l)); err != nil {
		return fmt.Errorf("render report %s: %w", m.Month, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write report %s: %w", m.Month, err)
	}
	return nil
}

// page is what the template shows: every figure already formatted in the
// page's language, so the template only lays it out.
type page struct {
	*language
	Lang                             string
	Title, Period, Policy, Generated string
	ChainOK                          bool
	Chain                            string
	Figures                          []figure
	Sentences, Warnings              []string
	Charts                           []*chart
	Groups                           []groupTable
	Categories                       []nameCount
	Breaches                         []breachRow
	BreachNote                       string
	AvailIntro                       string
	Worst                            []kioskRow
	HasInspection                    bool
	InspIntro                        string
	Coverage                         []coverageRow
	Uncovered                        []gapRow
	SatMean                          string
	SatChart                         *chart
	Scores                           []scoreRow
	Refills                          []refillRow
}

type figure struct {
	Label, Value, Note string
	Bad                bool
}

type groupTable struct {
	Title, Note string
	Avail       bool // provider and district: their mean availability too
	Rows        []groupRow
}

type groupRow struct {
	Name                                                string
	Incidents, Open, Decided                            int
	Compliance, MTTA, MTTR, P90, Breached, Availability string
	Bad                                                 bool
}

type nameCount struct {
	Name  string
	Count int
}

type breachRow struct {
	Incident                                                 int64
	Kind                                                     string
	Kiosk, Site, Provider, Fault, Severity, Detected, Target string
	Allowed, Took, Over                                      string
	Open                                                     bool
	Timeline                                                 []eventRow
	TimelineNote                                             string
}

type eventRow struct {
	Time, Kind, Actor, Detail, Hash, FullHash string
}

type kioskRow struct {
	Kiosk, Site, District, Provider, Open, Down, Availability string
	Bad                                                       bool
}

type coverageRow struct {
	Provider        string
	Kiosks, Covered int
	Coverage        string
	Bad             bool
}

type gapRow struct{ Kiosk, Provider, Gap string }

type scoreRow struct {
	Score string
	Count int
	Share string
}

type refillRow struct {
	Fault               string
	Incidents, Resolved int
}

// location is the report's timezone: the policy's, which the month's
// bounds are in (Asia/Shanghai unless the policy says otherwise).
func (m *Month) location() *time.Location {
	if !m.From.IsZero() {
		return m.From.Location()
	}
	return calendar.Shanghai
}

func (m *Month) compliance() *compliance.Report {
	if m.Compliance != nil {
		return m.Compliance
	}
	return &compliance.Report{By: map[string]map[string]*compliance.Stats{}}
}

func (m *Month) page(l *language) *page {
	c := m.compliance()
	loc := m.location()
	tz := loc.String()
	if tz == calendar.DefaultTimezone {
		tz = l.T("tz.shanghai")
	}
	p := &page{language: l, Lang: l.tag, Title: l.T("title"), Period: l.monthLabel(m.From, m.Month)}
	p.Policy = fmt.Sprintf("%s %s (%s %s)", l.T("policy"), m.PolicyName, l.T("version"), c.Policy)
	if l.code == "zh" {
		p.Policy = fmt.Sprintf("%s：%s（%s %s）", l.T("policy"), m.PolicyName, l.T("version"), c.Policy)
	}
	p.Generated = fmt.Sprintf("%s %s (%s)", l.T("generated"), m.Generated.In(loc).Format("2006-01-02 15:04"), tz)
	p.ChainOK = m.Chain.Err == ""
	switch {
	case p.ChainOK && m.Chain.FromSeq > 0:
		p.Chain = l.F("chain.okfrom", m.Chain.FromSeq, m.Chain.Events)
	case p.ChainOK:
		p.Chain = l.F("chain.ok", m.Chain.Events)
	default:
		p.Chain = l.F("chain.bad", m.Chain.Events, m.Chain.Err)
	}
	m.summary(p, c)
	m.charts(p, c)
	m.groups(p, c)
	m.breaches(p, c)
	m.rest(p)
	return p
}

func (l *language) pct(v float64, decimals int) string {
	return strconv.FormatFloat(v, 'f', decimals, 64) + "%"
}

func (l *language) compliancePct(s *compliance.Stats) (string, bool) {
	v, ok := s.Compliance()
	if !ok {
		return l.T("dash"), false
	}
	return l.pct(v, 1), v < ComplianceGoal
}

func (m *Month) summary(p *page, c *compliance.Report) {
	l := p.language
	t := &c.Total
	comp, compBad := l.compliancePct(t)
	p.Figures = []figure{
		{Label: l.T("fig.incidents"), Value: strconv.Itoa(t.Incidents),
			Note: l.F("fig.open", t.Open) + l.T("sep") + l.F("fig.kiosks", m.KiosksWithIncidents, m.Kiosks)},
		{Label: l.T("fig.compliance"), Value: comp, Note: l.F("fig.decided", t.Decided) + l.T("sep") +
			l.F("fig.goal", l.pct(ComplianceGoal, 0)), Bad: compBad},
		{Label: l.T("fig.breaches"), Value: strconv.Itoa(c.BreachCount), Bad: c.BreachCount > 0},
		{Label: l.T("fig.mtta"), Value: l.duration(t.MTTA())},
		{Label: l.T("fig.mttr"), Value: l.duration(t.MTTR())},
		{Label: l.T("fig.p90"), Value: l.duration(t.P90Repair())},
	}
	av := &m.Availability
	hasAvail := av.Kiosks > 0
	if hasAvail {
		p.Figures = append(p.Figures, figure{Label: l.T("fig.avail"), Value: l.pct(100*av.Fleet, 2),
			Note: l.F("fig.below", av.Below99, av.Below95), Bad: av.Below95 > 0})
	} else {
		p.Figures = append(p.Figures, figure{Label: l.T("fig.avail"), Value: l.T("dash")})
	}
	cov := &m.Inspection
	p.HasInspection = cov.Interval > 0
	covPct := l.T("dash")
	if p.HasInspection && cov.Kiosks > 0 {
		covPct = l.pct(100*float64(cov.Covered)/float64(cov.Kiosks), 1)
	}
	p.Figures = append(p.Figures, figure{Label: l.T("fig.coverage"), Value: covPct,
		Note: l.F("fig.covered", cov.Covered, cov.Kiosks), Bad: p.HasInspection && cov.Covered < cov.Kiosks})
	sat := figure{Label: l.T("fig.sat"), Value: l.T("dash")}
	if m.Satisfaction.Count > 0 {
		sat.Value = strconv.FormatFloat(m.Satisfaction.Mean, 'f', 1, 64) + " / 5"
		sat.Note = l.F("fig.satcount", m.Satisfaction.Count)
	}
	p.Figures = append(p.Figures, sat)

	// The same figures in sentences, for the reader who does not know what
	// MTTA stands for.
	if t.Incidents == 0 {
		p.Sentences = append(p.Sentences, l.F("s.noincidents", p.Period))
	} else {
		p.Sentences = append(p.Sentences, l.F("s.incidents", p.Period, t.Incidents, m.KiosksWithIncidents, m.Kiosks, t.Open))
		if t.Decided > 0 {
			p.Sentences = append(p.Sentences, l.F("s.compliance", t.Decided, t.Compliant, comp))
		} else {
			p.Sentences = append(p.Sentences, l.T("s.nodecided"))
		}
		if c.BreachCount > 0 {
			p.Sentences = append(p.Sentences, l.F("s.breaches", c.BreachCount))
		} else {
			p.Sentences = append(p.Sentences, l.T("s.nobreaches"))
		}
		// The times are of the measures that ended: say how many, and how
		// many incidents the repair times leave out.
		p.Sentences = append(p.Sentences, l.F("s.times", t.Response.Measured, l.duration(t.MTTA()), t.Repair.Measured,
			l.duration(t.MTTR()), l.duration(t.P90Repair()), t.Incidents-t.Repair.Measured))
	}
	if hasAvail {
		p.Sentences = append(p.Sentences, l.F("s.avail", l.pct(100*av.Fleet, 2), l.value("sev.", av.Severity), av.Below99))
	}
	if p.HasInspection {
		p.Sentences = append(p.Sentences, l.F("s.coverage", cov.Covered, cov.Kiosks, l.duration(cov.Interval), covPct,
			cov.Inspections, cov.Failed))
	} else {
		p.Sentences = append(p.Sentences, l.T("s.nocoverage"))
	}
	if m.Satisfaction.Count > 0 {
		p.Sentences = append(p.Sentences, l.F("s.sat", m.Satisfaction.Mean, m.Satisfaction.Count))
	} else {
		p.Sentences = append(p.Sentences, l.T("s.nosat"))
	}
	if len(c.MissingHolidays) > 0 {
		years := make([]string, len(c.MissingHolidays))
		for i, y := range c.MissingHolidays {
			years[i] = strconv.Itoa(y)
		}
		p.Warnings = append(p.Warnings, l.F("s.holidays", strings.Join(years, ", ")))
	}
}

// sortedGroups returns a dimension's groups, the most incidents first; the
// severities in their order of severity.
func sortedGroups(c *compliance.Report, dim string) []string {
	g := c.By[dim]
	names := slices.Collect(maps.Keys(g))
	if dim == compliance.BySeverity {
		slices.SortFunc(names, compareSeverity)
		return names
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(cmp.Compare(g[b].Incidents, g[a].Incidents), cmp.Compare(a, b))
	})
	return names
}

func compareSeverity(a, b string) int {
	rank := func(s string) int {
		if i := slices.Index(severityOrder, s); i >= 0 {
			return i
		}
		return len(severityOrder)
	}
	return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a, b))
}

func (m *Month) charts(p *page, c *compliance.Report) {
	l := p.language
	draw := func(title string, specs []barSpec, lo, hi, step float64, tickLabel func(float64) string, goal float64, goalLabel string) *chart {
		return barChart(title, specs, lo, hi, step, tickLabel, goal, goalLabel, l.F("chart.more", len(specs)-chartMaxBars),
			l.T("chart.nodata"))
	}
	var specs []barSpec
	// Compliance by provider, the worst first: the bars a manager acts on.
	providers := sortedGroups(c, compliance.ByProvider)
	type pv struct {
		name string
		v    float64
		ok   bool
	}
	var pvs []pv
	for _, name := range providers {
		v, ok := c.By[compliance.ByProvider][name].Compliance()
		pvs = append(pvs, pv{name, v, ok})
	}
	slices.SortStableFunc(pvs, func(a, b pv) int {
		if a.ok != b.ok {
			if a.ok {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.v, b.v)
	})
	for _, x := range pvs {
		s := c.By[compliance.ByProvider][x.name]
		spec := barSpec{label: l.name(x.name), v: math.NaN(), value: l.T("dash")}
		if x.ok {
			spec.v, spec.value, spec.class = x.v, fmt.Sprintf("%s (%d/%d)", l.pct(x.v, 1), s.Compliant, s.Decided), "ok"
			if x.v < ComplianceGoal {
				spec.class = "bad"
			}
		}
		specs = append(specs, spec)
	}
	p.Charts = append(p.Charts, draw(l.T("chart.compliance"), specs, 0, 100, 20, pctTick, ComplianceGoal, l.F("fig.goal", l.pct(ComplianceGoal, 0))))

	specs = specs[:0:0]
	maxCount := 0.0
	for _, sev := range sortedGroups(c, compliance.BySeverity) {
		s := c.By[compliance.BySeverity][sev]
		value := strconv.Itoa(s.Incidents)
		if s.Open > 0 {
			value += " (" + l.F("fig.open", s.Open) + ")"
		}
		specs = append(specs, barSpec{label: l.value("sev.", sev), value: value, v: float64(s.Incidents), class: "bar"})
		maxCount = math.Max(maxCount, float64(s.Incidents))
	}
	hi, step := niceScale(maxCount)
	p.Charts = append(p.Charts, draw(l.T("chart.severity"), specs, 0, hi, step, countTick, math.NaN(), ""))

	// Availability is mostly above 99%: on a 0-100% axis every bar would
	// look full. When all are at least 90% the axis starts there, and its
	// tick labels say so.
	specs = specs[:0:0]
	lo := 90.0
	districts := slices.Sorted(maps.Keys(m.Availability.ByDistrict))
	slices.SortStableFunc(districts, func(a, b string) int {
		return cmp.Compare(m.Availability.ByDistrict[a], m.Availability.ByDistrict[b])
	})
	for _, d := range districts {
		v := 100 * m.Availability.ByDistrict[d]
		if v < lo {
			lo = 0
		}
		class := "ok"
		switch {
		case v < 95:
			class = "bad"
		case v < 99:
			class = "warn"
		}
		specs = append(specs, barSpec{label: l.name(d), value: l.pct(v, 2), v: v, class: class})
	}
	tickStep := 2.0
	if lo == 0 {
		tickStep = 20
	}
	p.Charts = append(p.Charts, draw(l.T("chart.avail"), specs, lo, 100, tickStep, pctTick, math.NaN(), ""))

	// The satisfaction scores are drawn in their own section.
	specs = specs[:0:0]
	maxCount = 0
	if m.Satisfaction.Count > 0 {
		for s := 5; s >= 1; s-- {
			n := m.Satisfaction.Scores[s]
			specs = append(specs, barSpec{label: l.F("score", s), value: strconv.Itoa(n), v: float64(n), class: "bar"})
			maxCount = math.Max(maxCount, float64(n))
		}
		hi, step = niceScale(maxCount)
		p.SatChart = draw(l.T("chart.sat"), specs, 0, hi, step, countTick, math.NaN(), "")
	}
}

func (m *Month) groups(p *page, c *compliance.Report) {
	l := p.language
	table := func(dim, title string, limit int, avail map[string]float64) groupTable {
		names := sortedGroups(c, dim)
		gt := groupTable{Title: title, Avail: avail != nil}
		if limit > 0 && len(names) > limit {
			gt.Note = l.F("top", limit, len(names))
			names = names[:limit]
		}
		// A provider or district without incidents still has its
		// availability: listed after the others, as the CSV lists it.
		var quiet []string
		for name := range avail {
			if c.By[dim][name] == nil {
				quiet = append(quiet, name)
			}
		}
		slices.Sort(quiet)
		names = append(names, quiet...)
		for _, name := range names {
			s := c.By[dim][name]
			if s == nil {
				s = &compliance.Stats{}
			}
			label := l.name(name)
			if dim == compliance.BySeverity {
				label = l.value("sev.", name)
			}
			row := groupRow{Name: label, Incidents: s.Incidents, Open: s.Open, Decided: s.Decided,
				MTTA: l.duration(s.MTTA()), MTTR: l.duration(s.MTTR()), P90: l.duration(s.P90Repair()),
				Breached: fmt.Sprintf("%d / %d / %d", s.Response.Breached, s.Arrival.Breached, s.Repair.Breached)}
			row.Compliance, row.Bad = l.compliancePct(s)
			if avail != nil {
				row.Availability = l.T("dash")
				if v, ok := avail[name]; ok {
					row.Availability = l.pct(100*v, 2)
				}
			}
			gt.Rows = append(gt.Rows, row)
		}
		return gt
	}
	p.Groups = []groupTable{
		table(compliance.ByProvider, l.T("by.provider"), 0, m.Availability.ByProvider),
		table(compliance.ByDistrict, l.T("by.district"), 0, m.Availability.ByDistrict),
		table(compliance.BySeverity, l.T("by.severity"), 0, nil),
		table(compliance.BySite, l.F("by.site", SiteRows), SiteRows, nil),
	}
	for cat, n := range m.ByCategory {
		p.Categories = append(p.Categories, nameCount{Name: l.value("cat.", cat), Count: n})
	}
	slices.SortFunc(p.Categories, func(a, b nameCount) int { return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Name, b.Name)) })
}

func (m *Month) breaches(p *page, c *compliance.Report) {
	l := p.language
	loc := m.location()
	shown := map[int64]bool{}
	for _, b := range c.Breaches {
		r := breachRow{Incident: b.Incident, Kiosk: b.Kiosk, Site: l.name(b.Site), Provider: l.name(b.Provider),
			Fault: b.Fault, Severity: l.value("sev.", b.Severity), Detected: b.Detected.In(loc).Format("2006-01-02 15:04"),
			Kind: b.Kind, Target: l.value("target.", b.Kind), Allowed: l.duration(b.Measure.Target.Within), Took: l.duration(b.Measure.Elapsed),
			Over: l.duration(b.Measure.Over), Open: b.Open}
		// An incident breaching two targets shows its evidence once.
		switch events, ok := m.Timelines[b.Incident]; {
		case shown[b.Incident]:
			r.TimelineNote = l.T("timeline.seen")
		case !ok:
			r.TimelineNote = l.T("timeline.missing")
		default:
			shown[b.Incident] = true
			for _, e := range events {
				r.Timeline = append(r.Timeline, eventRow{Time: e.At.In(loc).Format("2006-01-02 15:04:05"),
					Kind: l.value("kind.", e.Kind), Actor: e.Actor, Detail: detail(l, loc, e), Hash: cut(e.Hash, 13),
					FullHash: e.Hash})
			}
		}
		p.Breaches = append(p.Breaches, r)
	}
	if rest := c.BreachCount - len(c.Breaches); rest > 0 {
		p.BreachNote = l.F("breaches.more", rest, len(c.Breaches), c.BreachCount)
	}
}

// detail says what an event carried beyond its kind.
func detail(l *language, loc *time.Location, e ledger.Event) string {
	d := e.Data
	var parts []string
	add := func(key string, args ...any) { parts = append(parts, l.F(key, args...)) }
	switch e.Kind {
	case ledger.KindOpened:
		add("d.fault", d.Fault)
		add("d.severity", l.value("sev.", d.Severity))
		if d.Channel != "" {
			add("d.channel", l.value("channel.", d.Channel))
		}
	case ledger.KindReported:
		add("d.channel", l.value("channel.", d.Channel))
	case ledger.KindDispatched:
		if !d.CommittedArrival.IsZero() {
			add("d.committed", d.CommittedArrival.In(loc).Format("2006-01-02 15:04"))
		}
	case ledger.KindArrived:
		if d.Proof != "" {
			add("d.proof", l.value("proof.", d.Proof))
		}
	case ledger.KindSeverity:
		add("d.severity", l.value("sev.", d.Severity))
	case ledger.KindClosed:
		if d.Satisfaction > 0 {
			add("d.satisfaction", d.Satisfaction)
		}
	}
	if d.Reason != "" && e.Kind != ledger.KindOpened {
		add("d.reason", l.value("reason.", d.Reason))
	}
	if d.Approver != "" {
		add("d.approver", d.Approver)
	}
	if d.Note != "" {
		add("d.note", d.Note)
	}
	return strings.Join(parts, l.T("sep"))
}

func (m *Month) rest(p *page) {
	l := p.language
	av := &m.Availability
	p.AvailIntro = l.F("avail.intro", l.value("sev.", av.Severity))
	for _, k := range av.Worst {
		p.Worst = append(p.Worst, kioskRow{Kiosk: k.Kiosk, Site: l.name(k.Site), District: l.name(k.District),
			Provider: l.name(k.Provider), Open: l.duration(k.Open), Down: l.duration(k.Down),
			Availability: l.pct(100*k.Ratio, 2), Bad: k.Ratio < 0.95})
	}
	cov := &m.Inspection
	if p.HasInspection {
		p.InspIntro = l.F("insp.intro", l.duration(cov.Interval))
		for _, prov := range slices.Sorted(maps.Keys(cov.ByProvider)) {
			n := cov.ByProvider[prov]
			row := coverageRow{Provider: l.name(prov), Kiosks: n[0], Covered: n[1], Coverage: l.T("dash"), Bad: n[1] < n[0]}
			if n[0] > 0 {
				row.Coverage = l.pct(100*float64(n[1])/float64(n[0]), 1)
			}
			p.Coverage = append(p.Coverage, row)
		}
		for _, g := range cov.Uncovered {
			gap := l.duration(g.Longest)
			if g.Never {
				gap = l.F("gap.never", gap)
			}
			p.Uncovered = append(p.Uncovered, gapRow{Kiosk: g.Kiosk, Provider: l.name(g.Provider), Gap: gap})
		}
	}
	sat := &m.Satisfaction
	if sat.Count > 0 {
		p.SatMean = l.F("s.sat", sat.Mean, sat.Count)
		for s := 5; s >= 1; s-- {
			p.Scores = append(p.Scores, scoreRow{Score: l.F("score", s), Count: sat.Scores[s],
				Share: l.pct(100*float64(sat.Scores[s])/float64(sat.Count), 1)})
		}
	}
	for fault, n := range m.Refills {
		p.Refills = append(p.Refills, refillRow{Fault: fault, Incidents: n.Incidents, Resolved: n.Resolved})
	}
	slices.SortFunc(p.Refills, func(a, b refillRow) int {
		return cmp.Or(cmp.Compare(b.Incidents, a.Incidents), cmp.Compare(a.Fault, b.Fault))
	})
}

// pageTemplate is the page. Its CSS prints on A4: the big sections start a
// new page, table headers repeat on each page, and rows are not split.
// The charts are drawn by the "chart" template from the geometry svg.go
// computes; the SVG is written as XML (every element closed) so it is
// also valid outside the page.
var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} {{.Period}}</title>
<style>
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "Microsoft YaHei", "PingFang SC", sans-serif;
  font-size: 10.5pt; line-height: 1.45; color: #222; max-width: 200mm; margin: 0 auto; padding: 8mm 0;
  -webkit-print-color-adjust: exact; print-color-adjust: exact; }
h1 { font-size: 19pt; margin: 0 0 2pt; }
h2 { font-size: 14pt; border-bottom: 2px solid #2d4a6b; padding-bottom: 2pt; margin: 14pt 0 6pt; }
h3 { font-size: 11.5pt; margin: 12pt 0 4pt; }
p { margin: 3pt 0; }
.meta { color: #555; margin: 0; }
.integrity { margin: 6pt 0 0; padding: 4pt 6pt; border-left: 4px solid #2e7d32; background: #f1f8f1; }
.integrity.failed { border-color: #b00020; background: #fdecee; color: #b00020; font-weight: bold; }
.warning { color: #8a5300; }
.figures { display: grid; grid-template-columns: repeat(3, 1fr); gap: 6pt; margin: 8pt 0; }
.figure { border: 1px solid #c9d2dc; border-radius: 4px; padding: 5pt 7pt; break-inside: avoid; }
.figure .v { font-size: 16pt; font-weight: bold; }
.figure.bad .v { color: #b00020; }
.figure .l, .figure .n { font-size: 9pt; color: #555; }
.sentences p { margin: 2pt 0; }
section.page { break-before: page; }
.chart { break-inside: avoid; margin: 0 0 8pt; }
.chart svg { display: block; max-width: 100%; height: auto; }
svg text { font-size: 12px; fill: #222; }
svg .ok, svg .bar { fill: #3b7dd8; }
svg .warn { fill: #e8a33d; }
svg .bad { fill: #d64545; }
svg .grid { stroke: #dde3ea; stroke-width: 1; }
svg .axis { stroke: #889; stroke-width: 1; }
svg .goal { stroke: #b00020; stroke-width: 1.5; stroke-dasharray: 4 3; }
svg text.goal { fill: #b00020; stroke: none; }
svg text.tick { fill: #666; font-size: 10px; }
table.breaches th { white-space: nowrap; }
table { border-collapse: collapse; width: 100%; font-size: 9pt; margin: 4pt 0 10pt; }
th, td { border: 1px solid #c9d2dc; padding: 2pt 4pt; text-align: left; vertical-align: top; }
th { background: #eef2f6; }
.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
td.bad, span.bad { color: #b00020; font-weight: bold; }
tr.breach td { border-top: 2px solid #9aa8b8; }
tr.timeline > td { background: #fafbfc; padding: 2pt 4pt 6pt 16pt; }
table.events { margin: 2pt 0 0; font-size: 8.5pt; }
.hash { font-family: "Noto Sans Mono CJK SC", "DejaVu Sans Mono", monospace; font-size: 8pt; color: #555; }
.note { color: #555; font-size: 9pt; }
.nw { white-space: nowrap; }
figcaption { margin: 0 0 2pt; }
@media print { body { padding: 0; max-width: none; } }
</style>
</head>
<body>
<header>
<h1>{{.Title}} · {{.Period}}</h1>
<p class="meta">{{.Policy}}</p>
<p class="meta">{{.Generated}}</p>
<p class="integrity{{if not .ChainOK}} failed{{end}}" id="integrity">{{.Chain}}</p>
</header>

<section id="summary">
<h2>{{.T "summary"}}</h2>
<div class="figures">
{{- range .Figures}}
<div class="figure{{if .Bad}} bad{{end}}"><div class="l">{{.Label}}</div><div class="v">{{.Value}}</div>{{with .Note}}<div class="n">{{.}}</div>{{end}}</div>
{{- end}}
</div>
<div class="sentences">
{{- range .Sentences}}
<p>{{.}}</p>
{{- end}}
{{- range .Warnings}}
<p class="warning">{{.}}</p>
{{- end}}
</div>
</section>

<section id="charts">
<h2>{{.T "charts"}}</h2>
{{- range .Charts}}
{{template "chart" .}}
{{- end}}
</section>

<section id="tables" class="page">
<h2>{{.T "tables"}}</h2>
{{- range .Groups}}
<h3>{{.Title}}</h3>
{{- if .Rows}}
<table class="group">
<thead><tr><th>{{$.T "col.name"}}</th><th class="n">{{$.T "col.incidents"}}</th><th class="n">{{$.T "col.open"}}</th><th class="n">{{$.T "col.decided"}}</th><th class="n">{{$.T "col.compliance"}}</th><th class="n">{{$.T "col.mtta"}}</th><th class="n">{{$.T "col.mttr"}}</th><th class="n">{{$.T "col.p90"}}</th><th class="n">{{$.T "col.breached"}}</th>{{if .Avail}}<th class="n">{{$.T "col.avail"}}</th>{{end}}</tr></thead>
<tbody>
{{- range .Rows}}
<tr><td>{{.Name}}</td><td class="n">{{.Incidents}}</td><td class="n">{{.Open}}</td><td class="n">{{.Decided}}</td><td class="n{{if .Bad}} bad{{end}}">{{.Compliance}}</td><td class="n">{{.MTTA}}</td><td class="n">{{.MTTR}}</td><td class="n">{{.P90}}</td><td class="n">{{.Breached}}</td>{{if .Availability}}<td class="n">{{.Availability}}</td>{{end}}</tr>
{{- end}}
</tbody>
</table>
{{- with .Note}}<p class="note">{{.}}</p>{{end}}
{{- else}}
<p class="note">{{$.T "none"}}</p>
{{- end}}
{{- end}}
<h3>{{.T "by.category"}}</h3>
{{- if .Categories}}
<table class="categories">
<thead><tr><th>{{.T "col.category"}}</th><th class="n">{{.T "col.incidents"}}</th></tr></thead>
<tbody>
{{- range .Categories}}
<tr><td>{{.Name}}</td><td class="n">{{.Count}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p class="note">{{.T "none"}}</p>
{{- end}}
</section>

<section id="breaches" class="page">
<h2>{{.T "breaches"}}</h2>
{{- if .Breaches}}
<p class="note">{{.T "breaches.intro"}}</p>
<table class="breaches">
<thead><tr><th>{{.T "col.incident"}}</th><th>{{.T "col.kiosk"}}</th><th>{{.T "col.site"}}</th><th>{{.T "col.provider"}}</th><th>{{.T "col.fault"}}</th><th>{{.T "col.severity"}}</th><th>{{.T "col.detected"}}</th><th>{{.T "col.target"}}</th><th class="n">{{.T "col.allowed"}}</th><th class="n">{{.T "col.took"}}</th><th class="n">{{.T "col.over"}}</th></tr></thead>
<tbody>
{{- range .Breaches}}
<tr class="breach" id="breach-{{.Incident}}-{{.Kind}}"><td class="nw">#{{.Incident}}</td><td class="nw">{{.Kiosk}}</td><td>{{.Site}}</td><td>{{.Provider}}</td><td>{{.Fault}}</td><td class="nw">{{.Severity}}</td><td class="n">{{.Detected}}</td><td class="nw">{{.Target}}</td><td class="n">{{.Allowed}}</td><td class="n">{{.Took}}</td><td class="n bad">{{.Over}}{{if .Open}}<br><span class="note">{{$.T "still.open"}}</span>{{end}}</td></tr>
{{- if .Timeline}}
<tr class="timeline"><td colspan="11">
<strong>{{$.T "timeline"}} #{{.Incident}}</strong>
<table class="events">
<thead><tr><th>{{$.T "col.time"}}</th><th>{{$.T "col.event"}}</th><th>{{$.T "col.actor"}}</th><th>{{$.T "col.detail"}}</th><th>{{$.T "col.hash"}}</th></tr></thead>
<tbody>
{{- range .Timeline}}
<tr><td class="n">{{.Time}}</td><td>{{.Kind}}</td><td>{{.Actor}}</td><td>{{.Detail}}</td><td class="hash" title="{{.FullHash}}">{{.Hash}}</td></tr>
{{- end}}
</tbody>
</table>
</td></tr>
{{- else}}
<tr class="timeline"><td colspan="11" class="note">{{.TimelineNote}}</td></tr>
{{- end}}
{{- end}}
</tbody>
</table>
{{- with .BreachNote}}
<p class="note" id="breaches-more">{{.}}</p>
{{- end}}
{{- else}}
<p>{{.T "breaches.none"}}</p>
{{- end}}
</section>

<section id="availability" class="page">
<h2>{{.T "availability"}}</h2>
<p class="note">{{.AvailIntro}}</p>
<h3>{{.T "avail.worst"}}</h3>
{{- if .Worst}}
<table class="worst">
<thead><tr><th>{{.T "col.kiosk"}}</th><th>{{.T "col.site"}}</th><th>{{.T "col.district"}}</th><th>{{.T "col.provider"}}</th><th class="n">{{.T "col.opentime"}}</th><th class="n">{{.T "col.down"}}</th><th class="n">{{.T "col.avail"}}</th></tr></thead>
<tbody>
{{- range .Worst}}
<tr><td>{{.Kiosk}}</td><td>{{.Site}}</td><td>{{.District}}</td><td>{{.Provider}}</td><td class="n">{{.Open}}</td><td class="n">{{.Down}}</td><td class="n{{if .Bad}} bad{{end}}">{{.Availability}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p>{{.T "avail.none"}}</p>
{{- end}}
</section>

<section id="inspection">
<h2>{{.T "inspection"}}</h2>
{{- if .HasInspection}}
<p class="note">{{.InspIntro}}</p>
<h3>{{.T "insp.byprovider"}}</h3>
<table class="coverage">
<thead><tr><th>{{.T "col.provider"}}</th><th class="n">{{.T "col.kiosks"}}</th><th class="n">{{.T "col.covered"}}</th><th class="n">{{.T "col.coverage"}}</th></tr></thead>
<tbody>
{{- range .Coverage}}
<tr><td>{{.Provider}}</td><td class="n">{{.Kiosks}}</td><td class="n">{{.Covered}}</td><td class="n{{if .Bad}} bad{{end}}">{{.Coverage}}</td></tr>
{{- end}}
</tbody>
</table>
<h3>{{.T "insp.uncovered"}}</h3>
{{- if .Uncovered}}
<table class="uncovered">
<thead><tr><th>{{.T "col.kiosk"}}</th><th>{{.T "col.provider"}}</th><th class="n">{{.T "col.gap"}}</th></tr></thead>
<tbody>
{{- range .Uncovered}}
<tr><td>{{.Kiosk}}</td><td>{{.Provider}}</td><td class="n bad">{{.Gap}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p>{{.T "insp.alluncovered"}}</p>
{{- end}}
{{- else}}
<p>{{.T "s.nocoverage"}}</p>
{{- end}}
</section>

<section id="satisfaction">
<h2>{{.T "satisfaction"}}</h2>
{{- if .Scores}}
<p>{{.SatMean}}</p>
{{- with .SatChart}}
{{template "chart" .}}
{{- end}}
<table class="scores">
<thead><tr><th>{{.T "col.score"}}</th><th class="n">{{.T "col.count"}}</th><th class="n">%</th></tr></thead>
<tbody>
{{- range .Scores}}
<tr><td>{{.Score}}</td><td class="n">{{.Count}}</td><td class="n">{{.Share}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p>{{.T "s.nosat"}}</p>
{{- end}}
</section>

<section id="refills">
<h2>{{.T "refills"}}</h2>
{{- if .Refills}}
<table class="refills">
<thead><tr><th>{{.T "col.fault"}}</th><th class="n">{{.T "col.incidents"}}</th><th class="n">{{.T "col.resolved"}}</th></tr></thead>
<tbody>
{{- range .Refills}}
<tr><td>{{.Fault}}</td><td class="n">{{.Incidents}}</td><td class="n">{{.Resolved}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p>{{.T "refills.none"}}</p>
{{- end}}
</section>
</body>
</html>
{{define "chart"}}<figure class="chart">
<figcaption><strong>{{.Title}}</strong>{{if not .Bars}} · {{.Note}}{{else}}{{with .Note}} · {{.}}{{end}}{{end}}</figcaption>
{{- if .Bars}}
<svg xmlns="http://www.w3.org/2000/svg" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-label="{{.Title}}">
<title>{{.Title}}</title>
{{- range .Ticks}}
<line class="grid" x1="{{.X}}" y1="{{$.PlotBottom}}" x2="{{.X}}" y2="14" />
<text class="tick" x="{{.X}}" y="{{$.PlotBottom}}" dy="14" text-anchor="middle">{{.Label}}</text>
{{- end}}
<line class="axis" x1="{{.X0}}" y1="14" x2="{{.X0}}" y2="{{.PlotBottom}}" />
{{- range .Bars}}
<text x="{{$.X0}}" dx="-6" y="{{.TextY}}" text-anchor="end">{{.Label}}</text>
{{- if .W}}
<rect class="{{.Class}}" x="{{$.X0}}" y="{{.Y}}" width="{{.W}}" height="{{$.BarH}}" />
{{- end}}
<text x="{{.ValueX}}" y="{{.TextY}}">{{.Value}}</text>
{{- end}}
{{- with .Goal}}
<line class="goal" x1="{{.X}}" y1="12" x2="{{.X}}" y2="{{$.PlotBottom}}" />
<text class="goal" x="{{.X}}" y="10" text-anchor="middle">{{.Label}}</text>
{{- end}}
</svg>
{{- end}}
</figure>{{end}}`))
