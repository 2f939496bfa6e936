package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-kit/log"
)

func open(t *testing.T, cfg Config) *Queue {
	t.Helper()
	q, err := Open(cfg, log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func appendN(t *testing.T, q *Queue, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := q.Append([]byte(fmt.Sprintf("record-%d", i)), 10, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
}

func payloads(t *testing.T, q *Queue) []string {
	t.Helper()
	var out []string
	for _, e := range q.Pending() {
		p, err := q.Read(e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(p))
	}
	return out
}

func TestPendingSurvivesReopenAndAcksStick(t *testing.T) {
	dir := t.TempDir()
	q := open(t, Config{Dir: dir, SegmentBytes: 100})
	appendN(t, q, 0, 10)
	p := q.Pending()
	// Acknowledge out of order: the newest (live lane) and the two oldest.
	if err := q.Ack(p[9].Seq, p[0].Seq, p[1].Seq); err != nil {
		t.Fatal(err)
	}
	q.Close()

	q = open(t, Config{Dir: dir, SegmentBytes: 100})
	got := payloads(t, q)
	want := []string{"record-2", "record-3", "record-4", "record-5", "record-6", "record-7", "record-8"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after reopen pending %v, want %v", got, want)
	}
	appendN(t, q, 10, 1)
	if p := q.Pending(); p[len(p)-1].Seq != 10 {
		t.Fatalf("new record got seq %d, want 10 (seqs must not be reused)", p[len(p)-1].Seq)
	}
	var seqs []uint64
	for _, e := range q.Pending() {
		seqs = append(seqs, e.Seq)
	}
	if err := q.Ack(seqs...); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("%d segments left after everything was acknowledged, want only the one being written", len(segs))
	}
	if st := q.Stats(); st.Records != 0 || st.Samples != 0 {
		t.Fatalf("stats after acking all: %+v", st)
	}
}

// TestTornTail: a record cut short by a crash at the end of the newest segment
// was never acknowledged to the caller and is removed; the ones before stay.
func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	q := open(t, Config{Dir: dir})
	appendN(t, q, 0, 3)
	q.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	data, _ := os.ReadFile(segs[0])
	os.WriteFile(segs[0], data[:len(data)-3], 0o600)

	q = open(t, Config{Dir: dir})
	if got := payloads(t, q); fmt.Sprint(got) != "[record-0 record-1]" {
		t.Fatalf("pending %v after a torn tail", got)
	}
	appendN(t, q, 3, 1)
	q.Close()
	q = open(t, Config{Dir: dir})
	if got := payloads(t, q); fmt.Sprint(got) != "[record-0 record-1 record-3]" {
		t.Fatalf("pending %v: an append after a torn tail must be readable", got)
	}
}

// TestDiskLimitDropsOldest: past MaxBytes the oldest records go first, and
// their samples are counted.
func TestDiskLimitDropsOldest(t *testing.T) {
	q := open(t, Config{Dir: t.TempDir(), MaxBytes: 400, SegmentBytes: 100})
	appendN(t, q, 0, 40)
	st := q.Stats()
	if st.Bytes > 400 {
		t.Fatalf("queue holds %d bytes, limit 400", st.Bytes)
	}
	if st.DroppedSamples == 0 || st.DroppedSamples+st.Samples != 400 {
		t.Fatalf("dropped %d + pending %d samples, want 400 in all", st.DroppedSamples, st.Samples)
	}
	got := payloads(t, q)
	if got[len(got)-1] != "record-39" || got[0] == "record-0" {
		t.Fatalf("kept %v: want the newest records", got)
	}
	for i := 1; i < len(got); i++ {
		var a, b int
		fmt.Sscanf(got[i-1], "record-%d", &a)
		fmt.Sscanf(got[i], "record-%d", &b)
		if b != a+1 {
			t.Fatalf("kept records are not contiguous: %v", got)
		}
	}
}

func TestDropCounts(t *testing.T) {
	q := open(t, Config{Dir: t.TempDir()})
	appendN(t, q, 0, 2)
	if err := q.Drop(q.Pending()[0].Seq); err != nil {
		t.Fatal(err)
	}
	if st := q.Stats(); st.DroppedSamples != 10 || st.Records != 1 || st.Oldest != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCorruptAckFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	q := open(t, Config{Dir: dir})
	appendN(t, q, 0, 2)
	q.Ack(q.Pending()[0].Seq)
	q.Close()
	os.WriteFile(filepath.Join(dir, ackFile), []byte("garbage-garbage-garbage"), 0o600)
	if _, err := Open(Config{Dir: dir}, log.NewNopLogger()); err == nil {
		t.Fatal("want an error for a corrupt acknowledgement file")
	}
}

func BenchmarkAppendAck(b *testing.B) {
	q, _ := Open(Config{Dir: b.TempDir()}, log.NewNopLogger())
	defer q.Close()
	payload := make([]byte, 2000) // a gather of ~60 series, snappy-compressed
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		seq, err := q.Append(payload, 60, 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := q.Ack(seq); err != nil {
			b.Fatal(err)
		}
	}
}
