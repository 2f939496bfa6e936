package wal

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/kioskmon/kioskmon/ingest/store"
)

type sample struct {
	name string
	ts   int64
	v    float64
}

func rowsOf(samples ...sample) []store.Row {
	rows := make([]store.Row, len(samples))
	for i, s := range samples {
		rows[i] = store.Row{MetricNameRaw: store.AppendMetricName(nil, []store.Label{{Name: "__name__", Value: s.name}, {Name: "kiosk", Value: "k1"}}), Timestamp: s.ts, Value: s.v}
	}
	return rows
}

func collect(t *testing.T, w *WAL) ([]sample, ReplayStats) {
	t.Helper()
	var got []sample
	st, err := w.Replay(func(rows []store.Row) error {
		for _, r := range rows {
			labels, err := store.DecodeMetricName(r.MetricNameRaw)
			if err != nil {
				return err
			}
			got = append(got, sample{labels[0].Value, r.Timestamp, r.Value})
		}
		return nil
	})
	if err != nil {
		t.Fatalf("replay: %s", err)
	}
	return got, st
}

func noApply([]store.Row) error { return nil }

func TestWriteCloseReplay(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(Config{Dir: dir}, log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	want := []sample{{"a", 1000, 1}, {"b", 1000, 2}, {"a", 2000, 3}}
	if err := w.Write(rowsOf(want[:2]...), noApply); err != nil {
		t.Fatal(err)
	}
	// The second write reuses series "a" from the segment dictionary.
	if err := w.Write(rowsOf(want[2]), noApply); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2, err := Open(Config{Dir: dir}, log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	got, st := collect(t, w2)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replayed %v, want %v", got, want)
	}
	if st.Samples != 3 || st.CorruptSegs != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// crashedWAL writes samples to a log and leaves it as kill -9 would: no seal,
// the preallocated rest of the segment zero.
func crashedWAL(t *testing.T, dir string, samples ...sample) {
	t.Helper()
	w, err := Open(Config{Dir: dir, SegmentBytes: 64 << 10}, log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		if err := w.Write(rowsOf(s), noApply); err != nil {
			t.Fatal(err)
		}
	}
	// No Close: the flusher goroutine is abandoned with the "process".
}

func TestTornTailIsDropped(t *testing.T) {
	dir := t.TempDir()
	crashedWAL(t, dir, sample{"a", 1, 1}, sample{"b", 2, 2})
	path := filepath.Join(dir, segmentName(1))
	data, _ := os.ReadFile(path)
	// Damage the last record, as a write cut short by the crash would.
	end := bytes.LastIndex(data, []byte("b")) + 2
	data[end] ^= 0xff
	os.WriteFile(path, data, 0o644)
	w2, _ := Open(Config{Dir: dir, SegmentBytes: 64 << 10}, log.NewNopLogger())
	defer w2.Close()
	got, st := collect(t, w2)
	if len(got) != 1 || got[0].name != "a" {
		t.Fatalf("replayed %v, want only the complete record", got)
	}
	if st.CorruptSegs != 0 {
		t.Fatalf("the newest segment's torn tail was reported as corruption: %+v", st)
	}
}

func TestCorruptRecordInASealedSegment(t *testing.T) {
	dir := t.TempDir()
	w, _ := Open(Config{Dir: dir, SegmentBytes: 64 << 10}, log.NewNopLogger())
	w.Write(rowsOf(sample{"a", 1, 1}), noApply)
	w.Write(rowsOf(sample{"b", 2, 2}), noApply)
	w.Close()
	path := filepath.Join(dir, segmentName(1))
	data, _ := os.ReadFile(path)
	data[len(segmentMagic)+recordHeaderSize+2] ^= 0xff // inside the first payload
	os.WriteFile(path, data, 0o644)
	w2, _ := Open(Config{Dir: dir, SegmentBytes: 64 << 10}, log.NewNopLogger())
	w2.Close() // seals segment 2, so segment 1 is not the newest
	w3, _ := Open(Config{Dir: dir, SegmentBytes: 64 << 10}, log.NewNopLogger())
	defer w3.Close()
	got, st := collect(t, w3)
	if len(got) != 0 || st.CorruptSegs != 1 {
		t.Fatalf("got %v %+v, want nothing replayed and one corrupt segment", got, st)
	}
}

// TestRecycledSegmentHidesItsPast: a reused segment file still holds the
// records of its previous life; none of them may be replayed.
func TestRecycledSegmentHidesItsPast(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, SegmentBytes: 64 << 10}
	w, _ := Open(cfg, log.NewNopLogger())
	for i := range 50 {
		w.Write(rowsOf(sample{"old", int64(i), 1}), noApply)
	}
	if err := w.Checkpoint(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, spareName)); err != nil {
		t.Fatalf("the trimmed segment was not kept for reuse: %s", err)
	}
	if err := w.Checkpoint(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	// Segment 3 is the recycled file of segment 1: write one sample, crash.
	w.Write(rowsOf(sample{"new", 1, 1}), noApply)
	w2, _ := Open(cfg, log.NewNopLogger())
	defer w2.Close()
	got, _ := collect(t, w2)
	if len(got) != 1 || got[0].name != "new" {
		t.Fatalf("replayed %v, want only the new sample", got)
	}
}

func TestCheckpointTrimsOnlyFlushedSegments(t *testing.T) {
	dir := t.TempDir()
	w, _ := Open(Config{Dir: dir}, log.NewNopLogger())
	w.Write(rowsOf(sample{"a", 1, 1}), noApply)
	flushed := false
	if err := w.Checkpoint(func() error { flushed = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if !flushed {
		t.Fatal("checkpoint did not flush the storage")
	}
	w.Write(rowsOf(sample{"b", 2, 2}), noApply)
	// A failed flush must keep the segment that holds "b".
	if err := w.Checkpoint(func() error { return fmt.Errorf("disk full") }); err == nil {
		t.Fatal("want the flush error")
	}
	w.Close()
	w2, _ := Open(Config{Dir: dir}, log.NewNopLogger())
	defer w2.Close()
	got, _ := collect(t, w2)
	if len(got) != 1 || got[0].name != "b" {
		t.Fatalf("replayed %v, want only b", got)
	}
}

func TestConcurrentWritesAllReplayed(t *testing.T) {
	dir := t.TempDir()
	w, _ := Open(Config{Dir: dir}, log.NewNopLogger())
	const writers, perWriter = 8, 200
	var applied sync.Map
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range perWriter {
				name := fmt.Sprintf("m%d", g)
				err := w.Write(rowsOf(sample{name, int64(i), float64(i)}), func([]store.Row) error {
					applied.Store(fmt.Sprint(g, i), true)
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				if i == perWriter/2 && g == 0 {
					if err := w.Checkpoint(func() error { return fmt.Errorf("keep everything") }); err == nil {
						t.Error("want flush error")
					}
				}
			}
		})
	}
	wg.Wait()
	w.Close()
	w2, _ := Open(Config{Dir: dir}, log.NewNopLogger())
	defer w2.Close()
	got, _ := collect(t, w2)
	if len(got) != writers*perWriter {
		t.Fatalf("replayed %d samples, want %d", len(got), writers*perWriter)
	}
	last := map[string]int64{}
	for _, s := range got {
		if s.ts < last[s.name] {
			t.Fatalf("series %s out of order: %d after %d", s.name, s.ts, last[s.name])
		}
		last[s.name] = s.ts
	}
}

// TestCommitDelay: concurrent writers share fsyncs, and a lone writer is
// never held back by the delay (here an hour: the test would hang).
func TestCommitDelay(t *testing.T) {
	w, err := Open(Config{Dir: t.TempDir(), CommitDelay: time.Hour}, log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 5 {
			if err := w.Write(rowsOf(sample{"lone", int64(i), 1}), noApply); err != nil {
				t.Error(err)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a lone writer waited for the commit delay")
	}
	w.Close()

	w, err = Open(Config{Dir: t.TempDir(), CommitDelay: 5 * time.Millisecond}, log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const writers, perWriter = 32, 20
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if err := w.Write(rowsOf(sample{fmt.Sprint("m", g), int64(i), 1}), noApply); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if commits := w.Stats().Commits; commits > writers*perWriter/4 {
		t.Errorf("%d writes took %d fsyncs; concurrent writers should share them", writers*perWriter, commits)
	}
}

func BenchmarkWrite(b *testing.B) {
	for _, bc := range []struct {
		batch int
		delay time.Duration
	}{{60, 0}, {5000, 0}} {
		batch := bc.batch
		b.Run(fmt.Sprintf("batch=%d/delay=%s", batch, bc.delay), func(b *testing.B) {
			w, _ := Open(Config{Dir: b.TempDir(), CommitDelay: bc.delay}, log.NewNopLogger())
			defer w.Close()
			samples := make([]sample, batch)
			for i := range samples {
				samples[i] = sample{fmt.Sprintf("kiosk_metric_%d", i%200), int64(i / 200), float64(i)}
			}
			rows := rowsOf(samples...)
			b.ReportAllocs()
			b.ResetTimer()
			// Many concurrent requests share each fsync, as on a busy server.
			b.SetParallelism(32)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := w.Write(rows, noApply); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "samples/s")
			st := w.Stats()
			b.ReportMetric(float64(st.RecordsBytes)/float64(st.Samples), "bytes/sample")
		})
	}
}
