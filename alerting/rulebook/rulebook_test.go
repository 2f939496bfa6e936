package rulebook

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/kioskmon/kioskmon/exporter/catalog"
	"github.com/kioskmon/kioskmon/faults"
	"github.com/kioskmon/kioskmon/internal/peertest"
)

func TestDefaultCoversTheCatalogue(t *testing.T) {
	rb := Default()
	for _, f := range faults.All {
		entry := rb.Fault(f.ID)
		if entry == nil {
			t.Errorf("the default rulebook does not grade %s (%s)", f.ID, f.NameEN)
			continue
		}
		if entry.NameZH != f.NameZH || entry.NameEN != f.NameEN {
			t.Errorf("%s: names %q/%q differ from the fault catalogue's %q/%q", f.ID, entry.NameZH, entry.NameEN, f.NameZH, f.NameEN)
		}
	}
	// Rules use only the exporter's catalogue: a renamed metric breaks here,
	// not silently in production.
	p := parser.NewParser(parser.Options{})
	for _, f := range rb.Faults {
		e, _ := p.ParseExpr(f.Expr)
		parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(vs.Name, "_bucket"), "_sum"), "_count")
				if catalog.Lookup(vs.Name) == nil && catalog.Lookup(name) == nil && !writtenByKioskmon[vs.Name] {
					t.Errorf("%s uses %s, which is not in exporter/METRICS.md", f.ID, vs.Name)
				}
			}
			return nil
		})
	}
}

// writtenByKioskmon are the series kioskmon itself writes to the storage
// (alerting/inspection's MetricItemFailed, alerting/openhours' opening
// time; their tests check the rulebook uses those names).
var writtenByKioskmon = map[string]bool{"kioskmon_inspection_item_failed": true, "kioskmon_kiosk_open_seconds_total": true,
	"kioskmon_kiosk_open": true}

func TestBadRulebooks(t *testing.T) {
	want := map[string]string{
		"version.bad.yml":  "testdata/version.bad.yml:1: version: \"v2\" is not a known version",
		"expr.bad.yml":     "testdata/expr.bad.yml:7: faults.0.expr: not PromQL",
		"severity.bad.yml": "testdata/severity.bad.yml:8: faults.0.severity: db12-1060: \"critical\" is not one of urgent, moderate, minor",
		"category.bad.yml": "testdata/category.bad.yml:4: faults.0.category: hw.paper_out is in category hardware in the fault catalogue",
		"override.bad.yml": "testdata/override.bad.yml:11: overrides.0.fault: \"hw.paper_jam\" is not a fault of this rulebook",
		"scalar.bad.yml":   "testdata/scalar.bad.yml:7: faults.0.expr: gives a scalar",
	}
	files, _ := filepath.Glob("testdata/*.bad.yml")
	if len(files) != len(want) {
		t.Fatalf("%d bad files, %d expectations", len(files), len(want))
	}
	for _, f := range files {
		_, err := Load(f)
		if err == nil || !strings.Contains(err.Error(), want[filepath.Base(f)]) {
			t.Errorf("%s:\n got %v\nwant %s", f, err, want[filepath.Base(f)])
		}
	}
}

// exported writes the default rulebook's rule files for preset.
func exported(t *testing.T, rb *Rulebook, preset string) []string {
	t.Helper()
	paths, err := rb.Export(preset, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

func TestExportLoadsInPrometheus(t *testing.T) {
	for preset := range Presets {
		n := 0
		for _, path := range exported(t, Default(), preset) {
			// Prometheus' own parser, with the legacy name validation that
			// older Prometheus and vmalert apply.
			groups, errs := rulefmt.ParseFile(path, false, model.LegacyValidation, parser.NewParser(parser.Options{}), promslog.NewNopLogger())
			if len(errs) > 0 {
				t.Fatalf("%s (%s): %v", path, preset, errs)
			}
			for _, g := range groups.Groups {
				for _, r := range g.Rules {
					n++
					if r.Labels["severity"] == "" || r.Labels["fault"] == "" || r.Labels["category"] == "" {
						t.Errorf("%s: labels %v", r.Alert, r.Labels)
					}
				}
			}
		}
		if n != len(Default().Faults) {
			t.Fatalf("%s: %d rules for %d faults", preset, n, len(Default().Faults))
		}
	}
}

// TestPromtoolChecksTheExport runs Debian's promtool (Prometheus 2.42) on the
// exported files, as an operator loading them into Prometheus would.
func TestPromtoolChecksTheExport(t *testing.T) {
	promtool := peertest.Tool(t, "promtool", "prometheus")
	paths := exported(t, Default(), "")
	out, err := exec.Command(promtool, append([]string{"check", "rules"}, paths...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

func TestProviderOverride(t *testing.T) {
	rb, err := Load("testdata/override.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	groups, err := rb.Compile("")
	if err != nil {
		t.Fatal(err)
	}
	rules := groups.Groups[0].Rules
	if len(rules) != 2 {
		t.Fatalf("%d rules, want the contract's and the general one", len(rules))
	}
	contract, general := rules[0], rules[1]
	if contract.Labels["severity"] != "severe" || !strings.Contains(contract.Expr, `provider="acme-om"`) {
		t.Fatalf("contract rule: %+v", contract)
	}
	if general.Labels["severity"] != "general" || !strings.Contains(general.Expr, `provider!~"acme-om"`) {
		t.Fatalf("general rule: %+v", general)
	}
	lines, _ := rb.List("db12-1060")
	if len(lines) != 1 || lines[0] != "hw.paper_out\thardware\tmoderate\tOut of paper" {
		t.Fatalf("list: %q", lines)
	}
	// A person's report is graded as the compiled rules grade the alert.
	for _, c := range []struct{ preset, provider, want string }{
		{"", "acme-om", "severe"}, {"", "other", "general"}, {"db12-1060", "acme-om", "minor"}, {"db12-1060", "", "moderate"},
	} {
		if got := rb.Severity("hw.paper_out", c.preset, c.provider); got != c.want {
			t.Errorf("Severity(hw.paper_out, %q, %q) = %q, want %q", c.preset, c.provider, got, c.want)
		}
	}
	if got := rb.Severity("hw.nope", "", ""); got != "" {
		t.Errorf("Severity of an unknown fault = %q", got)
	}
}

func TestRuleUnitTestsWithPromtool(t *testing.T) {
	promtool := peertest.Tool(t, "promtool", "prometheus")
	dir := t.TempDir()
	if _, err := Default().Export("db12-1060", filepath.Join(dir, "rules")); err != nil {
		t.Fatal(err)
	}
	tests, _ := filepath.Glob("testdata/*.test.yml")
	if len(tests) == 0 {
		t.Fatal("no rule tests in testdata")
	}
	for _, tf := range tests {
		data, _ := os.ReadFile(tf)
		// The tests name the exported files relative to themselves.
		dst := filepath.Join(dir, filepath.Base(tf))
		os.WriteFile(dst, data, 0o644)
		out, err := exec.Command(promtool, "test", "rules", dst).CombinedOutput()
		if err != nil {
			t.Errorf("promtool test rules %s: %v\n%s", tf, err, out)
		}
	}
}

// TestEveryRuleHasATest: each fault of the default rulebook fires in at
// least one promtool test case.
func TestEveryRuleHasATest(t *testing.T) {
	tested := map[string]bool{}
	files, _ := filepath.Glob("testdata/*.test.yml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Tests []struct {
				AlertRuleTest []struct {
					Alertname string `yaml:"alertname"`
					ExpAlerts []any  `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range doc.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					tested[a.Alertname] = true
				}
			}
		}
	}
	for _, f := range Default().Faults {
		if !tested[AlertName(f.ID)] {
			t.Errorf("no promtool test makes %s (%s) fire", AlertName(f.ID), f.ID)
		}
	}
}
