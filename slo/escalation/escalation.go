// Package escalation watches the open incidents' clocks: at 50, 75 and 90%
// of a target's allowed time, and at its breach, it raises an alert that
// goes to Alertmanager beside the graded faults', so that someone acts
// before the breach; and it writes the open incidents' figures as
// kioskmon_sla_* series into the storage for Grafana.
//
// The alerts carry the incident's kiosk, site, district and provider (for
// routing to the provider) but name the fault incident_fault, not fault:
// they are about an incident, so Alertmanager's inhibitions between faults
// do not touch them and the ledger's webhook does not open incidents of
// them.
package escalation

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/kioskmon/kioskmon/alerting/evaluator"
	"github.com/kioskmon/kioskmon/alerting/inspection"
	"github.com/kioskmon/kioskmon/slo/compliance"
	"github.com/kioskmon/kioskmon/slo/ledger"
)

// Alert names: a target at risk (a warning level crossed) and one breached.
const (
	AlertAtRisk   = "SLATargetAtRisk"
	AlertBreached = "SLATargetBreached"
)

// Series written every check.
const (
	// MetricUsed is the fraction of a running target's allowed time used,
	// per open incident and target (response, arrival, repair).
	MetricUsed = "kioskmon_sla_target_used_ratio"
	// MetricOpen counts open incidents by provider and severity.
	MetricOpen = "kioskmon_sla_open_incidents"
	// MetricOpenBreached counts open incidents past a target's deadline.
	MetricOpenBreached = "kioskmon_sla_open_breached_incidents"
	// Month to date, by provider: incidents opened this month, how many
	// are decided and compliant (compliance is
	// sum(compliant)/sum(decided)), breaches by target, MTTA and MTTR.
	MetricMonthIncidents = "kioskmon_sla_month_incidents"
	MetricMonthDecided   = "kioskmon_sla_month_decided_incidents"
	MetricMonthCompliant = "kioskmon_sla_month_compliant_incidents"
	MetricMonthBreaches  = "kioskmon_sla_month_breaches"
	MetricMonthMTTA      = "kioskmon_sla_month_mtta_seconds"
	MetricMonthMTTR      = "kioskmon_sla_month_mttr_seconds"
)

// Config configures a Watcher.
type Config struct {
	// Every is how often the open incidents are checked. Default 1m.
	Every time.Duration
	// Levels are the warning levels. Default compliance.WarningLevels.
	Levels []float64
	// KeepResolved is how long a warning that no longer holds is still
	// sent, resolved, so Alertmanager closes it. Default 15m.
	KeepResolved time.Duration
	// ExternalURL links an alert to its incident.
	ExternalURL string
	// MonthEvery is how often the month-to-date figures are computed and
	// written. Default 5m.
	MonthEvery time.Duration
}

// Watcher checks the open incidents.
type Watcher struct {
	cfg    Config
	ledger *ledger.Ledger
	engine func() (*compliance.Engine, error)
	writer inspection.SeriesWriter
	logger log.Logger

	checks, failures *metrics.Counter
	raised           *metrics.Counter

	lastMonth time.Time // when the month-to-date figures were last written

	mu     sync.Mutex
	alerts map[string]*evaluator.Alert // by incident/target
}

// New returns a Watcher. engine returns the compliance engine for the
// current policy and inventory; writer, if not nil, receives the series.
func New(cfg Config, l *ledger.Ledger, engine func() (*compliance.Engine, error), writer inspection.SeriesWriter,
	logger log.Logger, self *metrics.Set) *Watcher {
	if cfg.Every <= 0 {
		cfg.Every = time.Minute
	}
	if len(cfg.Levels) == 0 {
		cfg.Levels = compliance.WarningLevels
	}
	if cfg.KeepResolved <= 0 {
		cfg.KeepResolved = 15 * time.Minute
	}
	if cfg.MonthEvery <= 0 {
		cfg.MonthEvery = 5 * time.Minute
	}
	return &Watcher{cfg: cfg, ledger: l, engine: engine, writer: writer, logger: logger,
		checks:   self.NewCounter(`kioskmon_sla_escalation_checks_total`),
		failures: self.NewCounter(`kioskmon_sla_escalation_check_failures_total`),
		raised:   self.NewCounter(`kioskmon_sla_escalations_total`),
		alerts:   map[string]*evaluator.Alert{}}
}

// Run checks every cfg.Every until ctx is done.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.cfg.Every)
	defer t.Stop()
	for {
		if err := w.Check(ctx, time.Now()); err != nil && ctx.Err() == nil {
			level.Warn(w.logger).Log("msg", "SLA escalation check failed; retrying at the next tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check computes every open incident's figures as of now, updates the
// alerts and writes the series.
func (w *Watcher) Check(ctx context.Context, now time.Time) error {
	w.checks.Inc()
	err := w.check(ctx, now)
	if err != nil {
		w.failures.Inc()
	}
	return err
}

func (w *Watcher) check(ctx context.Context, now time.Time) error {
	engine, err := w.engine()
	if err != nil {
		return err
	}
	open, err := w.ledger.Incidents(ctx, ledger.Filter{Open: true, Limit: math.MaxInt32})
	if err != nil {
		return err
	}
	type group struct{ provider, severity string }
	openCount := map[group]int{}
	breachedCount := map[[2]string]int{}
	var series []inspection.Series
	seen := map[string]bool{}
	var raised []*evaluator.Alert
	for _, inc := range open {
		_, events, err := w.ledger.Incident(ctx, inc.ID)
		if err != nil {
			return err
		}
		r, err := engine.Incident(events, now)
		if err != nil {
			return fmt.Errorf("incident %d: %w", inc.ID, err)
		}
		openCount[group{inc.Provider, r.Severity}]++
		for _, t := range []struct {
			name string
			m    compliance.Measure
		}{{"response", r.Response}, {"arrival", r.Arrival}, {"repair", r.Repair}} {
			if t.m.Status != compliance.Running && t.m.Status != compliance.Breached {
				continue
			}
			series = append(series, inspection.Series{At: now, Value: t.m.Used, Labels: incidentLabels(MetricUsed, inc, r.Severity, t.name)})
			if t.m.Status == compliance.Breached {
				breachedCount[[2]string{inc.Provider, t.name}]++
			}
			// Only a clock still running can be helped: an acknowledgement
			// that came late is a breach for the report, not a page; nor is a
			// paused clock, which has no deadline until it resumes.
			crossed := t.m.Crossed(w.cfg.Levels)
			if !t.m.End.IsZero() || (crossed == 0 && t.m.Status != compliance.Breached) ||
				(t.m.Status == compliance.Running && t.m.Deadline.IsZero()) {
				continue
			}
			key := strconv.FormatInt(inc.ID, 10) + "/" + t.name
			seen[key] = true
			if a := w.raise(key, inc, r, t.name, t.m, crossed, now, engine.Policy().Location()); a != nil {
				raised = append(raised, a)
			}
		}
	}
	w.retire(seen, now)
	for g, n := range openCount {
		series = append(series, inspection.Series{At: now, Value: float64(n), Labels: []evaluator.Label{
			{Name: "__name__", Value: MetricOpen}, {Name: "provider", Value: g.provider}, {Name: "severity", Value: g.severity}}})
	}
	for g, n := range breachedCount {
		series = append(series, inspection.Series{At: now, Value: float64(n), Labels: []evaluator.Label{
			{Name: "__name__", Value: MetricOpenBreached}, {Name: "provider", Value: g[0]}, {Name: "target", Value: g[1]}}})
	}
	for _, a := range raised {
		level.Info(w.logger).Log("msg", "SLA escalation", "incident", a.Labels["incident"], "target", a.Labels["target"],
			"level", a.Labels["escalation"], "kiosk", a.Labels["kiosk"], "provider", a.Labels["provider"])
	}
	if w.writer != nil && now.Sub(w.lastMonth) >= w.cfg.MonthEvery {
		month, err := monthToDate(ctx, engine, w.ledger, now)
		if err != nil {
			return fmt.Errorf("month-to-date SLA figures: %w", err)
		}
		series = append(series, month...)
		w.lastMonth = now
	}
	if w.writer != nil && len(series) > 0 {
		if err := w.writer.WriteSeries(series); err != nil {
			return fmt.Errorf("write the SLA series: %w", err)
		}
	}
	return nil
}

func incidentLabels(name string, inc ledger.Incident, severity, target string) []evaluator.Label {
	return []evaluator.Label{{Name: "__name__", Value: name}, {Name: "incident", Value: strconv.FormatInt(inc.ID, 10)},
		{Name: "kiosk", Value: inc.Kiosk}, {Name: "site", Value: inc.Site}, {Name: "district", Value: inc.District},
		{Name: "provider", Value: inc.Provider}, {Name: "fault", Value: inc.Fault}, {Name: "severity", Value: severity},
		{Name: "target", Value: target}}
}

// levelName is how an escalation level reads in the alert: 50%, 75%, 90%
// or breached.
func levelName(crossed float64, breached bool) string {
	if breached {
		return "breached"
	}
	return strconv.FormatFloat(crossed*100, 'f', -1, 64) + "%"
}

// raise updates the alert of key and returns it if it reached a new level.
func (w *Watcher) raise(key string, inc ledger.Incident, r compliance.Result, target string, m compliance.Measure,
	crossed float64, now time.Time, loc *time.Location) *evaluator.Alert {
	breached := m.Status == compliance.Breached
	name, urgency := AlertAtRisk, "warning"
	if breached {
		name, urgency = AlertBreached, "critical"
	} else if crossed >= 0.9 {
		urgency = "critical"
	}
	esc := levelName(crossed, breached)
	w.mu.Lock()
	defer w.mu.Unlock()
	a := w.alerts[key]
	if a != nil && a.State == evaluator.StateFiring && a.Labels["escalation"] == esc {
		a.Value, a.LastSeenAt = m.Used, now
		return nil
	}
	// A new level is a new alert (new labels): Alertmanager notifies it,
	// and the old level's alert is resolved.
	if a != nil && a.State == evaluator.StateFiring {
		a.State, a.ResolvedAt = evaluator.StateInactive, now
		w.alerts[key+"@"+a.Labels["escalation"]] = a
	}
	labels := map[string]string{"alertname": name, "incident": strconv.FormatInt(inc.ID, 10), "kiosk": inc.Kiosk,
		"site": inc.Site, "district": inc.District, "provider": inc.Provider, "incident_fault": inc.Fault, "target": target,
		"escalation": esc, "urgency": urgency, "incident_severity": r.Severity}
	deadline := m.Deadline.In(loc).Format("2006-01-02 15:04 MST")
	summary := fmt.Sprintf("incident %d (%s on %s): %s target %s used %.0f%%, due %s", inc.ID, inc.Fault, inc.Kiosk, target,
		m.Target.Within, 100*m.Used, deadline)
	if breached {
		summary = fmt.Sprintf("incident %d (%s on %s): %s target %s breached by %s", inc.ID, inc.Fault, inc.Kiosk, target,
			m.Target.Within, m.Over.Round(time.Minute))
	}
	ann := map[string]string{"summary": summary, "deadline": m.Deadline.UTC().Format(time.RFC3339)}
	if w.cfg.ExternalURL != "" {
		ann["incident_url"] = fmt.Sprintf("%s/api/v1/incidents/%d", w.cfg.ExternalURL, inc.ID)
	}
	na := &evaluator.Alert{Rule: name, Labels: labels, Annotations: ann, State: evaluator.StateFiring, Value: m.Used,
		ActiveAt: now, FiredAt: now, LastSeenAt: now}
	w.alerts[key] = na
	w.raised.Inc()
	return na
}

// retire resolves the warnings of targets no longer at risk (met, or the
// incident resolved) and forgets resolved ones after KeepResolved.
func (w *Watcher) retire(seen map[string]bool, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for key, a := range w.alerts {
		if a.State == evaluator.StateFiring && !seen[key] {
			a.State, a.ResolvedAt = evaluator.StateInactive, now
		}
		if a.State == evaluator.StateInactive && now.Sub(a.ResolvedAt) > w.cfg.KeepResolved {
			delete(w.alerts, key)
		}
	}
}

// Alerts returns the escalation alerts, firing and recently resolved, for
// the notifier.
func (w *Watcher) Alerts() []evaluator.Alert {
	w.mu.Lock()
	defer w.mu.Unlock()
	keys := slices.Sorted(maps.Keys(w.alerts))
	out := make([]evaluator.Alert, 0, len(keys))
	for _, k := range keys {
		out = append(out, *w.alerts[k])
	}
	return out
}

// monthToDate is the figures of the incidents opened this month (in the
// policy's timezone), by provider, as series at now.
func monthToDate(ctx context.Context, engine *compliance.Engine, l *ledger.Ledger, now time.Time) ([]inspection.Series, error) {
	local := now.In(engine.Policy().Location())
	from := time.Date(local.Year(), local.Month(), 1, 0, 0, 0, 0, local.Location())
	rep, err := engine.Report(ctx, l, from, from.AddDate(0, 1, 0), now)
	if err != nil {
		return nil, err
	}
	var out []inspection.Series
	add := func(name string, v float64, labels ...evaluator.Label) {
		out = append(out, inspection.Series{At: now, Value: v,
			Labels: append([]evaluator.Label{{Name: "__name__", Value: name}}, labels...)})
	}
	for _, provider := range slices.Sorted(maps.Keys(rep.By[compliance.ByProvider])) {
		st := rep.By[compliance.ByProvider][provider]
		p := evaluator.Label{Name: "provider", Value: provider}
		add(MetricMonthIncidents, float64(st.Incidents), p)
		add(MetricMonthDecided, float64(st.Decided), p)
		add(MetricMonthCompliant, float64(st.Compliant), p)
		add(MetricMonthBreaches, float64(st.Response.Breached), p, evaluator.Label{Name: "target", Value: "response"})
		add(MetricMonthBreaches, float64(st.Arrival.Breached), p, evaluator.Label{Name: "target", Value: "arrival"})
		add(MetricMonthBreaches, float64(st.Repair.Breached), p, evaluator.Label{Name: "target", Value: "repair"})
		if st.Response.Measured > 0 {
			add(MetricMonthMTTA, st.MTTA().Seconds(), p)
		}
		if st.Repair.Measured > 0 {
			add(MetricMonthMTTR, st.MTTR().Seconds(), p)
		}
	}
	return out, nil
}
