// Package evaluator evaluates the compiled rulebook in process, with
// Prometheus alerting semantics (pending, firing, resolved, for,
// keep_firing_for), holds back what the standards say is not a fault
// (a kiosk in service mode, peripherals of an offline kiosk, a closed
// site's switched-off kiosks), keeps alert state across restarts, and hands
// every transition to its sinks (the Alertmanager notifier, the SLA ledger).
package evaluator

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/prometheus/model/rulefmt"

	"github.com/kioskmon/kioskmon/alerting/rulebook"
	"github.com/kioskmon/kioskmon/faults"
	"github.com/kioskmon/kioskmon/internal/atomicfile"
)

// Label is a name and a value.
type Label struct{ Name, Value string }

// Sample is one series of a query result.
type Sample struct {
	Labels []Label
	Value  float64
}

// Querier answers instant queries; the embedded storage is one.
type Querier interface {
	Query(ctx context.Context, q string, at time.Time) ([]Sample, error)
}

// States of an alert.
const (
	StatePending  = "pending"
	StateFiring   = "firing"
	StateInactive = "inactive" // resolved
)

// Alert is one alert instance of a rule.
type Alert struct {
	Fingerprint uint64            `json:"fingerprint"`
	Rule        string            `json:"rule"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	Value       float64           `json:"value"`
	// ActiveAt is when the condition started (the alert's start for
	// Alertmanager and the SLA ledger); it survives restarts.
	ActiveAt   time.Time `json:"activeAt"`
	FiredAt    time.Time `json:"firedAt,omitzero"`
	ResolvedAt time.Time `json:"resolvedAt,omitzero"`
	// LastSeenAt is the last evaluation whose result held the alert.
	LastSeenAt time.Time `json:"lastSeenAt"`
	// annotated: Annotations were expanded by this process for Value (a
	// restored alert's come from a rulebook that may have changed since).
	annotated bool
}

// Held is an alert the suppression did not let start, and why.
type Held struct {
	Labels map[string]string `json:"labels"`
	Reason string            `json:"reason"`
	Since  time.Time         `json:"since"`
}

// Transition is an alert changing state, handed to the sinks.
type Transition struct {
	Alert    Alert
	From, To string
	At       time.Time
}

// Sink receives every transition (the SLA ledger implements it).
type Sink interface {
	Transition(ctx context.Context, t Transition) error
}

// Rule is one compiled alerting rule.
type Rule struct {
	Name, Fault, Category string
	Expr                  string
	For, KeepFiringFor    time.Duration
	Labels, Annotations   map[string]string
	Scope                 []string
	annotations           map[string]*template.Template
	duration              *metrics.Histogram // kioskmon_rule_evaluation_duration_seconds{rule}
}

// Suppression reasons.
const (
	HeldServiceMode = "service_mode"  // an engineer is on site
	HeldOffline     = "kiosk_offline" // the kiosk sends nothing: its parts cannot be judged
	HeldLinkDown    = "link_down"     // the site's link is down
	HeldClosed      = "site_closed"   // outside opening hours: switched off is not a fault
)

// Config configures an Evaluator.
type Config struct {
	Rulebook *rulebook.Rulebook
	Preset   string
	// Groups, instead of a rulebook: Prometheus rule groups, evaluated every
	// Interval, without suppression (kioskmon rules test).
	Groups   *rulefmt.RuleGroups
	Interval time.Duration
	// StateFile keeps alert state across restarts ("" keeps none).
	StateFile string
	// IsOpen tells whether a site is open at t (the inventory's opening
	// hours); nil treats every site as open.
	IsOpen func(site string, t time.Time) bool
	// Timeout bounds one cycle. Default: the rulebook's interval.
	Timeout time.Duration
	// Concurrency bounds the rules whose queries run at once (Prometheus'
	// --rules.max-concurrent-evals, vmalert's group concurrency). Results
	// are still applied one rule after another in the rulebook's order, so
	// it changes how long a cycle takes, never what it decides. Default:
	// GOMAXPROCS.
	Concurrency int
}

// Evaluator runs the rules.
type Evaluator struct {
	cfg      Config
	q        Querier
	logger   log.Logger
	rules    []*Rule
	interval time.Duration
	sinks    []Sink

	mu      sync.Mutex
	alerts  map[uint64]*Alert
	held    map[uint64]*Held
	lastRun time.Time
	lastErr map[string]error
	lastDur time.Duration
	// ruleDur is each rule's cost in the last cycle (query and applying
	// its result), indexed like rules; the next cycle starts the costliest
	// queries first.
	ruleDur []time.Duration

	self         *metrics.Set
	evalDuration *metrics.Histogram
	counts       map[string]int // by state, for the gauges

	// unsent holds, per sink, the transitions it failed to take, retried in
	// order before the next cycle's (the sinks are idempotent: the ledger
	// opens an incident once per alert and start). At start it holds the
	// restored firing alerts, so a crash between the state file and the
	// ledger's commit leaves no alert without its incident.
	unsent       [][]Transition
	restored     []Transition
	sinkFailures *metrics.Counter
	sinkDropped  *metrics.Counter
}

// maxUnsent bounds a failing sink's queue; the oldest go first.
const maxUnsent = 100_000

// serviceModeQuery finds the kiosks in service mode.
const serviceModeQuery = `max by (kiosk) (kiosk_service_mode == 1)`

// Queries returns every expression an evaluator of cfg queries: the rules'
// and its own.
func Queries(cfg Config) ([]string, error) {
	groups := cfg.Groups
	if cfg.Rulebook != nil {
		var err error
		if groups, err = cfg.Rulebook.Compile(cfg.Preset); err != nil {
			return nil, err
		}
	}
	qs := []string{serviceModeQuery}
	if groups != nil {
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				if r.Alert != "" {
					qs = append(qs, r.Expr)
				}
			}
		}
	}
	return qs, nil
}

// New compiles the rulebook for cfg.Preset.
// Its own metrics (kioskmon_rules_*, kioskmon_alerts) go to self, if not nil.
func New(cfg Config, q Querier, logger log.Logger, self *metrics.Set) (*Evaluator, error) {
	groups := cfg.Groups
	interval := time.Duration(cfg.Interval)
	if cfg.Rulebook != nil {
		var err error
		if groups, err = cfg.Rulebook.Compile(cfg.Preset); err != nil {
			return nil, err
		}
		interval = time.Duration(cfg.Rulebook.Interval)
	}
	if groups == nil || interval <= 0 {
		return nil, fmt.Errorf("evaluator: no rulebook, or rule groups without an interval")
	}
	e := &Evaluator{cfg: cfg, q: q, logger: logger, interval: interval,
		alerts: map[uint64]*Alert{}, held: map[uint64]*Held{}, lastErr: map[string]error{}}
	if e.cfg.Timeout <= 0 {
		e.cfg.Timeout = max(e.interval, 30*time.Second)
	}
	if e.cfg.Concurrency <= 0 {
		e.cfg.Concurrency = runtime.GOMAXPROCS(0)
	}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue // recording rules are vmalert's and Prometheus' business
			}
			rule := &Rule{Name: r.Alert, Fault: r.Labels["fault"], Category: r.Labels["category"], Expr: r.Expr,
				For: time.Duration(r.For), KeepFiringFor: time.Duration(r.KeepFiringFor), Labels: r.Labels,
				Annotations: r.Annotations, annotations: map[string]*template.Template{}}
			if cfg.Rulebook != nil {
				if f := cfg.Rulebook.Fault(r.Labels["fault"]); f != nil {
					rule.Scope = f.Scope
				}
			}
			for k, v := range r.Annotations {
				t, err := template.New(k).Option("missingkey=zero").Parse("{{$labels := .Labels}}{{$value := .Value}}" + v)
				if err != nil {
					return nil, fmt.Errorf("rule %s annotation %s: %w", r.Alert, k, err)
				}
				rule.annotations[k] = t
			}
			e.rules = append(e.rules, rule)
		}
	}
	// Offline and link down first: their state decides what is held back.
	slices.SortStableFunc(e.rules, func(a, b *Rule) int { return order(a.Fault) - order(b.Fault) })
	if self == nil {
		self = metrics.NewSet()
	}
	e.self, e.counts = self, map[string]int{}
	e.evalDuration = self.NewHistogram("kioskmon_rules_evaluation_seconds")
	e.sinkFailures = self.NewCounter("kioskmon_alert_sink_failures_total")
	e.sinkDropped = self.NewCounter("kioskmon_alert_sink_dropped_total")
	for _, r := range e.rules {
		// GetOrCreate: two rules may share an alert name (they are one alert
		// to Prometheus too), and then share the histogram.
		r.duration = self.GetOrCreateHistogram(fmt.Sprintf(`kioskmon_rule_evaluation_duration_seconds{rule=%q}`, r.Name))
	}
	e.ruleDur = make([]time.Duration, len(e.rules))
	for _, state := range []string{StatePending, StateFiring, "held"} {
		self.NewGauge(fmt.Sprintf(`kioskmon_alerts{state=%q}`, state), func() float64 {
			e.mu.Lock()
			defer e.mu.Unlock()
			return float64(e.counts[state])
		})
	}
	if err := e.load(); err != nil {
		return nil, err
	}
	return e, nil
}

func order(fault string) int {
	switch fault {
	case faults.KioskOffline:
		return 0
	case faults.LinkDown:
		return 1
	}
	return 2
}

// AddSink adds a receiver of transitions.
func (e *Evaluator) AddSink(s Sink) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sinks = append(e.sinks, s)
	e.unsent = append(e.unsent, slices.Clone(e.restored))
}

// Run evaluates every interval until ctx ends.
func (e *Evaluator) Run(ctx context.Context) {
	tick := time.NewTicker(e.interval)
	defer tick.Stop()
	for {
		e.Eval(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func fingerprint(labels map[string]string) uint64 {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := fnv.New64a()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0xff})
		h.Write([]byte(labels[k]))
		h.Write([]byte{0xfe})
	}
	return h.Sum64()
}

// ruleResult is what one rule's query returned in a cycle.
type ruleResult struct {
	samples []Sample
	err     error
	took    time.Duration
}

// queryRules runs every rule's query at at, at most cfg.Concurrency at
// once, costliest (by the last cycle) first so the slow ones do not start
// last. It takes no lock: the queries are most of a cycle, and the API
// keeps answering meanwhile.
func (e *Evaluator) queryRules(ctx context.Context, at time.Time, prev []time.Duration) []ruleResult {
	order := make([]int, len(e.rules))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return int(prev[b] - prev[a]) })
	results := make([]ruleResult, len(e.rules))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(e.cfg.Concurrency, len(e.rules)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(next.Add(1)) - 1
				if n >= len(order) {
					return
				}
				i := order[n]
				start := time.Now()
				samples, err := e.q.Query(ctx, e.rules[i].Expr, at)
				results[i] = ruleResult{samples: samples, err: err, took: time.Since(start)}
			}
		}()
	}
	wg.Wait()
	return results
}

// Eval runs one cycle at time at.
func (e *Evaluator) Eval(ctx context.Context, at time.Time) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	inService := e.kiosksInServiceMode(ctx, at)
	e.mu.Lock()
	prev := slices.Clone(e.ruleDur)
	e.mu.Unlock()
	results := e.queryRules(ctx, at, prev)

	e.mu.Lock()
	defer e.mu.Unlock()
	var transitions []Transition
	seen := map[uint64]bool{}
	heldNow := map[uint64]*Held{}
	lastSeenMoved := false
	down := e.kiosksDown()
	for i, r := range e.rules {
		applyStart := time.Now()
		res := results[i]
		if err := res.err; err != nil {
			e.lastErr[r.Name] = err
			e.self.GetOrCreateCounter(fmt.Sprintf(`kioskmon_rules_evaluation_failures_total{fault=%q}`, r.Fault)).Inc()
			level.Warn(e.logger).Log("msg", "rule evaluation failed; its alerts keep their state", "rule", r.Name, "err", err)
			// Keep this rule's alerts as they are rather than resolving them.
			for fp, a := range e.alerts {
				if a.Rule == r.Name && a.State != StateInactive { // a resolved one still ages out
					seen[fp] = true
				}
			}
			e.ruleDur[i] = res.took + time.Since(applyStart)
			r.duration.Update(e.ruleDur[i].Seconds())
			continue
		}
		delete(e.lastErr, r.Name)
		for _, s := range res.samples {
			labels := make(map[string]string, len(s.Labels)+len(r.Labels)+1)
			for _, l := range s.Labels {
				if l.Name != "__name__" {
					labels[l.Name] = l.Value
				}
			}
			for k, v := range r.Labels {
				labels[k] = v
			}
			labels["alertname"] = r.Name
			fp := fingerprint(labels)
			a := e.alerts[fp]
			if a == nil || a.State != StateFiring {
				// A pending alert is not raised yet: a site closing or its
				// kiosk going offline holds it back too, and it starts again,
				// with its whole `for`, when the hold ends. Service mode lets
				// it go on: the engineer came for it.
				svc := inService
				if a != nil && a.State == StatePending {
					svc = nil
				}
				if reason := e.holdReason(r, labels, svc, down, at); reason != "" {
					if a != nil && a.State == StatePending {
						delete(e.alerts, fp)
						transitions = append(transitions, Transition{Alert: *a, From: StatePending, To: StateInactive, At: at})
					}
					h := e.held[fp]
					if h == nil {
						h = &Held{Labels: labels, Reason: reason, Since: at}
					}
					h.Reason = reason
					heldNow[fp] = h
					continue // a resolved alert still ages out
				}
			}
			if a == nil || a.State == StateInactive {
				a = &Alert{Fingerprint: fp, Rule: r.Name, Labels: labels, State: StatePending, ActiveAt: at}
				e.alerts[fp] = a
				transitions = append(transitions, Transition{Alert: *a, From: StateInactive, To: StatePending, At: at})
			}
			seen[fp] = true
			if a.State == StateFiring && r.KeepFiringFor > 0 {
				lastSeenMoved = true // keep_firing_for counts from it, across a restart too
			}
			// The annotations depend on the labels (the same for the same
			// fingerprint) and the value only: expand them again only when
			// the value moved, not for every firing alert on every cycle.
			if !a.annotated || a.Value != s.Value {
				a.Annotations, a.annotated = r.expand(labels, s.Value), true
			}
			a.Value, a.LastSeenAt = s.Value, at
			if a.State == StatePending && at.Sub(a.ActiveAt) >= r.For {
				a.State, a.FiredAt = StateFiring, at
				transitions = append(transitions, Transition{Alert: *a, From: StatePending, To: StateFiring, At: at})
				down.note(a)
			}
		}
		e.ruleDur[i] = res.took + time.Since(applyStart)
		r.duration.Update(e.ruleDur[i].Seconds())
	}
	rulesByName := map[string]*Rule{}
	for _, r := range e.rules {
		rulesByName[r.Name] = r
	}
	for fp, a := range e.alerts {
		if seen[fp] {
			continue
		}
		switch a.State {
		case StatePending:
			delete(e.alerts, fp) // never fired: nothing to resolve
			transitions = append(transitions, Transition{Alert: *a, From: StatePending, To: StateInactive, At: at})
		case StateFiring:
			if r := rulesByName[a.Rule]; r != nil && at.Sub(a.LastSeenAt) < r.KeepFiringFor {
				continue
			}
			a.State, a.ResolvedAt = StateInactive, at
			transitions = append(transitions, Transition{Alert: *a, From: StateFiring, To: StateInactive, At: at})
		case StateInactive:
			// Resolved alerts stay visible (and are re-sent as resolved) for 15 minutes.
			if at.Sub(a.ResolvedAt) > 15*time.Minute {
				delete(e.alerts, fp)
			}
		}
	}
	e.held = heldNow
	e.lastRun, e.lastDur = at, time.Since(start)
	e.evalDuration.Update(e.lastDur.Seconds())
	e.counts = map[string]int{"held": len(e.held)}
	for _, a := range e.alerts {
		e.counts[a.State]++
	}
	if len(transitions) > 0 || lastSeenMoved {
		if err := e.saveLocked(); err != nil {
			level.Error(e.logger).Log("msg", "cannot save alert state; a restart would lose it", "err", err)
		}
	}
	for i, s := range e.sinks {
		e.unsent[i] = e.deliver(ctx, s, append(e.unsent[i], transitions...))
	}
}

// deliver hands queue to s in order until s fails, and returns what is left
// for the next cycle.
func (e *Evaluator) deliver(ctx context.Context, s Sink, queue []Transition) []Transition {
	for n, t := range queue {
		if err := s.Transition(ctx, t); err != nil {
			e.sinkFailures.Inc()
			rest := queue[n:]
			if drop := len(rest) - maxUnsent; drop > 0 {
				e.sinkDropped.Add(drop)
				rest = rest[drop:]
			}
			level.Warn(e.logger).Log("msg", "alert sink failed; retrying at the next cycle", "alert", t.Alert.Rule,
				"pending", len(rest), "err", err)
			return slices.Clone(rest)
		}
	}
	return queue[:0]
}

// kiosksInServiceMode asks the storage which kiosks are in service mode.
func (e *Evaluator) kiosksInServiceMode(ctx context.Context, at time.Time) map[string]bool {
	samples, err := e.q.Query(ctx, serviceModeQuery, at)
	if err != nil {
		level.Warn(e.logger).Log("msg", "cannot read service mode; nothing is held for it this cycle", "err", err)
		return nil
	}
	in := map[string]bool{}
	for _, s := range samples {
		for _, l := range s.Labels {
			if l.Name == "kiosk" {
				in[l.Value] = true
			}
		}
	}
	return in
}

// downKiosks maps a kiosk to why its peripherals cannot be judged now:
// its kiosk.offline or net.link_down alert is firing. It is built once a
// cycle and kept up to date as alerts fire, so holding back is one map
// lookup a sample instead of a walk over every alert.
type downKiosks map[string]string

// kiosksDown indexes the firing offline and link-down alerts.
func (e *Evaluator) kiosksDown() downKiosks {
	down := downKiosks{}
	for _, a := range e.alerts {
		down.note(a)
	}
	return down
}

// note records a if it is a firing offline or link-down alert. Offline
// wins over link down: a kiosk that sends nothing is the larger outage.
func (d downKiosks) note(a *Alert) {
	if a.State != StateFiring {
		return
	}
	kiosk := a.Labels["kiosk"]
	switch a.Labels["fault"] {
	case faults.KioskOffline:
		d[kiosk] = HeldOffline
	case faults.LinkDown:
		if d[kiosk] == "" {
			d[kiosk] = HeldLinkDown
		}
	}
}

// holdReason says why a new alert must not start now, or "".
func (e *Evaluator) holdReason(r *Rule, labels map[string]string, inService map[string]bool, down downKiosks, at time.Time) string {
	kiosk := labels["kiosk"]
	if inService[kiosk] {
		return HeldServiceMode
	}
	if slices.Contains(r.Scope, "peripheral") {
		if reason := down[kiosk]; reason != "" {
			return reason
		}
	}
	if (slices.Contains(r.Scope, "service_hours") || r.Fault == faults.KioskOffline) && e.cfg.IsOpen != nil && !e.cfg.IsOpen(labels["site"], at) {
		return HeldClosed
	}
	return ""
}

func (r *Rule) expand(labels map[string]string, value float64) map[string]string {
	out := make(map[string]string, len(r.annotations))
	data := struct {
		Labels map[string]string
		Value  float64
	}{labels, value}
	for k, t := range r.annotations {
		var b strings.Builder
		if err := t.Execute(&b, data); err != nil {
			out[k] = r.Annotations[k]
			continue
		}
		out[k] = b.String()
	}
	return out
}

// Alerts returns the current alerts (pending, firing, recently resolved).
func (e *Evaluator) Alerts() []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Alert, 0, len(e.alerts))
	for _, a := range e.alerts {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ActiveAt.Equal(out[j].ActiveAt) {
			return out[i].Fingerprint < out[j].Fingerprint
		}
		return out[i].ActiveAt.Before(out[j].ActiveAt)
	})
	return out
}

// HeldAlerts returns what suppression holds back now.
func (e *Evaluator) HeldAlerts() []Held {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Held, 0, len(e.held))
	for _, h := range e.held {
		out = append(out, *h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Labels["kiosk"] < out[j].Labels["kiosk"] })
	return out
}

// Rules returns the compiled rules.
func (e *Evaluator) Rules() []*Rule { return e.rules }

// Interval is the evaluation interval.
func (e *Evaluator) Interval() time.Duration { return e.interval }

type stateFile struct {
	Version int       `json:"version"`
	Saved   time.Time `json:"saved"`
	Alerts  []*Alert  `json:"alerts"`
}

func (e *Evaluator) saveLocked() error {
	if e.cfg.StateFile == "" {
		return nil
	}
	st := stateFile{Version: 1, Saved: time.Now().UTC()}
	for _, a := range e.alerts {
		st.Alerts = append(st.Alerts, a)
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return atomicfile.Write(e.cfg.StateFile, data, 0o600)
}

// load restores the alerts of a previous run: a restart neither re-pages
// nor loses when an alert started.
func (e *Evaluator) load() error {
	if e.cfg.StateFile == "" {
		return nil
	}
	data, err := os.ReadFile(e.cfg.StateFile)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read alert state: %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("alert state %s is damaged: %w (move it away to start with no alerts)", e.cfg.StateFile, err)
	}
	known := map[string]bool{}
	for _, r := range e.rules {
		known[r.Name] = true
	}
	// The alerts of a rule no longer in the rulebook are kept, and resolved
	// at the first cycle as any alert no rule returns: Alertmanager and the
	// SLA ledger learn that they ended, instead of keeping them open.
	removed := 0
	for _, a := range st.Alerts {
		e.alerts[a.Fingerprint] = a
		if a.State != StateFiring {
			continue
		}
		if !known[a.Rule] {
			removed++
			continue
		}
		e.restored = append(e.restored, Transition{Alert: *a, From: StateFiring, To: StateFiring, At: a.FiredAt})
	}
	level.Info(e.logger).Log("msg", "restored alert state", "alerts", len(e.alerts), "saved", st.Saved,
		"firing_of_removed_rules", removed)
	return nil
}
