package server

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"

	"github.com/kioskmon/kioskmon/alerting/evaluator"
	"github.com/kioskmon/kioskmon/alerting/rulebook"
	"github.com/kioskmon/kioskmon/ingest/inventory"
	"github.com/kioskmon/kioskmon/slo/ledger"
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
