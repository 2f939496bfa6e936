package catalog

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kioskmon/kioskmon/faults"
)

var metricName = regexp.MustCompile(`^kiosk_[a-z0-9_]+$`)

// TestNaming holds the catalogue to Prometheus naming conventions.
func TestNaming(t *testing.T) {
	units := map[string]string{"seconds": "_seconds", "bytes": "_bytes", "ratio": "_ratio", "volts": "_volts"}
	seen := map[string]bool{}
	for _, m := range Metrics {
		if !metricName.MatchString(m.Name) {
			t.Errorf("%s: not a kiosk_ name in snake case", m.Name)
		}
		if seen[m.Name] {
			t.Errorf("%s: listed twice", m.Name)
		}
		seen[m.Name] = true
		if (m.Type == Counter) != strings.HasSuffix(m.Name, "_total") {
			t.Errorf("%s: counters, and only counters, end in _total", m.Name)
		}
		if m.Unit != "" {
			name := strings.TrimSuffix(m.Name, "_total")
			if !strings.HasSuffix(name, units[m.Unit]) && !strings.HasSuffix(name, "_timestamp_seconds") {
				t.Errorf("%s: unit %q is not the name's suffix", m.Name, m.Unit)
			}
		}
		if slices.Contains(m.Labels, "state") != (len(m.States) > 0) {
			t.Errorf("%s: a state label needs its states, and states need a state label", m.Name)
		}
		if (m.Type == Histogram) != (len(m.Buckets) > 0) {
			t.Errorf("%s: histograms, and only histograms, have buckets", m.Name)
		}
		for _, l := range m.Labels {
			if slices.Contains([]string{"kiosk", "site", "district", "provider", "job", "instance"}, l) {
				t.Errorf("%s: label %q is set by kioskmon from its inventory", m.Name, l)
			}
		}
		if m.Help == "" || !slices.Contains(Groups, m.Group) {
			t.Errorf("%s: needs help text and a group", m.Name)
		}
		for _, f := range m.Faults {
			if faults.Lookup(f) == nil {
				t.Errorf("%s: unknown fault %q", m.Name, f)
			}
		}
	}
}

// TestEveryFaultIsObservable: each fault of the catalogue is made observable
// by at least one metric.
func TestEveryFaultIsObservable(t *testing.T) {
	observed := map[string]bool{}
	for _, m := range Metrics {
		for _, f := range m.Faults {
			observed[f] = true
		}
	}
	for _, f := range faults.All {
		if !observed[f.ID] && f.Injectable {
			t.Errorf("fault %s (%s) has no metric that shows it", f.ID, f.NameEN)
		}
	}
}

// TestMarkdownIsCurrent fails when METRICS.md is stale.
func TestMarkdownIsCurrent(t *testing.T) {
	got, err := os.ReadFile("../METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(Markdown()) {
		t.Fatal("exporter/METRICS.md is stale: run go generate ./exporter/catalog")
	}
}
