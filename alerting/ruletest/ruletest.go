// Package ruletest runs rule unit tests written in promtool's format
// (promtool test rules) with kioskmon's own evaluator on its embedded
// storage, so a rule is tested with the engine that evaluates it in
// production. The same files pass `promtool test rules`.
package ruletest

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/kioskmon/kioskmon/alerting/evaluator"
)

// File is a promtool test file.
type File struct {
	RuleFiles          []string       `yaml:"rule_files"`
	EvaluationInterval model.Duration `yaml:"evaluation_interval"`
	GroupEvalOrder     []string       `yaml:"group_eval_order"`
	Tests              []Test         `yaml:"tests"`
}

// Test is one test case.
type Test struct {
	Name           string            `yaml:"name"`
	Interval       model.Duration    `yaml:"interval"`
	InputSeries    []Series          `yaml:"input_series"`
	AlertRuleTests []AlertRuleTest   `yaml:"alert_rule_test"`
	PromQLTests    []map[string]any  `yaml:"promql_expr_test"`
	ExternalLabels map[string]string `yaml:"external_labels"`
}

// Series is an input series in promtool's expanding notation.
type Series struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

// AlertRuleTest checks the alerts of one rule at one time.
type AlertRuleTest struct {
	EvalTime  model.Duration `yaml:"eval_time"`
	Alertname string         `yaml:"alertname"`
	ExpAlerts []ExpAlert     `yaml:"exp_alerts"`
}

// ExpAlert is an expected firing alert.
type ExpAlert struct {
	ExpLabels      map[string]string `yaml:"exp_labels"`
	ExpAnnotations map[string]string `yaml:"exp_annotations"`
}

// Storage is what a test writes its series to and queries: a fresh,
// empty storage per file.
type Storage interface {
	evaluator.Querier
	Add(labels []evaluator.Label, points []Point) error
	MakeSearchable()
}

// Point is one sample.
type Point struct {
	T time.Time
	V float64
}

// MaxTests bounds the tests of one run (all files): each gets its own two
// weeks of the storage's past.
const MaxTests = 100

// Base is the time test number test's time zero maps to: within the
// storage's retention, each test 14 days after the previous one so that no
// window of one test sees another's series.
func Base(now time.Time, test int) time.Time {
	return now.Add(-(MaxTests + 2) * 14 * 24 * time.Hour).Truncate(24 * time.Hour).Add(time.Duration(test) * 14 * 24 * time.Hour)
}

// Run runs the test file at path against st and writes a report to w.
// first numbers its first test among all the run's tests (see Base). It
// returns the number of tests run and of those failed.
func Run(ctx context.Context, path string, st Storage, now time.Time, first int, w io.Writer) (ran, failed int, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	var f File
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	if f.EvaluationInterval == 0 {
		f.EvaluationInterval = model.Duration(time.Minute)
	}
	groups := &rulefmt.RuleGroups{}
	for _, rf := range f.RuleFiles {
		if !filepath.IsAbs(rf) {
			rf = filepath.Join(filepath.Dir(path), rf)
		}
		g, errs := rulefmt.ParseFile(rf, false, model.UTF8Validation, parser.NewParser(parser.Options{}), promslog.NewNopLogger())
		if len(errs) > 0 {
			return 0, 0, fmt.Errorf("%s: %v", rf, errs[0])
		}
		groups.Groups = append(groups.Groups, g.Groups...)
	}
	if first+len(f.Tests) > MaxTests {
		return 0, 0, fmt.Errorf("%s: more than %d tests in one run; run the files in several", path, MaxTests)
	}
	p := parser.NewParser(parser.Options{})
	for i, tc := range f.Tests {
		if len(tc.PromQLTests) > 0 {
			return i, failed, fmt.Errorf("%s: test %q: promql_expr_test is not supported by kioskmon rules test; use promtool", path, tc.Name)
		}
		interval := time.Duration(tc.Interval)
		if interval == 0 {
			interval = time.Duration(f.EvaluationInterval)
		}
		base := Base(now, first+i)
		for _, s := range tc.InputSeries {
			lbls, values, err := p.ParseSeriesDesc(s.Series + " " + s.Values)
			if err != nil {
				return i, failed, fmt.Errorf("%s: test %q: series %q: %w", path, tc.Name, s.Series, err)
			}
			var series []evaluator.Label
			lbls.Range(func(l labels.Label) { series = append(series, evaluator.Label{Name: l.Name, Value: l.Value}) })
			var points []Point
			for j, v := range values {
				if !v.Omitted {
					points = append(points, Point{T: base.Add(time.Duration(j) * interval), V: v.Value})
				}
			}
			if err := st.Add(series, points); err != nil {
				return i, failed, err
			}
		}
		st.MakeSearchable()
		problems, err := runAlertTests(ctx, groups, time.Duration(f.EvaluationInterval), st, base, tc)
		if err != nil {
			return i, failed, fmt.Errorf("%s: test %q: %w", path, tc.Name, err)
		}
		if len(problems) > 0 {
			failed++
			fmt.Fprintf(w, "FAIL %s: %s\n", path, tc.Name)
			for _, pr := range problems {
				fmt.Fprintf(w, "    %s\n", pr)
			}
		} else {
			fmt.Fprintf(w, "ok   %s: %s\n", path, tc.Name)
		}
	}
	return len(f.Tests), failed, nil
}

func runAlertTests(ctx context.Context, groups *rulefmt.RuleGroups, interval time.Duration, st Storage, base time.Time, tc Test) ([]string, error) {
	e, err := evaluator.New(evaluator.Config{Groups: groups, Interval: interval}, st, log.NewNopLogger(), nil)
	if err != nil {
		return nil, err
	}
	checks := slices.Clone(tc.AlertRuleTests)
	sort.SliceStable(checks, func(i, j int) bool { return checks[i].EvalTime < checks[j].EvalTime })
	var problems []string
	at := time.Duration(0)
	for _, c := range checks {
		// Evaluate every interval up to the check's time, as promtool does.
		for ; at <= time.Duration(c.EvalTime); at += interval {
			e.Eval(ctx, base.Add(at))
		}
		if time.Duration(c.EvalTime)%interval != 0 {
			e.Eval(ctx, base.Add(time.Duration(c.EvalTime)))
		}
		var got []string
		for _, a := range e.Alerts() {
			if a.State == evaluator.StateFiring && a.Labels["alertname"] == c.Alertname {
				labels := maps.Clone(a.Labels)
				delete(labels, "alertname")
				got = append(got, describe(labels, a.Annotations))
			}
		}
		var want []string
		for _, x := range c.ExpAlerts {
			want = append(want, describe(x.ExpLabels, x.ExpAnnotations))
		}
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			problems = append(problems, fmt.Sprintf("%s at %s:\n      want %v\n      got  %v", c.Alertname, c.EvalTime, want, got))
		}
	}
	return problems, nil
}

func describe(labels, annotations map[string]string) string {
	var b strings.Builder
	b.WriteString("{")
	for i, k := range slices.Sorted(maps.Keys(labels)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", k, labels[k])
	}
	b.WriteString("} annotations {")
	for i, k := range slices.Sorted(maps.Keys(annotations)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", k, annotations[k])
	}
	b.WriteString("}")
	return b.String()
}
