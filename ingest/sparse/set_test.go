package sparse

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
)

func TestFindTakesOnlyComparisonsWhoseNameNeverShows(t *testing.T) {
	f := func(expr string, want ...string) {
		t.Helper()
		conds, err := Find(expr)
		if err != nil {
			t.Fatalf("%s: %s", expr, err)
		}
		var got []string
		for _, c := range conds {
			got = append(got, c.String())
		}
		if strings.Join(got, "; ") != strings.Join(want, "; ") {
			t.Errorf("%s:\n got %q\nwant %q", expr, got, want)
		}
	}
	// Aggregated, directly or through set operators.
	f(`max by (kiosk, device) (kiosk_peripheral_state{state="not_responding"} == 1)`, `kiosk_peripheral_state{state="not_responding"} == 1`)
	f(`max by (kiosk) (a == 1 or b{x=~"p|q"} == 1)`, `a == 1`, `b{x=~"p|q"} == 1`)
	f(`max by (kiosk) (abs(o) > 120)`, `abs(o) > 120`)
	f(`min by (kiosk) (t <= 0) unless on (kiosk) (max by (kiosk) (j == 1))`, `t <= 0`, `j == 1`)
	// The right of and/unless only matches labels.
	f(`x unless on (kiosk) (y == 0)`, `y == 0`)
	f(`sum(x) and (y > 2)`, `y > 2`)
	// Where the name reaches the result, or the comparison is not with a constant.
	f(`x == 1`)
	f(`(x == 1) or (y == 1)`)
	f(`max by (__name__) (x == 1)`)
	f(`max without (kiosk) (x == 1)`)
	f(`topk(3, x > 1)`)
	f(`x and on (__name__) (y == 1)`)
	f(`max by (kiosk) (x > bool 1)`)
	f(`max by (kiosk) (x != 0)`)
	f(`max by (kiosk) (x > y)`)
	f(`max by (kiosk) (rate(x[5m]) > 1)`)
	f(`max by (kiosk) (x offset 1d > 1)`)
	f(`max by (kiosk) ({__name__=~"x|y"} > 1)`)
	f(`max by (kiosk) (max by (kiosk) (x) > 1)`)
	f(`max by (kiosk) ((x > 0) < 8 * y)`)
	// Under a subquery, offset or @: other instants, other lookbacks.
	f(`max_over_time((max by (kiosk) (x == 1))[1h:1m])`)
	f(`(max by (kiosk) (x == 1)) offset 30m`)
	f(`(max by (kiosk) (x == 1)) @ 1796000000`)
}

func TestHolds(t *testing.T) {
	f := func(cond string, v float64, want bool) {
		t.Helper()
		conds, err := Find(`max by (k) (` + cond + `)`)
		if err != nil || len(conds) != 1 {
			t.Fatalf("%s: %v %v", cond, conds, err)
		}
		if got := conds[0].Holds(v); got != want {
			t.Errorf("%s holds for %g: %v, want %v", cond, v, got, want)
		}
	}
	f(`x == 1`, 1, true)
	f(`x == 1`, 0, false)
	f(`x == 1`, math.NaN(), false)
	f(`x > 0.9`, 0.95, true)
	f(`x > 0.9`, 0.5, false)
	// Within the tolerance a sample is copied: the rule compares again.
	f(`x > 0.9`, 0.9, true)
	f(`x >= 0.9`, 0.8999999999999999, true)
	f(`x < 600`, 599, true)
	f(`x < 600`, 601, false)
	f(`x <= 0`, 0, true)
	f(`x <= 0`, 0.01, false)
	f(`abs(x) > 120`, -121, true)
	f(`abs(x) > 120`, -119, false)
	f(`x == -1`, -1, true)
}

func TestOpenKeepsSinceAndRewriteWaitsForTheLookback(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rule-conditions.json")
	rule := `max by (kiosk) (kiosk_paper_jam == 1) unless on (kiosk) (max by (kiosk) (kiosk_service_mode == 1))`
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	s, err := Open(path, []string{rule, `sum(rate(x[5m]))`}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.Conditions()); n != 2 {
		t.Fatalf("%d conditions, want 2", n)
	}
	since := s.Since(0)
	if since.Before(t0) || since.After(t0.Add(time.Second)) {
		t.Fatalf("since %s for a set opened at %s", since, t0)
	}
	if got := s.Rewrite(rule, since.Add(Lookback-time.Second)); got != rule {
		t.Errorf("rewritten before the copies cover the lookback: %s", got)
	}
	got := s.Rewrite(rule, since.Add(Lookback))
	if !strings.Contains(got, "(kioskmon:kiosk_paper_jam:when_") || !strings.Contains(got, "(kioskmon:kiosk_service_mode:when_") {
		t.Errorf("rewritten: %s", got)
	}
	if got := s.Rewrite(`sum(rate(x[5m]))`, since.Add(time.Hour)); got != `sum(rate(x[5m]))` {
		t.Errorf("an expression without conditions changed: %s", got)
	}

	// A restart keeps the time; a rulebook that drops a condition forgets it,
	// and one that brings it back copies it from then.
	s2, err := Open(path, []string{rule}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !s2.Since(0).Equal(since) {
		t.Errorf("since after a restart %s, want %s", s2.Since(0), since)
	}
	if _, err := Open(path, []string{`max by (kiosk) (kiosk_paper_jam == 1)`}, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	s4, err := Open(path, []string{rule}, t0.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !s4.Since(0).Equal(since) || !s4.Since(1).After(t0.Add(3*time.Hour)) {
		t.Errorf("since %s and %s after the service-mode condition came back", s4.Since(0), s4.Since(1))
	}

	if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, []string{rule}, t0); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Errorf("a broken file: %v", err)
	}
}

func TestTrackerEndsOnlyLaterSamples(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "c.json"), []string{`max by (kiosk) (x == 1)`}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key := s.Key(0, 12345)
	if key == s.Key(0, 12346) || key == s.Key(1, 12345) {
		t.Fatal("keys of other series or conditions collide")
	}
	t0 := time.Now().UnixMilli()
	s.Commit([]Update{{Key: key, Ts: t0}})
	s.Commit([]Update{{Key: key, Ts: t0 - 1000, Ended: true}}) // an older sample arriving late
	if ts, ok := s.Live(key); !ok || ts != t0 {
		t.Fatalf("live %v at %d after an older end", ok, ts)
	}
	s.Commit([]Update{{Key: key, Ts: t0 + 1000, Ended: true}})
	if _, ok := s.Live(key); ok {
		t.Fatal("still live after a later end")
	}

	// A copy found at a restart is known by its sorted labels, whatever
	// their order in the query's result, until an update takes it over.
	if s.Seeding() {
		t.Fatal("seeding before any seed")
	}
	n := s.Seed([]LiveCopy{{Labels: []prompb.Label{{Name: "kiosk", Value: "k1"}, {Name: "__name__", Value: s.Condition(0).SeriesName}, {Name: "a", Value: "b"}}, LastMs: t0 + 2000}})
	sorted := []prompb.Label{{Name: "kiosk", Value: "k1"}, {Name: "a", Value: "b"}}
	SortLabels(sorted)
	seed, ts, ok := s.Seeded(0, sorted)
	if n != 1 || !ok || ts != t0+2000 || !s.Seeding() || s.LiveCount() != 1 {
		t.Fatalf("seeded %d: live %v at %d, seeding %v, %d live", n, ok, ts, s.Seeding(), s.LiveCount())
	}
	if _, _, ok := s.Seeded(0, sorted[:1]); ok {
		t.Fatal("another series' labels found the seed")
	}
	s.Commit([]Update{{Key: key, Ts: t0 + 3000, Seeded: seed}})
	if _, _, ok := s.Seeded(0, sorted); ok || s.Seeding() {
		t.Fatal("the seed is still there after its update")
	}
	if ts, ok := s.Live(key); !ok || ts != t0+3000 {
		t.Fatalf("live %v at %d after taking over the seed", ok, ts)
	}
}

// A rulebook's expressions come from a file an operator writes: whatever
// parses, Find must not fail on, and a rewrite must parse again.
func FuzzFind(f *testing.F) {
	for _, e := range []string{
		`max by (kiosk) (x{a="b"} == 1)`,
		`max by (kiosk) (abs(x) > 120 or y <= 0) unless on (kiosk) (max by (kiosk) (z == 0))`,
		`sum(rate(x[5m])) / sum(rate(y[5m])) > 0.1`,
		`min by (k) ({__name__="x", y=~"a|b"} < -1e3)`,
	} {
		f.Add(e)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, expr string) {
		conds, err := Find(expr)
		if err != nil {
			return
		}
		for _, c := range conds {
			if c.SeriesName != NamePrefix+c.Metric+":when_"+c.SeriesName[len(c.SeriesName)-8:] {
				t.Fatalf("copy name %q of %s", c.SeriesName, c)
			}
		}
		s, err := Open(filepath.Join(dir, "c.json"), []string{expr}, time.Time{})
		if err != nil {
			t.Fatalf("Open after Find succeeded: %s", err)
		}
		if rw := s.Rewrite(expr, time.Now()); len(conds) > 0 {
			if _, err := Find(rw); err != nil {
				t.Fatalf("rewrite %q of %q does not parse: %s", rw, expr, err)
			}
		}
	})
}
