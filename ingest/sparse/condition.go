// Package sparse keeps, at ingest, a copy of the few samples that meet a rule's
// condition, so that the rules read those few series instead of the fleet's.
//
// Most grading rules look for a rare state across every kiosk:
//
//	max by (kiosk, site, district, provider, device, kind) (kiosk_peripheral_state{state="not_responding"} == 1)
//
// reads 900,000 series at 100,000 kiosks to find the hundred that are 1. The
// ingest sees every sample once anyway; for each condition of the form
// "selector op number" that a rule aggregates, it writes the samples that meet
// it to a series of their own, kioskmon:kiosk_peripheral_state:when_<hash>, with the
// original's labels, and a Prometheus staleness marker at the first sample
// that no longer meets it. The evaluator then reads
//
//	max by (...) (kioskmon:kiosk_peripheral_state:when_<hash>{state="not_responding"} == 1)
//
// which has the same result at every instant (see Set.Rewrite for why), from a
// hundred series.
//
// Only the evaluator's queries are rewritten; the HTTP query API, Grafana and
// the exported rule files read the original series.
package sparse

import (
	"fmt"
	"math"
	"regexp"
	"strconv"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/cespare/xxhash/v2"
)

// NamePrefix starts the name of every copy, kioskmon:<metric>:when_<hash>,
// in the recording rules' level:metric:operation form. Clients may not write
// names with it, and a selector such as {__name__=~"kiosk_.+"} does not
// match them.
const NamePrefix = "kioskmon:"

// LiveCopiesQuery finds the copies written in the last half hour, with the
// time of each one's last sample, for Seed.
const LiveCopiesQuery = `tlast_over_time({__name__=~"kioskmon:.+:when_[0-9a-f]{8}"}[30m]) keep_metric_names`

// Condition is one comparison of a metric's series with a constant, found in
// a rule's expression: kiosk_host_cpu_usage_ratio > 0.9, or with Abs,
// abs(kiosk_host_clock_offset_seconds) > 120.
type Condition struct {
	// Metric is the compared metric's name.
	Metric string
	// Filters are the selector's label filters other than the name.
	Filters []metricsql.LabelFilter
	// Op is one of == > < >= <=.
	Op string
	// Threshold is the constant compared with.
	Threshold float64
	// Abs compares the absolute value.
	Abs bool

	// SeriesName is the copy's metric name: NamePrefix + Metric + ":when_" +
	// 8 hex digits of the condition's text.
	SeriesName string
	text       string
	matchers   []matcher
}

type matcher struct {
	label    string
	value    string
	re       *regexp.Regexp // for =~ and !~
	negative bool
}

// String is the condition as MetricsQL, as a rule would write it.
func (c *Condition) String() string { return c.text }

// newCondition returns the condition of a comparison, or nil if the
// comparison is not one the ingest can copy: the metric must be named
// literally with one set of label filters, without offset, @ or window, and
// compared without bool with a finite number.
func newCondition(be *metricsql.BinaryOpExpr) (*Condition, error) {
	switch be.Op {
	case "==", ">", "<", ">=", "<=":
	default:
		return nil, nil // != would keep NaNs and staleness markers; not worth it
	}
	if be.Bool || be.KeepMetricNames || be.FillLeft != nil || be.FillRight != nil || be.GroupModifier.Op != "" || be.JoinModifier.Op != "" {
		return nil, nil
	}
	n, ok := be.Right.(*metricsql.NumberExpr)
	if !ok || math.IsNaN(n.N) || math.IsInf(n.N, 0) {
		return nil, nil
	}
	left, abs := be.Left, false
	if fe, ok := left.(*metricsql.FuncExpr); ok && fe.Name == "abs" && len(fe.Args) == 1 && !fe.KeepMetricNames {
		left, abs = fe.Args[0], true
	}
	me, ok := left.(*metricsql.MetricExpr)
	if !ok || len(me.LabelFilterss) != 1 {
		return nil, nil
	}
	lfs := me.LabelFilterss[0]
	if len(lfs) == 0 || lfs[0].Label != "__name__" || lfs[0].IsRegexp || lfs[0].IsNegative || lfs[0].Value == "" {
		return nil, nil
	}
	c := &Condition{Metric: lfs[0].Value, Filters: append([]metricsql.LabelFilter(nil), lfs[1:]...), Op: be.Op, Threshold: n.N, Abs: abs}
	for _, lf := range c.Filters {
		if lf.Label == "__name__" {
			return nil, nil
		}
		m := matcher{label: lf.Label, value: lf.Value, negative: lf.IsNegative}
		if lf.IsRegexp {
			re, err := metricsql.CompileRegexpAnchored(lf.Value)
			if err != nil {
				return nil, fmt.Errorf("condition %s: %w", be.AppendString(nil), err)
			}
			m.re = re
		}
		c.matchers = append(c.matchers, m)
	}
	c.text = string(be.AppendString(nil))
	c.SeriesName = NamePrefix + c.Metric + ":when_" + strconv.FormatUint(xxhash.Sum64String(c.text)>>32|1<<32, 16)[1:]
	return c, nil
}

// Matches reports whether the series' labels meet the selector's label
// filters, as VictoriaMetrics would: a missing label has the value "".
func (c *Condition) Matches(label func(name string) string) bool {
	for _, m := range c.matchers {
		v := label(m.label)
		var ok bool
		if m.re != nil {
			ok = m.re.MatchString(v)
		} else {
			ok = v == m.value
		}
		if ok == m.negative {
			return false
		}
	}
	return true
}

// relTolerance widens the comparison when copying: VictoriaMetrics stores a
// block's values as decimals with a shared exponent, so a value a few units
// in the 15th digit from the threshold may read back on the other side of it.
// A copied sample that does not meet the condition as stored is harmless: the
// rule compares again. A sample not copied must not meet it.
const relTolerance = 1e-9

// Holds reports whether a sample of value v may meet the condition once
// stored; NaN never does.
func (c *Condition) Holds(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	if c.Abs {
		v = math.Abs(v)
	}
	t := c.Threshold
	tol := relTolerance * math.Max(1, math.Abs(t))
	switch c.Op {
	case "==":
		return math.Abs(v-t) <= tol
	case ">", ">=":
		return v >= t-tol
	default: // "<", "<="
		return v <= t+tol
	}
}
