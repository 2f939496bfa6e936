package rulebook

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
)

// AlertName is the alertname of a fault id: Prometheus before 3.0 (and
// vmalert) take only metric-name characters, so hw.paper_out is
// hw_paper_out; the label fault keeps the id.
func AlertName(id string) string { return strings.ReplaceAll(id, ".", "_") }

// Compile turns the rulebook into Prometheus rule groups graded with preset
// ("" is the rulebook's own). One group per category, so a slow category
// does not hold back another. A provider override becomes a rule of its own
// whose selectors are limited to that provider; the general rule excludes it.
func (rb *Rulebook) Compile(preset string) (*rulefmt.RuleGroups, error) {
	if preset == "" {
		preset = rb.Preset
	}
	if _, ok := Presets[preset]; !ok {
		return nil, fmt.Errorf("--preset %q is not one of %s", preset, presetNames())
	}
	p := parser.NewParser(parser.Options{})
	groups := map[string]*rulefmt.RuleGroup{}
	for _, f := range rb.Faults {
		g := groups[f.Category]
		if g == nil {
			g = &rulefmt.RuleGroup{Name: "kioskmon-" + f.Category, Interval: model.Duration(rb.Interval)}
			groups[f.Category] = g
		}
		var overridden []string
		for _, o := range rb.Overrides {
			level := o.Severity[preset]
			if o.Fault != f.ID || level == "" {
				continue
			}
			expr, err := restrict(p, f.Expr, labels.MustNewMatcher(labels.MatchEqual, "provider", o.Provider))
			if err != nil {
				return nil, fmt.Errorf("fault %s: %w", f.ID, err)
			}
			g.Rules = append(g.Rules, rb.rule(f, expr, preset, level, o.Provider))
			overridden = append(overridden, o.Provider)
		}
		expr := f.Expr
		if len(overridden) > 0 {
			var err error
			expr, err = restrict(p, f.Expr, labels.MustNewMatcher(labels.MatchNotRegexp, "provider", quoteAlternatives(overridden)))
			if err != nil {
				return nil, fmt.Errorf("fault %s: %w", f.ID, err)
			}
		}
		g.Rules = append(g.Rules, rb.rule(f, expr, preset, f.Severity[preset], ""))
	}
	out := &rulefmt.RuleGroups{}
	for _, c := range Categories {
		if g := groups[c]; g != nil {
			out.Groups = append(out.Groups, *g)
		}
	}
	return out, nil
}

func quoteAlternatives(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = regexpQuote(v)
	}
	return strings.Join(q, "|")
}

func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// RestrictToKiosks returns expr with every selector limited to these kiosks:
// the inspection evaluates a fault's symptom for a batch of kiosks without
// paying for the whole fleet.
func RestrictToKiosks(expr string, kiosks []string) (string, error) {
	m, err := labels.NewMatcher(labels.MatchRegexp, "kiosk", quoteAlternatives(kiosks))
	if err != nil {
		return "", err
	}
	return restrict(parser.NewParser(parser.Options{}), expr, m)
}

// restrict adds m to every selector of expr.
func restrict(p parser.Parser, expr string, m *labels.Matcher) (string, error) {
	e, err := p.ParseExpr(expr)
	if err != nil {
		return "", err
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			vs.LabelMatchers = append(vs.LabelMatchers, m)
		}
		return nil
	})
	return e.String(), nil
}

func (rb *Rulebook) rule(f Fault, expr, preset, level, provider string) rulefmt.Rule {
	r := rulefmt.Rule{
		Alert: AlertName(f.ID), Expr: strings.TrimSpace(expr),
		For: model.Duration(f.For), KeepFiringFor: model.Duration(f.KeepFiringFor),
		Labels: map[string]string{"fault": f.ID, "category": f.Category, "severity": level},
		Annotations: map[string]string{
			"summary":    f.NameEN + " at kiosk {{ $labels.kiosk }} ({{ $labels.site }})",
			"summary_zh": "{{ $labels.kiosk }}（{{ $labels.site }}）：" + f.NameZH,
			"remedy":     strings.Join(f.Remedy, "; "),
			"preset":     preset,
			"dashboard":  "/d/kioskmon-kiosk?var-kiosk={{ $labels.kiosk }}",
		},
	}
	if lvl := levelOf(preset, level); lvl.Repair > 0 {
		r.Annotations["repair_target"] = fmt.Sprintf("%gh", lvl.Repair.Hours())
	}
	if f.Inspection != "" {
		r.Annotations["inspection"] = f.Inspection
	}
	if provider != "" {
		r.Annotations["contract"] = "severity set by the contract of " + provider
	}
	return r
}

func levelOf(preset, level string) Level {
	for _, l := range Presets[preset].Levels {
		if l.Name == level {
			return l
		}
	}
	return Level{}
}

// Export writes the compiled rule groups to dir as one file per group
// (kioskmon-hardware.yml ...) and returns the paths.
func (rb *Rulebook) Export(preset, dir string) ([]string, error) {
	groups, err := rb.Compile(preset)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	var paths []string
	for _, g := range groups.Groups {
		data, err := yaml.Marshal(rulefmt.RuleGroups{Groups: []rulefmt.RuleGroup{g}})
		if err != nil {
			return nil, err
		}
		header := fmt.Sprintf("# Generated by kioskmon rules export (preset %s) on %s; edit the rulebook, not this file.\n",
			preset, time.Now().UTC().Format(time.RFC3339))
		path := filepath.Join(dir, g.Name+".yml")
		if err := os.WriteFile(path, append([]byte(header), data...), 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
		paths = append(paths, path)
	}
	sort.Strings(paths)
	return paths, nil
}

// List writes one fault a line: id, category, severity and English name,
// tab-separated (kioskmon rules list).
func (rb *Rulebook) List(preset string) ([]string, error) {
	if preset == "" {
		preset = rb.Preset
	}
	if _, ok := Presets[preset]; !ok {
		return nil, fmt.Errorf("--preset %q is not one of %s", preset, presetNames())
	}
	var lines []string
	for _, f := range rb.Faults {
		lines = append(lines, strings.Join([]string{f.ID, f.Category, f.Severity[preset], f.NameEN}, "\t"))
	}
	return lines, nil
}
