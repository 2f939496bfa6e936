package evaluator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The Prometheus HTTP API's alert and rule views, so Grafana's alerting
// pages and amtool-style scripts read kioskmon as they read Prometheus.

type apiAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	ActiveAt    time.Time         `json:"activeAt"`
	Value       string            `json:"value"`
}

func toAPI(a Alert) apiAlert {
	return apiAlert{Labels: a.Labels, Annotations: a.Annotations, State: a.State, ActiveAt: a.ActiveAt,
		Value: strconv.FormatFloat(a.Value, 'e', -1, 64)}
}

func writeJSON(w http.ResponseWriter, data any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": data})
}

// AlertsHandler serves /api/v1/alerts: pending and firing alerts.
func (e *Evaluator) AlertsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		alerts := []apiAlert{}
		for _, a := range e.Alerts() {
			if a.State != StateInactive {
				alerts = append(alerts, toAPI(a))
			}
		}
		writeJSON(w, map[string]any{"alerts": alerts})
	})
}

// HeldHandler serves /api/v1/alerts/held: what suppression holds back, and why.
func (e *Evaluator) HeldHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"held": e.HeldAlerts()})
	})
}

// RulesHandler serves /api/v1/rules.
func (e *Evaluator) RulesHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		alerts := e.Alerts()
		e.mu.Lock()
		lastRun, lastDur := e.lastRun, e.lastDur
		ruleDur := slices.Clone(e.ruleDur)
		lastErr := make(map[string]string, len(e.lastErr))
		for k, v := range e.lastErr {
			lastErr[k] = v.Error()
		}
		e.mu.Unlock()
		type apiRule struct {
			State          string            `json:"state"`
			Name           string            `json:"name"`
			Query          string            `json:"query"`
			Duration       float64           `json:"duration"`
			KeepFiringFor  float64           `json:"keepFiringFor"`
			Labels         map[string]string `json:"labels"`
			Annotations    map[string]string `json:"annotations"`
			Alerts         []apiAlert        `json:"alerts"`
			Health         string            `json:"health"`
			LastError      string            `json:"lastError,omitempty"`
			Type           string            `json:"type"`
			LastEvaluation time.Time         `json:"lastEvaluation"`
			EvaluationTime float64           `json:"evaluationTime"`
		}
		type apiGroup struct {
			Name           string    `json:"name"`
			File           string    `json:"file"`
			Rules          []apiRule `json:"rules"`
			Interval       float64   `json:"interval"`
			LastEvaluation time.Time `json:"lastEvaluation"`
			EvaluationTime float64   `json:"evaluationTime"`
		}
		groups := map[string]*apiGroup{}
		var order []string
		for i, rule := range e.rules {
			name := "kioskmon-" + rule.Category
			g := groups[name]
			if g == nil {
				g = &apiGroup{Name: name, File: "rulebook", Interval: e.interval.Seconds(), Rules: []apiRule{},
					LastEvaluation: lastRun, EvaluationTime: lastDur.Seconds()}
				groups[name] = g
				order = append(order, name)
			}
			ar := apiRule{State: StateInactive, Name: rule.Name, Query: strings.TrimSpace(rule.Expr), Duration: rule.For.Seconds(),
				KeepFiringFor: rule.KeepFiringFor.Seconds(), Labels: rule.Labels, Annotations: rule.Annotations,
				Alerts: []apiAlert{}, Health: "ok", Type: "alerting", LastEvaluation: lastRun, EvaluationTime: ruleDur[i].Seconds()}
			if msg, bad := lastErr[rule.Name]; bad {
				ar.Health, ar.LastError = "err", msg
			}
			for _, a := range alerts {
				if a.Rule != rule.Name || a.State == StateInactive {
					continue
				}
				ar.Alerts = append(ar.Alerts, toAPI(a))
				if a.State == StateFiring || ar.State == StateInactive {
					ar.State = a.State
				}
			}
			g.Rules = append(g.Rules, ar)
		}
		out := []*apiGroup{}
		for _, name := range order {
			out = append(out, groups[name])
		}
		writeJSON(w, map[string]any{"groups": out})
	})
}

// BacktestHandler serves /api/v1/rules/backtest?from=&to=&step=: the
// incidents the rulebook would have raised over stored data (RFC 3339 or
// Unix seconds; step defaults to the evaluation interval), and what each
// cycle cost. concurrency=N overrides the rules evaluated at once, so a
// benchmark compares settings on the same data.
func BacktestHandler(cfg Config, q Querier) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg := cfg // this request's copy: concurrency= must not outlive it
		parse := func(name string) (time.Time, error) {
			v := r.FormValue(name)
			if t, err := time.Parse(time.RFC3339, v); err == nil {
				return t, nil
			}
			secs, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("%s=%q: give RFC 3339 or Unix seconds", name, v)
			}
			return time.Unix(0, int64(secs*1e9)), nil
		}
		from, err := parse("from")
		if err == nil {
			var to time.Time
			to, err = parse("to")
			if err == nil {
				step := time.Duration(0)
				if v := r.FormValue("step"); v != "" {
					if step, err = time.ParseDuration(v); err != nil {
						err = fmt.Errorf("step=%q: give a duration such as 1m", v)
					}
				}
				if v := r.FormValue("concurrency"); v != "" && err == nil {
					if cfg.Concurrency, err = strconv.Atoi(v); err != nil || cfg.Concurrency < 1 {
						err = fmt.Errorf("concurrency=%q: give a number of rules, at least 1", v)
					}
				}
				if err == nil {
					var res BacktestResult
					if res, err = Backtest(r.Context(), cfg, q, from, to, step); err == nil {
						writeJSON(w, map[string]any{"incidents": res.Incidents, "stats": backtestStats(res)})
						return
					}
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]any{"status": "error", "errorType": "bad_data", "error": err.Error()})
	})
}

// backtestStats is a backtest's cost in seconds, for make bench: every
// cycle's wall time, and each rule's time summed over the cycles.
func backtestStats(res BacktestResult) map[string]any {
	cycles := make([]float64, len(res.Cycles))
	for i, d := range res.Cycles {
		cycles[i] = d.Seconds()
	}
	rules := make(map[string]float64, len(res.Rules))
	for name, d := range res.Rules {
		rules[name] = d.Seconds()
	}
	return map[string]any{"cycleSeconds": cycles, "ruleSeconds": rules}
}
