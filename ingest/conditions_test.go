package ingest

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"

	"github.com/kioskmon/kioskmon/ingest/sparse"
)

func TestRuleConditionCopies(t *testing.T) {
	f := newFixture(t, Config{})
	conds, err := sparse.Open(filepath.Join(t.TempDir(), "c.json"), []string{
		`max by (kiosk, device) (kiosk_peripheral_state{state="fault"} == 1)`,
		`max by (kiosk) (abs(kiosk_host_clock_offset_seconds) > 120)`,
	}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	f.h.CopyConditions(conds)
	fault := conds.Condition(0).SeriesName
	clock := conds.Condition(1).SeriesName
	push := func(status int, ss ...series) []string {
		t.Helper()
		code, msg, _ := f.post(t, "/api/v1/write", remoteWriteBody(ss...), basic1...)
		if code != status {
			t.Fatalf("%d %q, want %d", code, msg, status)
		}
		var copies []string
		for _, s := range f.writer.take() {
			if strings.HasPrefix(s, sparse.NamePrefix) {
				copies = append(copies, s)
			}
		}
		return copies
	}
	want := func(got []string, want ...string) {
		t.Helper()
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("copies\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	stale := fmt.Sprint(math.NaN())
	k1 := "district=gulou,kiosk=k1,provider=acme,site=hall-1"
	state := func(tsMs int64, s string, v float64) series {
		return ts("kiosk_peripheral_state", tsMs, v, "device", "printer0", "state", s)
	}

	// Only the samples that meet a condition are copied, with all their labels.
	want(push(204, state(now-3000, "fault", 0), state(now-3000, "ok", 1), ts("kiosk_host_clock_offset_seconds", now-3000, 3)))
	want(push(204, state(now-2000, "fault", 1), state(now-2000, "ok", 0), ts("kiosk_host_clock_offset_seconds", now-2000, -300)),
		fmt.Sprintf("%s{device=printer0,%s,state=fault} 1 @%d", fault, k1, now-2000),
		fmt.Sprintf("%s{%s} -300 @%d", clock, k1, now-2000))
	// A storage failure acknowledges nothing and changes no copy's state...
	f.writer.fail = fmt.Errorf("disk full")
	push(503, state(now-1000, "fault", 0))
	f.writer.fail = nil
	// ...so the retry still ends the copy, with a staleness marker, once.
	want(push(204, state(now-1000, "fault", 0), ts("kiosk_host_clock_offset_seconds", now-1000, -310)),
		fmt.Sprintf("%s{device=printer0,%s,state=fault} %s @%d", fault, k1, stale, now-1000),
		fmt.Sprintf("%s{%s} -310 @%d", clock, k1, now-1000))
	want(push(204, state(now, "fault", 0)))
	// An ended copy gets no second marker from a late sample.
	want(push(204, state(now-2500, "fault", 0)))
	// A late sample that does not meet the condition, older than the live
	// copy's last, gets its marker where it belongs and the copy stays live.
	want(push(204, ts("kiosk_host_clock_offset_seconds", now-1500, 2)),
		fmt.Sprintf("%s{%s} %s @%d", clock, k1, stale, now-1500))

	// The client is told of its own samples only, and the counters agree.
	code, msg, _ := f.post(t, "/api/v1/write", remoteWriteBody(state(now, "fault", 1), ts("up", now, 1), ts("bad name", now, 1)), basic1...)
	if code != 400 || !strings.Contains(msg, "accepted 2 samples") {
		t.Fatalf("%d %q", code, msg)
	}
	if n := f.counter(t, "kioskmon_ingest_rule_condition_copies_total"); n != 6 {
		t.Errorf("%d copies counted, want 6", n)
	}
	if n := f.counter(t, `kioskmon_ingest_samples_total{protocol="remote_write"}`); n != 13 {
		t.Errorf("%d samples counted, want 13", n)
	}
	// Nobody writes into a copy.
	code, msg, _ = f.post(t, "/api/v1/write", remoteWriteBody(ts(fault, now, 1, "device", "printer0", "state", "fault")), basic1...)
	if code != 400 || !strings.Contains(msg, "is reserved") {
		t.Fatalf("a client's copy: %d %q", code, msg)
	}
	if n := conds.LiveCount(); n != 2 {
		t.Errorf("%d live copies, want 2 (the last fault, the clock offset)", n)
	}
}

// pushCopies posts a remote-write body and returns the copies written.
func pushCopies(t *testing.T, f *fixture, body []byte) []string {
	t.Helper()
	code, msg, _ := f.post(t, "/api/v1/write", body, basic1...)
	if code != 204 {
		t.Fatalf("%d %q", code, msg)
	}
	var copies []string
	for _, s := range f.writer.take() {
		if strings.HasPrefix(s, sparse.NamePrefix) {
			copies = append(copies, s)
		}
	}
	return copies
}

// TestCopyEndsWithinOneRequest: remote write may carry a series in a
// TimeSeries per sample (a backlog catching up), or its samples out of time
// order; the copy has one state across them and judges them in time order,
// so the later sample that no longer meets the condition ends it.
func TestCopyEndsWithinOneRequest(t *testing.T) {
	outOfOrder := ts("kiosk_paper_jam", now, 0)
	outOfOrder.samples = append(outOfOrder.samples, prompb.Sample{Timestamp: now - 30000, Value: 1})
	for name, body := range map[string][]byte{
		"a TimeSeries per sample": remoteWriteBody(ts("kiosk_paper_jam", now-30000, 1), ts("kiosk_paper_jam", now, 0)),
		"out of order":            remoteWriteBody(outOfOrder),
	} {
		f := newFixture(t, Config{})
		conds, err := sparse.Open(filepath.Join(t.TempDir(), "c.json"), []string{`max by (kiosk) (kiosk_paper_jam == 1)`}, testNow)
		if err != nil {
			t.Fatal(err)
		}
		f.h.CopyConditions(conds)
		copyName := conds.Condition(0).SeriesName
		k1 := "district=gulou,kiosk=k1,provider=acme,site=hall-1"
		got := pushCopies(t, f, body)
		want := []string{
			fmt.Sprintf("%s{%s} 1 @%d", copyName, k1, now-30000),
			fmt.Sprintf("%s{%s} %g @%d", copyName, k1, math.NaN(), now),
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: copies\n%s\nwant\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if n := conds.LiveCount(); n != 0 {
			t.Errorf("%s: %d live copies after the condition ended, want 0", name, n)
		}
	}
}
