// Package exporter is the kiosk-side agent: collectors fill a Snapshot of the
// kiosk's state every interval; the snapshot is served on /metrics, pushed to
// kioskmon through an on-disk queue, or written as line protocol for Telegraf.
// The fleet simulator fills the same snapshots from simulated devices.
package exporter

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/kioskmon/kioskmon/exporter/catalog"
)

// Snapshot is one gather: the value of every series at one time.
type Snapshot struct {
	Time   time.Time
	Series []Series
}

// Series is one series of a catalogue metric, or one histogram.
type Series struct {
	Metric *catalog.Metric
	// LabelValues are in the order of Metric.Labels.
	LabelValues []string
	Value       float64
	// Histograms only: cumulative counts per Metric.Buckets, total count and sum.
	BucketCounts []uint64
	Count        uint64
	Sum          float64
}

// Label is a name and a value.
type Label struct{ Name, Value string }

// Reset empties the snapshot for reuse.
func (s *Snapshot) Reset(t time.Time) {
	s.Time = t
	s.Series = s.Series[:0]
}

// Add records a value of the catalogue metric name. It panics if name is not
// in the catalogue or the label values do not match its labels: both are
// programming errors that every collector test catches.
func (s *Snapshot) Add(name string, value float64, labelValues ...string) {
	m := mustMetric(name, len(labelValues))
	s.Series = append(s.Series, Series{Metric: m, LabelValues: labelValues, Value: value})
}

// AddBool records 1 for true and 0 for false.
func (s *Snapshot) AddBool(name string, v bool, labelValues ...string) {
	s.Add(name, boolValue(v), labelValues...)
}

// AddState records an enumeration: one series per state of the metric, 1 for
// current and 0 for the others. labelValues omit the state label. It panics if
// current is not one of the metric's states.
func (s *Snapshot) AddState(name, current string, labelValues ...string) {
	m := mustMetric(name, len(labelValues)+1)
	at := slices.Index(m.Labels, "state")
	if !slices.Contains(m.States, current) {
		panic(fmt.Sprintf("exporter: %s has no state %q", name, current))
	}
	for _, st := range m.States {
		lv := make([]string, 0, len(m.Labels))
		lv = append(lv, labelValues[:at]...)
		lv = append(lv, st)
		lv = append(lv, labelValues[at:]...)
		s.Series = append(s.Series, Series{Metric: m, LabelValues: lv, Value: boolValue(st == current)})
	}
}

// AddHistogram records a histogram: bucketCounts are cumulative, one per
// bucket of the metric.
func (s *Snapshot) AddHistogram(name string, bucketCounts []uint64, count uint64, sum float64, labelValues ...string) {
	m := mustMetric(name, len(labelValues))
	if m.Type != catalog.Histogram || len(bucketCounts) != len(m.Buckets) {
		panic(fmt.Sprintf("exporter: %s: %d bucket counts for %d buckets", name, len(bucketCounts), len(m.Buckets)))
	}
	s.Series = append(s.Series, Series{Metric: m, LabelValues: labelValues, BucketCounts: bucketCounts, Count: count, Sum: sum})
}

func mustMetric(name string, labels int) *catalog.Metric {
	m := catalog.MustLookup(name)
	if labels != len(m.Labels) {
		panic(fmt.Sprintf("exporter: %s takes labels %v, got %d values", name, m.Labels, labels))
	}
	return m
}

func boolValue(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

// Each calls fn for every flat series of the snapshot, as Prometheus exposes
// them: a histogram becomes its _bucket (with le, +Inf last), _sum and _count
// series. labels is reused between calls.
func (s *Snapshot) Each(fn func(name string, labels []Label, value float64)) {
	var labels []Label
	for i := range s.Series {
		se := &s.Series[i]
		m := se.Metric
		labels = labels[:0]
		for j, name := range m.Labels {
			labels = append(labels, Label{name, se.LabelValues[j]})
		}
		if m.Type != catalog.Histogram {
			fn(m.Name, labels, se.Value)
			continue
		}
		n := len(labels)
		for j, le := range m.Buckets {
			fn(m.Name+"_bucket", append(labels[:n], Label{"le", strconv.FormatFloat(le, 'g', -1, 64)}), float64(se.BucketCounts[j]))
		}
		fn(m.Name+"_bucket", append(labels[:n], Label{"le", "+Inf"}), float64(se.Count))
		fn(m.Name+"_sum", labels[:n], se.Sum)
		fn(m.Name+"_count", labels[:n], float64(se.Count))
	}
}

// Len returns the number of flat series Each yields.
func (s *Snapshot) Len() int {
	n := 0
	for i := range s.Series {
		if s.Series[i].Metric.Type == catalog.Histogram {
			n += len(s.Series[i].Metric.Buckets) + 3
		} else {
			n++
		}
	}
	return n
}
