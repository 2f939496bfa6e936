package push

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
	"github.com/go-kit/log"
	"github.com/golang/snappy"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/exporter/queue"
)

// receiver is a remote-write endpoint whose answers the test controls. It
// decodes every body with VictoriaMetrics' own decoder and records the
// samples (by gather time) it acknowledged.
type receiver struct {
	t      *testing.T
	mu     sync.Mutex
	status int // answer; 0 means 204
	retry  string
	got    map[int64]int // gather time (ms) -> acknowledged samples
	order  []int64       // first timestamp of each acknowledged request
	auth   string
}

func newReceiver(t *testing.T) (*receiver, *httptest.Server) {
	r := &receiver{t: t, got: map[int64]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		raw, err := snappy.Decode(nil, body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		var wru prompb.WriteRequestUnmarshaler
		wr, err := wru.UnmarshalProtobuf(raw)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.auth = req.Header.Get("Authorization")
		if r.status != 0 {
			if r.retry != "" {
				w.Header().Set("Retry-After", r.retry)
			}
			http.Error(w, "test says no", r.status)
			return
		}
		for i, ts := range wr.Timeseries {
			if i == 0 {
				r.order = append(r.order, ts.Samples[0].Timestamp)
			}
			r.got[ts.Samples[0].Timestamp] += len(ts.Samples)
		}
		w.WriteHeader(204)
	}))
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *receiver) set(status int, retry string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.retry = status, retry
}

func (r *receiver) snapshot() (map[int64]int, []int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := map[int64]int{}
	for k, v := range r.got {
		got[k] = v
	}
	return got, append([]int64(nil), r.order...)
}

func gather(t time.Time) *exporter.Snapshot {
	s := &exporter.Snapshot{Time: t}
	s.Add("kiosk_ups_battery_charge_ratio", 0.9, "main")
	s.AddState("kiosk_paper_state", "low", "a4", "tray1")
	return s
}

const samplesPerGather = 4

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newSender(t *testing.T, url string, dir string) (*Sender, *queue.Queue) {
	q, err := queue.Open(queue.Config{Dir: dir, NoSync: true}, log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	s := New(Config{URL: url, KioskID: "k1", Token: "secret", MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}, q, nil, log.NewNopLogger())
	return s, q
}

// TestOutageThenFreshDataFirst: during an outage gathers pile up; when the
// server is back, the newest gather is delivered at once, the backlog
// follows, and every sample arrives exactly once.
func TestOutageThenFreshDataFirst(t *testing.T) {
	r, srv := newReceiver(t)
	s, q := newSender(t, srv.URL, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)

	base := time.UnixMilli(1_700_000_000_000)
	r.set(503, "")
	for i := range 20 {
		if err := s.Enqueue(gather(base.Add(time.Duration(i) * 15 * time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the live lane to give up on the backlog", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.liveDone) >= 1 && q.Stats().Records == 20
	})
	if st := q.Stats(); st.Records != 20 {
		t.Fatalf("%d records queued during the outage, want 20", st.Records)
	}
	// Hold the backlog lane back, so that the order is observable: the server
	// accepts again, a fresh gather arrives.
	r.set(0, "")
	fresh := base.Add(time.Hour)
	s.Enqueue(gather(fresh))
	waitFor(t, "every sample", func() bool {
		got, _ := r.snapshot()
		return len(got) == 21
	})
	got, order := r.snapshot()
	for ts, n := range got {
		if n != samplesPerGather {
			t.Errorf("gather at %d: %d samples acknowledged, want %d", ts, n, samplesPerGather)
		}
	}
	if r.auth == "" {
		t.Error("requests carried no credentials")
	}
	// The fresh gather was not queued behind the backlog: it went in its own
	// request before the backlog's last request.
	pos := -1
	for i, ts := range order {
		if ts == fresh.UnixMilli() {
			pos = i
		}
	}
	if pos < 0 || pos == len(order)-1 && len(order) > 1 {
		t.Errorf("fresh gather sent at position %d of %v: behind the backlog", pos, order)
	}
	waitFor(t, "an empty queue", func() bool { return q.Stats().Records == 0 })
}

// TestRefusedIsDroppedAndCounted: a 400 is not retried.
func TestRefusedIsDroppedAndCounted(t *testing.T) {
	r, srv := newReceiver(t)
	s, q := newSender(t, srv.URL, t.TempDir())
	r.set(400, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	s.Enqueue(gather(time.UnixMilli(1_700_000_000_000)))
	waitFor(t, "the refused record to leave the queue", func() bool { return q.Stats().Records == 0 })
	if st := q.Stats(); st.DroppedSamples != samplesPerGather {
		t.Fatalf("dropped %d samples, want %d", st.DroppedSamples, samplesPerGather)
	}
	var snap exporter.Snapshot
	s.Collect(ctx, &snap)
	found := false
	snap.Each(func(name string, labels []exporter.Label, v float64) {
		if name == "kiosk_exporter_push_failures_total" && labels[0].Value == "http_4xx" && v == 1 {
			found = true
		}
	})
	if !found {
		t.Error("the refusal is not counted in kiosk_exporter_push_failures_total{reason=\"http_4xx\"}")
	}
}

// TestTooManyRequestsHonoursRetryAfter: 429 is retried, not before Retry-After.
func TestTooManyRequestsHonoursRetryAfter(t *testing.T) {
	r, srv := newReceiver(t)
	s, q := newSender(t, srv.URL, t.TempDir())
	r.set(429, "1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	s.Enqueue(gather(time.UnixMilli(1_700_000_000_000)))
	waitFor(t, "the live lane's attempt", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.liveDone) == 1
	})
	time.Sleep(100 * time.Millisecond) // the backlog lane's first try is refused too
	r.set(0, "")
	refusedAt := time.Now()
	waitFor(t, "delivery after the 429", func() bool { return q.Stats().Records == 0 })
	if waited := time.Since(refusedAt); waited < 500*time.Millisecond {
		t.Errorf("retried %s after a 429 with Retry-After: 1", waited)
	}
	if q.Stats().DroppedSamples != 0 {
		t.Error("a 429 must not drop samples")
	}
}

// TestRestartResendsOnlyUnacknowledged: records acknowledged before a restart
// are not sent again; the others are.
func TestRestartResendsOnlyUnacknowledged(t *testing.T) {
	dir := t.TempDir()
	r, srv := newReceiver(t)
	s, q := newSender(t, srv.URL, dir)
	ctx, cancel := context.WithCancel(context.Background())
	go s.Run(ctx)
	base := time.UnixMilli(1_700_000_000_000)
	s.Enqueue(gather(base))
	waitFor(t, "the first gather", func() bool { got, _ := r.snapshot(); return len(got) == 1 })
	r.set(503, "")
	s.Enqueue(gather(base.Add(15 * time.Second)))
	waitFor(t, "the live lane's failure", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.liveDone) == 1
	})
	cancel()
	q.Close()

	r.set(0, "")
	s2, q2 := newSender(t, srv.URL, dir)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go s2.Run(ctx2)
	waitFor(t, "the second gather after the restart", func() bool { got, _ := r.snapshot(); return len(got) == 2 })
	waitFor(t, "an empty queue", func() bool { return q2.Stats().Records == 0 })
	got, _ := r.snapshot()
	if got[base.UnixMilli()] != samplesPerGather {
		t.Fatalf("the gather acknowledged before the restart was sent again: %v", got)
	}
}

func TestBackoffGrowsWithJitter(t *testing.T) {
	prev := time.Duration(0)
	for range 20 {
		d := nextBackoff(prev, time.Second, time.Minute)
		if d < min(max(prev, time.Second/2), 30*time.Second) || d > time.Minute {
			t.Fatalf("backoff %s after %s", d, prev)
		}
		prev = d
	}
	if prev < 30*time.Second {
		t.Fatalf("backoff stays at %s after 20 failures", prev)
	}
}

// TestGateBoundsRequestsInFlight: senders sharing a gate of 2 never have
// more than 2 requests at kioskmon at once, however many of them have a
// backlog (the simulator runs thousands of senders in one process, and each
// request's body is in memory until it is answered), and all is delivered.
func TestGateBoundsRequestsInFlight(t *testing.T) {
	const senders, records, places = 8, 5, 2
	var mu sync.Mutex
	inFlight, most, delivered := 0, 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		io.Copy(io.Discard, req.Body)
		time.Sleep(5 * time.Millisecond) // a slow kioskmon, so that requests would overlap
		mu.Lock()
		inFlight--
		delivered++
		mu.Unlock()
		w.WriteHeader(204)
	}))
	t.Cleanup(srv.Close)
	gate := NewGate(places)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var queues []*queue.Queue
	base := time.UnixMilli(1_700_000_000_000)
	for i := range senders {
		q, err := queue.Open(queue.Config{Dir: t.TempDir(), NoSync: true}, log.NewNopLogger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		s := New(Config{URL: srv.URL, KioskID: fmt.Sprintf("k%d", i), Token: "secret", Gate: gate,
			MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxBatchSamples: samplesPerGather}, q, nil, log.NewNopLogger())
		for j := range records {
			if err := s.Enqueue(gather(base.Add(time.Duration(j) * 15 * time.Second))); err != nil {
				t.Fatal(err)
			}
		}
		queues = append(queues, q)
		wg.Go(func() { s.Run(ctx) })
	}
	waitFor(t, "every queue to be delivered", func() bool {
		for _, q := range queues {
			if q.Stats().Records > 0 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	if most > places {
		t.Errorf("%d requests in flight at once through a gate of %d", most, places)
	}
	if delivered < senders {
		t.Errorf("%d requests for %d senders", delivered, senders)
	}
}
