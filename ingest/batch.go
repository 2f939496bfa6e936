package ingest

import (
	"fmt"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/kioskmon/kioskmon/ingest/inventory"
	"github.com/kioskmon/kioskmon/ingest/store"
)

// The labels every stored series gets from the inventory; a client's own
// labels of these names are replaced, so a kiosk cannot write as another.
const (
	labelKiosk    = "kiosk"
	labelSite     = "site"
	labelDistrict = "district"
	labelProvider = "provider"
)

func isInventoryLabel(name string) bool {
	switch name {
	case labelKiosk, labelSite, labelDistrict, labelProvider:
		return true
	}
	return false
}

// batch collects the accepted samples of one request. The protocol decoders
// call series for each series, then sample for each of its samples.
type batch struct {
	h      *Handler
	kiosk  *inventory.Kiosk
	now    time.Time
	nowMs  int64
	minMs  int64
	maxMs  int64
	budget seriesChecker

	labels   []store.Label
	names    []byte      // raw metric names of accepted series, back to back
	nameEnds []int       // end offset in names of each accepted series
	rows     []store.Row // MetricNameRaw filled in by finish
	rowName  []int32     // index into nameEnds of each row

	// The series being added: its index in nameEnds, or -1 if refused.
	cur       int32
	curReason reason

	tally tally
}

func (b *batch) reset(h *Handler, kiosk *inventory.Kiosk, now time.Time) {
	b.h, b.kiosk, b.now = h, kiosk, now
	b.nowMs = now.UnixMilli()
	b.maxMs = now.Add(h.cfg.MaxFutureSkew).UnixMilli()
	b.minMs = now.Add(-h.cfg.Retention).UnixMilli()
	b.labels = b.labels[:0]
	b.names = b.names[:0]
	b.nameEnds = b.nameEnds[:0]
	clear(b.rows)
	b.rows = b.rows[:0]
	b.rowName = b.rowName[:0]
	b.tally.reset()
	b.cur = -1
}

// series starts a series with the client's labels (the metric name as
// "__name__"). It validates them and checks the kiosk's series budget; if the
// series is refused, its samples are counted as refused.
func (b *batch) series(labels []store.Label) {
	cfg := &b.h.cfg
	b.cur = -1
	if len(labels) > cfg.MaxLabels {
		b.refuseSeries(reasonTooManyLabels, func() string {
			return fmt.Sprintf("series %s has %d labels, more than the limit of %d", seriesString(labels), len(labels), cfg.MaxLabels)
		})
		return
	}
	hasName := false
	b.labels = b.labels[:0]
	for _, l := range labels {
		if len(l.Name) > cfg.MaxLabelNameLength {
			b.refuseSeries(reasonLabelNameTooLong, func() string {
				return fmt.Sprintf("label name %.40q... is %d bytes long, more than the limit of %d", l.Name, len(l.Name), cfg.MaxLabelNameLength)
			})
			return
		}
		if len(l.Value) > cfg.MaxLabelValueLength {
			b.refuseSeries(reasonLabelValueTooLong, func() string {
				return fmt.Sprintf("value of label %q is %d bytes long, more than the limit of %d", l.Name, len(l.Value), cfg.MaxLabelValueLength)
			})
			return
		}
		if l.Name == "__name__" {
			if !validMetricName(l.Value) {
				b.refuseSeries(reasonInvalidName, func() string {
					return fmt.Sprintf("metric name %q is not a valid Prometheus name ([a-zA-Z_:][a-zA-Z0-9_:]*)", l.Value)
				})
				return
			}
			hasName = true
		} else if !validLabelName(l.Name) {
			b.refuseSeries(reasonInvalidName, func() string {
				return fmt.Sprintf("label name %q is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)", l.Name)
			})
			return
		}
		if isInventoryLabel(l.Name) || l.Value == "" {
			continue
		}
		b.labels = append(b.labels, l)
	}
	if !hasName {
		b.refuseSeries(reasonMissingMetricName, func() string {
			return fmt.Sprintf("series %s has no metric name (__name__)", seriesString(labels))
		})
		return
	}
	k := b.kiosk
	b.labels = append(b.labels,
		store.Label{Name: labelKiosk, Value: k.ID},
		store.Label{Name: labelSite, Value: k.Site},
		store.Label{Name: labelDistrict, Value: k.District},
		store.Label{Name: labelProvider, Value: k.Provider},
	)
	start := len(b.names)
	b.names = store.AppendMetricName(b.names, b.labels)
	if !b.budget.admit(xxhash.Sum64(b.names[start:])) {
		b.names = b.names[:start]
		b.refuseSeries(reasonSeriesLimit, func() string {
			return fmt.Sprintf("kiosk %q reached its budget of %d series per %s, so new series such as %s are refused (its known series are still accepted)",
				k.ID, b.h.cfg.KioskSeriesLimit, b.h.cfg.KioskSeriesWindow, seriesString(labels))
		})
		return
	}
	b.nameEnds = append(b.nameEnds, len(b.names))
	b.cur = int32(len(b.nameEnds) - 1)
}

// refuseSeries marks the current series refused; its samples are counted when added.
func (b *batch) refuseSeries(r reason, example func() string) {
	b.cur = -1
	b.curReason = r
	b.refuseExample(r, example)
}

func (b *batch) refuseExample(r reason, example func() string) {
	if b.tally.example[r] == "" {
		b.tally.example[r] = example()
	}
}

// sample adds one sample of the current series; tsMs is in milliseconds.
func (b *batch) sample(tsMs int64, value float64) {
	if b.cur < 0 {
		b.tally.add(b.curReason, 1, nil)
		return
	}
	if tsMs > b.maxMs {
		b.tally.add(reasonTimestampInFuture, 1, func() string {
			return fmt.Sprintf("kiosk %q sent %s at %s, %s ahead of the server clock (limit %s); fix the kiosk's time synchronisation",
				b.kiosk.ID, b.currentName(), time.UnixMilli(tsMs).UTC().Format(time.RFC3339), time.Duration(tsMs-b.nowMs)*time.Millisecond, b.h.cfg.MaxFutureSkew)
		})
		return
	}
	if tsMs < b.minMs {
		b.tally.add(reasonTimestampTooOld, 1, func() string {
			return fmt.Sprintf("kiosk %q sent %s at %s, older than the retention of %s", b.kiosk.ID, b.currentName(),
				time.UnixMilli(tsMs).UTC().Format(time.RFC3339), humanDuration(b.h.cfg.Retention))
		})
		return
	}
	b.rows = append(b.rows, store.Row{Timestamp: tsMs, Value: value})
	b.rowName = append(b.rowName, b.cur)
}

// refuseAll moves every accepted sample to r (the request as a whole hit a limit).
func (b *batch) refuseAll(r reason, example func() string) {
	b.tally.add(r, len(b.rows), example)
	b.rows = b.rows[:0]
	b.rowName = b.rowName[:0]
}

// finish points each row at its series name; names no longer grows.
func (b *batch) finish() []store.Row {
	for i := range b.rows {
		id := b.rowName[i]
		start := 0
		if id > 0 {
			start = b.nameEnds[id-1]
		}
		b.rows[i].MetricNameRaw = b.names[start:b.nameEnds[id]]
	}
	return b.rows
}

func (b *batch) currentName() string {
	if b.cur < 0 {
		return "a series"
	}
	// AppendMetricName has renamed "__name__" to "" in b.labels.
	for _, l := range b.labels {
		if l.Name == "" || l.Name == "__name__" {
			return l.Value
		}
	}
	return "a series"
}

// humanDuration prints whole days as days ("90d"), the rest as Go does.
func humanDuration(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

func seriesString(labels []store.Label) string {
	var sb strings.Builder
	name := ""
	for _, l := range labels {
		if l.Name == "__name__" {
			name = l.Value
		}
	}
	sb.WriteString(name)
	sb.WriteByte('{')
	n := 0
	for _, l := range labels {
		if l.Name == "__name__" {
			continue
		}
		if n > 0 {
			sb.WriteByte(',')
		}
		if n == 5 {
			sb.WriteString("...")
			break
		}
		fmt.Fprintf(&sb, "%s=%q", l.Name, l.Value)
		n++
	}
	sb.WriteByte('}')
	return sb.String()
}

func validMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}
