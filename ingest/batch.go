package ingest

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/kioskmon/kioskmon/ingest/inventory"
	"github.com/kioskmon/kioskmon/ingest/sparse"
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

	// The rule conditions of ingest/sparse that the request's series match:
	// spans[i] are the refs of the series whose name ends at nameEnds[i].
	spans     []refSpan
	refs      []conditionRef
	refLabels []store.Label // each matched series' labels sorted, back to back
	matched   []int32
	nameLabel []store.Label
	sorted    []store.Label
	updates   []sparse.Update
	copies    int
	labelOf   func(string) string
	refTable  []int32 // canonicalRefs' table: a ref's index + 1, 0 when free
	canon     []int32 // by ref: the ref that keeps its copy's state
	lastTs    []int64 // by ref: its last sample's time, to see the order
	copyJobs  []copyJob
}

// copyJob is a sample (row) to judge against a condition (ref).
type copyJob struct{ ref, row int32 }

type refSpan struct{ lo, hi int32 }

// conditionRef is one condition a series of the request matches.
type conditionRef struct {
	cond         int32
	key          uint64
	labLo, labHi int32
	name         int32 // index into nameEnds of the copy's name; -1 until needed
	// The copy's state as this request's samples left it; known false means
	// it is still to be read from the Set. liveTs is the last sample that met
	// the condition while live, the one that ended it when not.
	known, live, changed bool
	liveTs               int64
	seeded               uint64 // the seed key, when it was found live at a restart
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
	b.spans = b.spans[:0]
	b.refs = b.refs[:0]
	clear(b.refLabels)
	b.refLabels = b.refLabels[:0]
	b.updates = b.updates[:0]
	b.copies = 0
	if b.labelOf == nil {
		b.labelOf = b.label
	}
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
			// A copy must hold only samples of its original.
			if strings.HasPrefix(l.Value, sparse.NamePrefix) {
				b.refuseSeries(reasonInvalidName, func() string {
					return fmt.Sprintf("metric name %q is reserved: names starting with %q are kioskmon's own (copies of rule conditions)", l.Value, sparse.NamePrefix)
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
	hash := xxhash.Sum64(b.names[start:])
	if !b.budget.admit(hash) {
		b.names = b.names[:start]
		b.refuseSeries(reasonSeriesLimit, func() string {
			return fmt.Sprintf("kiosk %q reached its budget of %d series per %s, so new series such as %s are refused (its known series are still accepted)",
				k.ID, b.h.cfg.KioskSeriesLimit, b.h.cfg.KioskSeriesWindow, seriesString(labels))
		})
		return
	}
	b.nameEnds = append(b.nameEnds, len(b.names))
	b.cur = int32(len(b.nameEnds) - 1)
	if sp := b.h.conditions; sp != nil {
		b.matchConditions(sp, hash)
	}
}

// matchConditions notes the rule conditions the current series matches;
// hash is its encoded name's.
func (b *batch) matchConditions(sp *sparse.Set, hash uint64) {
	lo := int32(len(b.refs))
	if name := b.currentName(); sp.HasMetric(name) {
		b.matched = sp.Match(b.matched[:0], name, b.labelOf)
		if len(b.matched) > 0 {
			labLo := len(b.refLabels)
			for _, l := range b.labels {
				if l.Name != "" && l.Name != "__name__" && l.Value != "" {
					b.refLabels = append(b.refLabels, l)
				}
			}
			for _, c := range b.matched {
				b.refs = append(b.refs, conditionRef{cond: c, key: sp.Key(c, hash), labLo: int32(labLo), labHi: int32(len(b.refLabels)), name: -1})
			}
		}
	}
	b.spans = append(b.spans, refSpan{lo, int32(len(b.refs))})
}

// label returns the current series' label value, "" if it has none.
func (b *batch) label(name string) string {
	for _, l := range b.labels {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
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

// finish adds the rule conditions' copies and points each row at its series
// name; names no longer grows. The rows of the request come first: b.copies
// rows at the end are copies.
func (b *batch) finish() []store.Row {
	if sp := b.h.conditions; sp != nil && len(b.refs) > 0 {
		b.copyConditions(sp)
	}
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

// copyConditions appends to rows each sample's copies: the sample itself to
// each condition it meets, a staleness marker to each live copy whose
// condition it no longer meets. The Set learns of them after the write
// (b.updates), so a request that is not stored changes nothing.
func (b *batch) copyConditions(sp *sparse.Set) {
	n := len(b.rows)
	// A series may come several times in a request (remote write may send a
	// TimeSeries per sample; text and Influx lines are a sample each), and its
	// samples in any order: each copy has one state, kept by its first ref
	// (canon), and its samples are judged in time order, sorted if they did
	// not come so.
	b.canonicalRefs()
	b.copyJobs = b.copyJobs[:0]
	inOrder := true
	for i := 0; i < n; i++ {
		if v := b.rows[i].Value; math.IsNaN(v) && !store.IsStaleNaN(v) {
			continue // the storage drops it: the series' last sample stays the one before
		}
		span, ts := b.spans[b.rowName[i]], b.rows[i].Timestamp
		for r := span.lo; r < span.hi; r++ {
			c := b.canon[r]
			inOrder = inOrder && ts >= b.lastTs[c]
			b.lastTs[c] = ts
			b.copyJobs = append(b.copyJobs, copyJob{ref: c, row: int32(i)})
		}
	}
	if !inOrder {
		slices.SortStableFunc(b.copyJobs, func(x, y copyJob) int {
			return cmp.Or(cmp.Compare(x.ref, y.ref), cmp.Compare(b.rows[x.row].Timestamp, b.rows[y.row].Timestamp))
		})
	}
	for _, j := range b.copyJobs {
		b.judge(sp, &b.refs[j.ref], b.rows[j.row].Timestamp, b.rows[j.row].Value)
	}
	b.copies = len(b.rows) - n
	// The Set learns each copy's final state, once.
	for i := range b.refs {
		if ref := &b.refs[i]; ref.changed {
			b.updates = append(b.updates, sparse.Update{Key: ref.key, Ts: ref.liveTs, Ended: !ref.live, Seeded: ref.seeded})
		}
	}
}

// canonicalRefs sets canon[r] to the first ref with r's copy key, through an
// open-addressing table of ref indices (keys are hashes already): a map
// costs a fifth of a live request's time when most of its series match.
func (b *batch) canonicalRefs() {
	size := 16
	for size < 2*len(b.refs) {
		size *= 2
	}
	b.refTable = slices.Grow(b.refTable[:0], size)[:size]
	clear(b.refTable)
	mask := uint64(size - 1)
	b.canon, b.lastTs = b.canon[:0], b.lastTs[:0]
	for r := range b.refs {
		key := b.refs[r].key
		i := key & mask
		for b.refTable[i] != 0 && b.refs[b.refTable[i]-1].key != key {
			i = (i + 1) & mask
		}
		if b.refTable[i] == 0 {
			b.refTable[i] = int32(r) + 1
		}
		b.canon, b.lastTs = append(b.canon, b.refTable[i]-1), append(b.lastTs, math.MinInt64)
	}
}

// judge copies a sample that meets ref's condition, or ends ref's live copy
// with a staleness marker at a sample that does not.
func (b *batch) judge(sp *sparse.Set, ref *conditionRef, ts int64, v float64) {
	if sp.Condition(ref.cond).Holds(v) {
		b.appendCopy(sp, ref, ts, v)
		if !ref.known || !ref.live || ts > ref.liveTs {
			ref.liveTs = ts
		}
		ref.known, ref.live, ref.changed = true, true, true
		return
	}
	if !ref.known {
		ref.liveTs, ref.live = sp.Live(ref.key)
		if !ref.live && sp.Seeding() {
			b.sorted = append(b.sorted[:0], b.refLabels[ref.labLo:ref.labHi]...)
			sparse.SortLabels(b.sorted)
			ref.seeded, ref.liveTs, ref.live = sp.Seeded(ref.cond, b.sorted)
			ref.changed = ref.live // the Set drops the seed once this is stored
		}
		ref.known = true
	}
	// A live copy gets a staleness marker at every sample that does not meet
	// the condition, even one older than its last copied sample (arriving
	// late, in another request): the marker belongs there in the copy. It
	// ends only at a later one.
	if ref.live {
		b.appendCopy(sp, ref, ts, store.StaleNaN)
		if ts >= ref.liveTs {
			ref.live, ref.liveTs, ref.changed = false, ts, true
		}
	}
}

func (b *batch) appendCopy(sp *sparse.Set, ref *conditionRef, ts int64, v float64) {
	if ref.name < 0 {
		b.nameLabel = append(b.nameLabel[:0], store.Label{Name: "__name__", Value: sp.Condition(ref.cond).SeriesName})
		b.nameLabel = append(b.nameLabel, b.refLabels[ref.labLo:ref.labHi]...)
		b.names = store.AppendMetricName(b.names, b.nameLabel)
		b.nameEnds = append(b.nameEnds, len(b.names))
		ref.name = int32(len(b.nameEnds) - 1)
	}
	b.rows = append(b.rows, store.Row{Timestamp: ts, Value: v})
	b.rowName = append(b.rowName, ref.name)
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
