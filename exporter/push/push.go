// Package push delivers the exporter's gathers to kioskmon over Prometheus
// remote write, through the durable queue. Two lanes share the queue: the live
// lane sends each new gather at once, so fresh data is never stuck behind a
// backlog; the backlog lane drains what the live lane could not deliver
// (outage, restart) oldest first, in large batches, with backoff and jitter.
package push

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/golang/snappy"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/exporter/queue"
)

// Config configures a Sender. Zero values mean defaults.
type Config struct {
	// URL is kioskmon's base URL; the sender posts to URL/api/v1/write.
	URL string
	// KioskID and Token authenticate as the kiosk: Basic auth with the id as
	// user, or a Bearer token when KioskID is empty.
	KioskID, Token string
	// MaxBatchSamples bounds a backlog request. Default 20000.
	MaxBatchSamples int
	// Timeout bounds one request. Default 30s.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between failed backlog
	// requests; it doubles on each failure, with jitter. Defaults 1s and 5m.
	MinBackoff, MaxBackoff time.Duration
	// LiveWindow: records younger than this are the live lane's; older ones,
	// and ones the live lane failed to deliver, are the backlog's. Default 1m.
	LiveWindow time.Duration
	// UserAgent identifies the exporter.
	UserAgent string
	// Now is the kiosk's clock, which the clock offset is measured against.
	// Default time.Now; the simulator gives a kiosk a wrong one.
	Now func() time.Time
	// Gate, if not nil, is shared by the senders of one process (the
	// simulator runs thousands) and bounds their requests in flight. A
	// delivery reads its records from the queue only once it holds a
	// place, so the bodies in memory are bounded too, whatever the number
	// of senders and however slow kioskmon is. Default: no bound.
	Gate *Gate
}

// Gate bounds the deliveries in flight of the senders sharing it.
type Gate struct{ places chan struct{} }

// NewGate returns a gate letting n deliveries (at least one) through at once.
func NewGate(n int) *Gate { return &Gate{places: make(chan struct{}, max(n, 1))} }

// enter waits for a place; a nil gate has room for everyone.
func (g *Gate) enter(ctx context.Context) error {
	if g == nil {
		return nil
	}
	select {
	case g.places <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *Gate) leave() {
	if g != nil {
		<-g.places
	}
}

func (c *Config) defaults() {
	if c.MaxBatchSamples <= 0 {
		c.MaxBatchSamples = 20000
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(5*time.Minute, c.MinBackoff)
	}
	if c.LiveWindow <= 0 {
		c.LiveWindow = time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.UserAgent == "" {
		c.UserAgent = "kiosk-exporter/" + exporter.Version
	}
}

// Sender pushes queued gathers. It is an exporter.Collector of its own
// figures (queue size, failures, the clock offset seen in replies).
type Sender struct {
	cfg    Config
	q      *queue.Queue
	client *http.Client
	logger log.Logger
	now    func() time.Time

	mu       sync.Mutex
	inFlight map[uint64]bool
	liveDone map[uint64]bool // the live lane tried these (and failed)

	pushed      atomic.Int64
	failures    sync.Map     // reason -> *atomic.Int64
	clockOffset atomic.Int64 // ns, kiosk minus server
	haveOffset  atomic.Bool
}

// New returns a sender of q's records.
func New(cfg Config, q *queue.Queue, client *http.Client, logger log.Logger) *Sender {
	cfg.defaults()
	if client == nil {
		client = &http.Client{}
	}
	return &Sender{cfg: cfg, q: q, client: client, logger: logger, now: cfg.Now,
		inFlight: map[uint64]bool{}, liveDone: map[uint64]bool{}}
}

// Enqueue encodes the snapshots as one record and appends it to the queue;
// it returns once the record is on disk.
func (s *Sender) Enqueue(snaps ...*exporter.Snapshot) error {
	samples := 0
	oldest := int64(0)
	for i, sn := range snaps {
		samples += sn.Len()
		if ts := sn.Time.UnixMilli(); i == 0 || ts < oldest {
			oldest = ts
		}
	}
	if samples == 0 {
		return nil
	}
	payload := snappy.Encode(nil, exporter.AppendWriteRequest(nil, snaps...))
	_, err := s.q.Append(payload, samples, oldest)
	return err
}

// Run delivers until ctx ends.
func (s *Sender) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { s.liveLane(ctx) })
	wg.Go(func() { s.backlogLane(ctx) })
	wg.Wait()
}

// claim marks the chosen pending records in flight and returns them.
func (s *Sender) claim(choose func([]queue.Entry) []queue.Entry) []queue.Entry {
	pending := s.q.Pending()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.liveDone) > 2*len(pending)+64 {
		// Forget records the disk limit dropped.
		queued := make(map[uint64]bool, len(pending))
		for _, e := range pending {
			queued[e.Seq] = true
		}
		for seq := range s.liveDone {
			if !queued[seq] {
				delete(s.liveDone, seq)
			}
		}
	}
	free := pending[:0]
	for _, e := range pending {
		if !s.inFlight[e.Seq] {
			free = append(free, e)
		}
	}
	chosen := choose(free)
	for _, e := range chosen {
		s.inFlight[e.Seq] = true
	}
	return chosen
}

func (s *Sender) release(entries []queue.Entry, liveTried bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range entries {
		delete(s.inFlight, e.Seq)
		if liveTried {
			s.liveDone[e.Seq] = true
		}
	}
}

func (s *Sender) forget(entries []queue.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range entries {
		delete(s.inFlight, e.Seq)
		delete(s.liveDone, e.Seq)
	}
}

// isLive reports whether the live lane owns a record: the newest one,
// appended by this process within the live window and not yet tried by the
// live lane. Everything else is the backlog's.
func (s *Sender) isLive(e queue.Entry, free []queue.Entry, now time.Time) bool {
	return !e.Appended.IsZero() && e.Seq == free[len(free)-1].Seq && !s.liveDone[e.Seq] && now.Sub(e.Appended) < s.cfg.LiveWindow
}

func (s *Sender) liveLane(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.q.Notify():
		}
		for {
			now := s.now()
			batch := s.claim(func(free []queue.Entry) []queue.Entry {
				if n := len(free); n > 0 && s.isLive(free[n-1], free, now) {
					return free[n-1:]
				}
				return nil
			})
			if len(batch) == 0 {
				break
			}
			if err := s.deliver(ctx, batch); err != nil {
				// Left to the backlog lane, which retries with backoff.
				s.release(batch, true)
				break
			}
		}
	}
}

func (s *Sender) backlogLane(ctx context.Context) {
	backoff := time.Duration(0)
	for {
		now := s.now()
		batch := s.claim(func(free []queue.Entry) []queue.Entry {
			var out []queue.Entry
			samples := 0
			for _, e := range free {
				if s.isLive(e, free, now) {
					continue
				}
				if len(out) > 0 && samples+e.Samples > s.cfg.MaxBatchSamples {
					break
				}
				out = append(out, e)
				samples += e.Samples
			}
			return out
		})
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		err := s.deliver(ctx, batch)
		if err == nil {
			backoff = 0
			continue
		}
		s.release(batch, false)
		var retry *retryAfterError
		wait := nextBackoff(backoff, s.cfg.MinBackoff, s.cfg.MaxBackoff)
		backoff = wait
		if errors.As(err, &retry) && retry.after > wait {
			wait = retry.after
		}
		level.Warn(s.logger).Log("msg", "push failed; retrying", "err", err, "retry_in", wait.Round(time.Millisecond), "pending_samples", s.q.Stats().Samples)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// nextBackoff doubles prev within [min, max] and takes a random point in its
// upper half, so kiosks that lost the link together do not return together.
func nextBackoff(prev, minWait, maxWait time.Duration) time.Duration {
	d := min(max(2*prev, minWait), maxWait)
	return d/2 + rand.N(d/2+1)
}

type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }

// errRefused marks a request kioskmon refused for good (4xx other than 429):
// sending it again would be refused again.
var errRefused = errors.New("refused")

// deliver sends the records as one request. On success, and on a refusal
// that a retry cannot fix, they leave the queue; otherwise they stay.
func (s *Sender) deliver(ctx context.Context, batch []queue.Entry) error {
	// The wait for a place is not part of the request's timeout: a request
	// that times out is sent again, and waiting is no failure of kioskmon.
	if err := s.cfg.Gate.enter(ctx); err != nil {
		return err
	}
	defer s.cfg.Gate.leave()
	body, samples, err := s.body(batch)
	if err != nil {
		// The record cannot be read: the disk limit dropped it meanwhile.
		s.forget(batch)
		return err
	}
	err = s.post(ctx, body)
	seqs := make([]uint64, len(batch))
	for i, e := range batch {
		seqs[i] = e.Seq
	}
	switch {
	case err == nil:
		if aerr := s.q.Ack(seqs...); aerr != nil {
			s.release(batch, false)
			return aerr
		}
		s.pushed.Add(int64(samples))
	case errors.Is(err, errRefused):
		level.Error(s.logger).Log("msg", "kioskmon refused samples; they are dropped, not retried", "samples", samples, "err", err)
		if derr := s.q.Drop(seqs...); derr != nil {
			s.release(batch, false)
			return derr
		}
	default:
		return err
	}
	s.forget(batch)
	return nil
}

func (s *Sender) body(batch []queue.Entry) ([]byte, int, error) {
	if len(batch) == 1 {
		p, err := s.q.Read(batch[0])
		return p, batch[0].Samples, err
	}
	// Concatenated WriteRequest messages are one WriteRequest holding all
	// their series (protobuf merges repeated fields).
	var raw []byte
	samples := 0
	for _, e := range batch {
		p, err := s.q.Read(e)
		if err != nil {
			return nil, 0, err
		}
		dec, err := snappy.Decode(nil, p)
		if err != nil {
			return nil, 0, fmt.Errorf("push queue record %d: %w", e.Seq, err)
		}
		raw = append(raw, dec...)
		samples += e.Samples
	}
	return snappy.Encode(nil, raw), samples, nil
}

func (s *Sender) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(s.cfg.URL, "/")+"/api/v1/write", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %s", errRefused, err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("User-Agent", s.cfg.UserAgent)
	if s.cfg.KioskID != "" {
		req.SetBasicAuth(s.cfg.KioskID, s.cfg.Token)
	} else if s.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.Token)
	}
	sent := s.now()
	resp, err := s.client.Do(req)
	if err != nil {
		s.fail("network")
		return fmt.Errorf("push to %s: %w", s.cfg.URL, err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	s.observeClock(resp.Header.Get("Date"), sent, s.now())
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode/100 == 5:
		reason := "http_5xx"
		if resp.StatusCode == http.StatusTooManyRequests {
			reason = "http_429"
		}
		s.fail(reason)
		err := fmt.Errorf("kioskmon answered %s: %s", resp.Status, bytes.TrimSpace(msg))
		if secs, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && secs > 0 {
			return &retryAfterError{err: err, after: time.Duration(secs) * time.Second}
		}
		return err
	default:
		s.fail("http_4xx")
		return fmt.Errorf("%w: kioskmon answered %s: %s", errRefused, resp.Status, bytes.TrimSpace(msg))
	}
}

func (s *Sender) fail(reason string) {
	c, _ := s.failures.LoadOrStore(reason, new(atomic.Int64))
	c.(*atomic.Int64).Add(1)
}

// observeClock estimates the kiosk's clock offset from a reply's Date header
// (one-second resolution), against the middle of the request.
func (s *Sender) observeClock(date string, sent, received time.Time) {
	serverTime, err := http.ParseTime(date)
	if err != nil {
		return
	}
	mid := sent.Add(received.Sub(sent) / 2)
	// Date is truncated to the second: the server's time was in [t, t+1s).
	offset := mid.Sub(serverTime.Add(500 * time.Millisecond))
	s.clockOffset.Store(int64(offset))
	s.haveOffset.Store(true)
}

// Name implements exporter.Collector.
func (s *Sender) Name() string { return "push" }

// Collect implements exporter.Collector.
func (s *Sender) Collect(_ context.Context, snap *exporter.Snapshot) error {
	st := s.q.Stats()
	snap.Add("kiosk_exporter_queue_bytes", float64(st.Bytes))
	snap.Add("kiosk_exporter_queue_oldest_timestamp_seconds", float64(st.Oldest)/1000)
	snap.Add("kiosk_exporter_queue_dropped_samples_total", float64(st.DroppedSamples))
	snap.Add("kiosk_exporter_push_samples_total", float64(s.pushed.Load()))
	for _, reason := range []string{"network", "http_5xx", "http_429", "http_4xx"} {
		var n int64
		if c, ok := s.failures.Load(reason); ok {
			n = c.(*atomic.Int64).Load()
		}
		snap.Add("kiosk_exporter_push_failures_total", float64(n), reason)
	}
	if s.haveOffset.Load() {
		snap.Add("kiosk_host_clock_offset_seconds", time.Duration(s.clockOffset.Load()).Seconds())
	}
	return nil
}

var _ exporter.Collector = (*Sender)(nil)
