package sparse

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
	"github.com/VictoriaMetrics/metricsql"
	"github.com/cespare/xxhash/v2"

	"github.com/kioskmon/kioskmon/internal/atomicfile"
)

// Lookback is how far back an instant query looks for a series' last sample
// (the embedded storage's instant step). A copy answers for an instant once
// it has been written for at least this long.
const Lookback = 5 * time.Minute

// Set is the conditions found in a rulebook's expressions, with the time each
// has been copied since. It is safe for concurrent use.
type Set struct {
	conds    []*Condition
	byMetric map[string][]int32
	byName   map[string]int32 // by SeriesName
	since    []time.Time

	mu       sync.RWMutex
	rewrites map[string]*rewrite

	tracker tracker
}

type rewrite struct {
	conds []int32 // the conditions replaced; none: the expression is kept
	text  string
}

// sinceFile is the file that records since when each condition is copied:
// a restart keeps the copies it has, a condition new to the rulebook starts
// from nothing.
type sinceFile struct {
	Conditions map[string]sinceEntry `json:"conditions"`
}

type sinceEntry struct {
	Condition string    `json:"condition"`
	Since     time.Time `json:"since"`
}

// Open finds the conditions of exprs that the ingest can copy and records
// them in path (a JSON file kioskmon owns): a condition already there keeps
// its time, a new one is copied from now, one no longer used is forgotten.
// A zero now means every sample the storage will hold is copied: the storage
// is new, so the copies cover any instant, backfilled history included.
func Open(path string, exprs []string, now time.Time) (*Set, error) {
	s := &Set{byMetric: map[string][]int32{}, byName: map[string]int32{}, rewrites: map[string]*rewrite{}}
	s.tracker.init()
	for _, e := range exprs {
		conds, err := Find(e)
		if err != nil {
			return nil, err
		}
		for _, c := range conds {
			if _, ok := s.byName[c.SeriesName]; ok {
				continue
			}
			i := int32(len(s.conds))
			s.conds = append(s.conds, c)
			s.byName[c.SeriesName] = i
			s.byMetric[c.Metric] = append(s.byMetric[c.Metric], i)
		}
	}
	var old sinceFile
	switch data, err := os.ReadFile(path); {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", path, err)
	default:
		if err := json.Unmarshal(data, &old); err != nil {
			return nil, fmt.Errorf("read %s: %w (delete it: the rules then read the original series for %s)", path, err, Lookback)
		}
	}
	cur := sinceFile{Conditions: map[string]sinceEntry{}}
	s.since = make([]time.Time, len(s.conds))
	for i, c := range s.conds {
		e, ok := old.Conditions[c.SeriesName]
		if !ok || e.Condition != c.text {
			e = sinceEntry{Condition: c.text}
			if !now.IsZero() {
				e.Since = now.UTC().Truncate(time.Second).Add(time.Second)
			}
		}
		s.since[i] = e.Since
		cur.Conditions[c.SeriesName] = e
	}
	data, err := json.MarshalIndent(cur, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return nil, err
	}
	return s, nil
}

// Find returns the conditions of expr that can be copied: comparisons whose
// result's metric name never matters. That is a comparison aggregated by
// max, min, sum, avg, count or group (by labels other than __name__), directly
// or through and, or and unless, or one on the right of and or unless (which
// only matches labels). Elsewhere a copy would change the result's name.
func Find(expr string) ([]*Condition, error) {
	e, err := metricsql.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", expr, err)
	}
	var conds []*Condition
	var ferr error
	visitConditions(e, false, func(be *metricsql.BinaryOpExpr) {
		c, err := newCondition(be)
		if err != nil && ferr == nil {
			ferr = err
		}
		if c != nil {
			conds = append(conds, c)
		}
	})
	return conds, ferr
}

// visitConditions calls f for each comparison whose result's metric name
// does not matter (nameFree).
func visitConditions(e metricsql.Expr, nameFree bool, f func(*metricsql.BinaryOpExpr)) {
	switch e := e.(type) {
	case *metricsql.BinaryOpExpr:
		op := strings.ToLower(e.Op)
		switch {
		case metricsql.IsBinaryOpCmp(op) && nameFree:
			f(e)
			visitConditions(e.Left, false, f)
			visitConditions(e.Right, false, f)
		case op == "or":
			visitConditions(e.Left, nameFree, f)
			visitConditions(e.Right, nameFree, f)
		case op == "and" || op == "unless":
			visitConditions(e.Left, nameFree, f)
			visitConditions(e.Right, !slices.Contains(e.GroupModifier.Args, "__name__"), f)
		default:
			visitConditions(e.Left, false, f)
			visitConditions(e.Right, false, f)
		}
	case *metricsql.AggrFuncExpr:
		free := false
		switch strings.ToLower(e.Name) {
		case "max", "min", "sum", "avg", "count", "group":
			free = (e.Modifier.Op == "" || strings.EqualFold(e.Modifier.Op, "by")) && !slices.Contains(e.Modifier.Args, "__name__")
		}
		for _, a := range e.Args {
			visitConditions(a, free, f)
		}
	case *metricsql.FuncExpr:
		for _, a := range e.Args {
			visitConditions(a, false, f)
		}
	case *metricsql.RollupExpr:
		// A subquery, offset or @ reads other instants than the rule's,
		// with lookbacks sized from each series' own spacing: a copy does
		// not answer there as its original does. Nothing under it is copied.
		return
	}
}

// Conditions returns the conditions the ingest copies.
func (s *Set) Conditions() []*Condition { return s.conds }

// Since returns since when condition i is copied.
func (s *Set) Since(i int) time.Time { return s.since[i] }

// Rewrite returns expr with each condition read from its copy, if every copy
// it needs covers the lookback of an instant at; otherwise expr unchanged.
//
// The result is the same at every instant. A condition selects, for each
// series, the last sample of the 5 minutes before the instant, and keeps it if
// it meets the comparison. The copy holds every sample that meets it and a
// staleness marker at each first one that does not, so its last sample in the
// same 5 minutes is the original's when that meets the comparison, and
// otherwise a staleness marker or nothing, which the comparison drops. The
// copy has the original's labels, and Find takes only comparisons whose
// result's name never reaches the output.
func (s *Set) Rewrite(expr string, at time.Time) string {
	s.mu.RLock()
	rw, ok := s.rewrites[expr]
	s.mu.RUnlock()
	if !ok {
		rw = s.compile(expr)
		s.mu.Lock()
		s.rewrites[expr] = rw
		s.mu.Unlock()
	}
	if len(rw.conds) == 0 {
		return expr
	}
	from := at.Add(-Lookback)
	for _, i := range rw.conds {
		if from.Before(s.since[i]) {
			return expr
		}
	}
	return rw.text
}

func (s *Set) compile(expr string) *rewrite {
	e, err := metricsql.Parse(expr)
	if err != nil {
		return &rewrite{} // the query reports the error itself
	}
	rw := &rewrite{}
	visitConditions(e, false, func(be *metricsql.BinaryOpExpr) {
		c, _ := newCondition(be)
		if c == nil {
			return
		}
		i, ok := s.byName[c.SeriesName]
		if !ok {
			return
		}
		me, ok := be.Left.(*metricsql.MetricExpr)
		if !ok {
			me = be.Left.(*metricsql.FuncExpr).Args[0].(*metricsql.MetricExpr)
		}
		me.LabelFilterss[0][0].Value = c.SeriesName
		rw.conds = append(rw.conds, i)
	})
	if len(rw.conds) > 0 {
		rw.text = string(e.AppendString(nil))
	}
	return rw
}

// Match appends to dst the conditions (by index) whose selector matches a
// series of metric name with the given labels.
func (s *Set) Match(dst []int32, name string, label func(string) string) []int32 {
	for _, i := range s.byMetric[name] {
		if s.conds[i].Matches(label) {
			dst = append(dst, i)
		}
	}
	return dst
}

// HasMetric reports whether any condition compares metric name; one map
// lookup, for the ingest's fast path.
func (s *Set) HasMetric(name string) bool {
	_, ok := s.byMetric[name]
	return ok
}

// Condition returns condition i.
func (s *Set) Condition(i int32) *Condition { return s.conds[i] }

// Key identifies the copy of a series for condition i at the ingest, from
// the hash of the series' name as the ingest encodes it: one multiplication,
// where the name is hashed anyway.
func (s *Set) Key(i int32, seriesHash uint64) uint64 {
	return (seriesHash ^ uint64(i+1)*0x9e3779b97f4a7c15) * 0xff51afd7ed558ccd
}

// seedKey identifies the copy of a series for condition i from its labels
// without the metric name, sorted by name: the form a query returns, and the
// only one a restart has.
func (s *Set) seedKey(i int32, sorted []prompb.Label) uint64 {
	d := xxhash.New()
	d.WriteString(s.conds[i].SeriesName)
	for _, l := range sorted {
		d.WriteString("\xff")
		d.WriteString(l.Name)
		d.WriteString("\xfe")
		d.WriteString(l.Value)
	}
	return d.Sum64()
}

// SortLabels sorts labels by name, as Seeded wants them.
func SortLabels(labels []prompb.Label) {
	slices.SortFunc(labels, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
}
