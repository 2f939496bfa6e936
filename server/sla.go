package server

import (
	"fmt"
	"sync"

	"github.com/VictoriaMetrics/metrics"

	"github.com/kioskmon/kioskmon/alerting/evaluator"
	"github.com/kioskmon/kioskmon/alerting/notifier"
	"github.com/kioskmon/kioskmon/alerting/rulebook"
	"github.com/kioskmon/kioskmon/ingest/inventory"
	"github.com/kioskmon/kioskmon/slo/compliance"
	"github.com/kioskmon/kioskmon/slo/ledger"
	"github.com/kioskmon/kioskmon/slo/policy"
)

// describeReport grades a person's report as the rules would grade the
// alert: the kiosk's site, district and provider from the inventory, the
// fault's category, and its severity under the preset and the provider's
// contract.
func describeReport(evCfg evaluator.Config, kiosks *inventory.Watcher) func(kiosk, fault string) (ledger.OpenRequest, error) {
	return func(kiosk, fault string) (ledger.OpenRequest, error) {
		k, ok := kiosks.Index().Kiosk(kiosk)
		if !ok {
			return ledger.OpenRequest{}, fmt.Errorf("kiosk %q is not in the inventory (kioskmon kiosks list)", kiosk)
		}
		f := evCfg.Rulebook.Fault(fault)
		if f == nil {
			return ledger.OpenRequest{}, fmt.Errorf("fault %q is not in the rulebook: give an id from kioskmon rules list", fault)
		}
		return ledger.OpenRequest{Kiosk: k.ID, Site: k.Site, District: k.District, Provider: k.Provider, Fault: f.ID,
			Category: f.Category, Severity: evCfg.Rulebook.Severity(f.ID, evCfg.Preset, k.Provider)}, nil
	}
}

// severityLevels are the preset's levels, most severe first.
func severityLevels(evCfg evaluator.Config) []string {
	preset := evCfg.Preset
	if preset == "" {
		preset = evCfg.Rulebook.Preset
	}
	var out []string
	for _, l := range rulebook.Presets[preset].Levels {
		out = append(out, l.Name)
	}
	return out
}

// deniedCounter counts requests the incident API refused, by reason.
func deniedCounter(self *metrics.Set) func(reason string) {
	unauth := self.NewCounter(`kioskmon_api_denied_total{reason="unauthenticated"}`)
	forbidden := self.NewCounter(`kioskmon_api_denied_total{reason="forbidden"}`)
	return func(reason string) {
		if reason == "forbidden" {
			forbidden.Inc()
		} else {
			unauth.Inc()
		}
	}
}

// loadSLAPolicy loads the SLA policy and checks that it grades with the
// rulebook's severities: an incident's severity is a rulebook level.
func loadSLAPolicy(cfg Config, evCfg evaluator.Config) (*policy.Policy, error) {
	var p *policy.Policy
	var err error
	if cfg.SLA.Policy == "" {
		p, err = policy.FromPreset(policy.PresetDB12)
	} else {
		p, err = policy.Load(cfg.SLA.Policy)
	}
	if err != nil {
		return nil, fmt.Errorf("SLA policy: %w", err)
	}
	levels := severityLevels(evCfg)
	for _, s := range levels {
		if p.Rank(s) < 0 {
			return nil, fmt.Errorf("SLA policy %s has severities %v, but the rulebook grades faults %v: give --sla.policy a policy of the rulebook's preset",
				p.Name(), p.Severities(), levels)
		}
	}
	return p, nil
}

// complianceEngines returns the compliance engine for the inventory of the
// moment: rebuilt when the inventory reloads (sites' hours, distances).
func complianceEngines(p *policy.Policy, kiosks *inventory.Watcher) func() (*compliance.Engine, error) {
	var mu sync.Mutex
	var lastIndex *inventory.Index
	var last *compliance.Engine
	return func() (*compliance.Engine, error) {
		mu.Lock()
		defer mu.Unlock()
		ix := kiosks.Index()
		if ix == lastIndex && last != nil {
			return last, nil
		}
		e, err := compliance.New(compliance.Config{Policy: p, Inventory: ix.Inventory()})
		if err != nil {
			return nil, err
		}
		lastIndex, last = ix, e
		return e, nil
	}
}

// alertSources joins the evaluator's alerts and the SLA escalations for
// the notifier.
type alertSources []notifier.Source

func (s alertSources) Alerts() []evaluator.Alert {
	var out []evaluator.Alert
	for _, src := range s {
		out = append(out, src.Alerts()...)
	}
	return out
}
