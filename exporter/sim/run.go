// Package sim is the fleet simulator: kiosks whose devices, application,
// network and power are simulated, reported through the exporter's own
// catalogue, queue and push client to a kioskmon, with faults injected at
// random or from a script and the ground truth written down.
//
// Simulated time can run faster than real time. It then starts in the past
// (now minus the duration) and catches up with now, so no sample is ever
// from the future.
package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/golang/snappy"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/exporter/push"
	"github.com/kioskmon/kioskmon/exporter/queue"
)

// Config configures a run. Zero values mean defaults.
type Config struct {
	// Kiosks is the fleet size.
	Kiosks int
	// InventoryPath is kioskmon's inventory; missing kiosks are added to it.
	InventoryPath string
	// TokensPath keeps the simulated kiosks' tokens. Default: beside the
	// inventory (see TokensPath).
	TokensPath string
	// PushURL is kioskmon's base URL.
	PushURL string
	Seed    uint64
	// Speed is simulated seconds per real second. Default 1.
	Speed float64
	// Duration is simulated time. Above speed 1 the run covers
	// [now-Duration, now]; at speed 1 it runs from now; 0 runs until ctx ends
	// (speed 1 only).
	Duration time.Duration
	// CatchUp, if positive, starts the clock this long before now and runs
	// it at Speed until it reaches the wall clock, then live until ctx
	// ends: one fleet with history whose faults, consumables and queues
	// carry on into the live run (make run), where a separate backfill
	// would end every fault at now and start the live fleet afresh.
	CatchUp time.Duration
	// End is where a fast run stops (default now). A fixed End with the
	// same seed, fleet and script replays the same simulated days: opening
	// hours, traffic and faults all follow the simulated clock.
	End time.Time
	// Interval between a kiosk's gathers, in simulated time. Default 15s.
	Interval time.Duration
	// FaultRate is random faults per kiosk per simulated day. Ignored with
	// a Script.
	FaultRate float64
	// Script, if not nil, injects exactly these faults.
	Script []ScriptEntry
	// TruthPath receives one JSON line per injected fault.
	TruthPath string
	// QueueDir holds the kiosks' push queues. Default: a temporary
	// directory, removed at the end.
	QueueDir string
	// DrainTimeout bounds the wait for the queues to empty at the end.
	// Default 5m.
	DrainTimeout time.Duration
	// Progress receives a progress line every ProgressEvery (default 10s).
	Progress      io.Writer
	ProgressEvery time.Duration
	// TruthOnly simulates the fleet's faults over [End-Duration, End] as
	// fast as the CPU allows and writes the truth, with no metrics and no
	// push: a month of incidents for the SLA engine's tests in seconds.
	TruthOnly bool
	// Shard and Shards spread a large fleet over several processes (each
	// kiosk keeps a queue file open, and one process has only so many file
	// descriptors): this run simulates only the kiosks whose index modulo
	// Shards is Shard, exactly as a whole-fleet run would simulate them.
	// Every shard needs the whole fleet in the inventory, and only one may
	// add it: start the others once the first is simulating. Default: one
	// shard, the whole fleet.
	Shard, Shards int

	now func() time.Time
}

func (c *Config) defaults() {
	if c.Speed == 0 {
		c.Speed = 1
	}
	if c.Interval <= 0 {
		c.Interval = 15 * time.Second
	}
	if c.TokensPath == "" {
		c.TokensPath = TokensPath(c.InventoryPath)
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 5 * time.Minute
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 10 * time.Second
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.Shards == 0 {
		c.Shards = 1
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	now := time.Now
	if c.now != nil {
		now = c.now
	}
	if c.TruthOnly {
		switch {
		case c.Kiosks < 1:
			return fmt.Errorf("--kiosks %d: simulate at least one kiosk", c.Kiosks)
		case c.InventoryPath == "":
			return errors.New("--inventory is required: the kioskmon inventory file the simulated kiosks are added to")
		case c.Duration <= 0:
			return errors.New("--truth-only needs --duration: the simulated time to cover")
		case c.TruthPath == "":
			return errors.New("--truth-only needs --truth: the file the faults are written to")
		case c.Interval < time.Second:
			return fmt.Errorf("--interval %s is below 1s", c.Interval)
		case c.FaultRate < 0:
			return fmt.Errorf("--fault-rate %g is negative", c.FaultRate)
		case c.CatchUp != 0:
			return errors.New("--truth-only covers --duration up to --end; --catch-up is for runs that push")
		}
		return nil
	}
	switch {
	case c.Kiosks < 1:
		return fmt.Errorf("--kiosks %d: simulate at least one kiosk", c.Kiosks)
	case c.InventoryPath == "":
		return errors.New("--inventory is required: the kioskmon inventory file the simulated kiosks are added to")
	case c.Speed < 1:
		return fmt.Errorf("--speed %g: simulated time cannot run slower than real time", c.Speed)
	case c.CatchUp < 0:
		return fmt.Errorf("--catch-up %s is negative", c.CatchUp)
	case c.CatchUp > 0 && c.Speed <= 1:
		return fmt.Errorf("--catch-up %s needs --speed above 1: the speed the clock catches up at", c.CatchUp)
	case c.CatchUp > 0 && (c.Duration > 0 || !c.End.IsZero()):
		return fmt.Errorf("--catch-up %s runs on live until stopped: leave out --duration and --end", c.CatchUp)
	case c.Speed > 1 && c.Duration <= 0 && c.CatchUp == 0:
		return fmt.Errorf("--speed %g needs --duration: a fast clock runs from now minus the duration up to now", c.Speed)
	case !c.End.IsZero() && c.Speed <= 1:
		return errors.New("--end needs --speed above 1: a real-time run starts now")
	case !c.End.IsZero() && c.End.After(now().Add(time.Minute)):
		return fmt.Errorf("--end %s is in the future: kioskmon refuses samples from the future", c.End.UTC().Format(time.RFC3339))
	case c.Interval < time.Second:
		return fmt.Errorf("--interval %s is below 1s", c.Interval)
	case c.FaultRate < 0:
		return fmt.Errorf("--fault-rate %g is negative", c.FaultRate)
	case c.Shards < 0 || c.Shard < 0 || (c.Shards > 0 && c.Shard >= c.Shards) || (c.Shards == 0 && c.Shard > 0):
		return fmt.Errorf("--shard %d/%d: give K/N with 0 <= K < N", c.Shard, c.Shards)
	case c.Shards > c.Kiosks:
		return fmt.Errorf("--shard %d/%d: more shards than the %d kiosks", c.Shard, c.Shards, c.Kiosks)
	}
	u, err := url.Parse(c.PushURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--push %q is not kioskmon's base URL, such as http://127.0.0.1:8428", c.PushURL)
	}
	return nil
}

// Summary is what a run did.
type Summary struct {
	Kiosks, Added        int
	Start, End           time.Time // simulated
	Gathers              int64
	Samples              int64 // queued
	Delivered            int64
	Dropped              int64
	FaultsInjected       int64
	Undelivered          int64 // samples still queued at the end
	RealDuration         time.Duration
	SamplesPerRealSecond float64
}

// member of the run: a kiosk, its queue and its push client.
type runKiosk struct {
	*Kiosk
	q      *queue.Queue
	sender *push.Sender
	next   time.Time // simulated time of its next gather
}

// maxGathersPerRecord bounds one queue record when the clock runs fast.
const maxGathersPerRecord = 40

// pushesInFlight bounds the requests of all the kiosks together, and so the
// request bodies in memory. Each kiosk has a live and a backlog lane, and
// the fast clock leaves every kiosk a backlog: unbounded, every lane read a
// body from its queue and then waited for one of the connections, 20,000
// bodies for a shard of 10,000 kiosks (10.8 GB of RSS), and a request that
// waited past its timeout was read and sent again. As many as there are
// connections: more would only wait.
const pushesInFlight = 256

// Run simulates the fleet until the simulated duration is over or ctx ends,
// then waits (at most DrainTimeout) for the queues to be delivered.
func Run(ctx context.Context, cfg Config, logger log.Logger) (Summary, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	realStart := cfg.now()
	members, added, err := EnsureFleet(cfg.InventoryPath, cfg.TokensPath, cfg.Kiosks)
	if err != nil {
		return Summary{}, err
	}
	if added > 0 {
		level.Info(logger).Log("msg", "added simulated kiosks to the inventory", "kiosks", added, "inventory", cfg.InventoryPath, "tokens", cfg.TokensPath)
	}
	if cfg.TruthOnly {
		return truthOnly(ctx, cfg, members, added, realStart)
	}
	if err := waitAccepted(ctx, cfg.PushURL, members[len(members)-1], logger); err != nil {
		return Summary{}, err
	}
	queueDir := cfg.QueueDir
	if queueDir == "" {
		if queueDir, err = os.MkdirTemp("", "kiosk-sim-queues-"); err != nil {
			return Summary{}, fmt.Errorf("create queue directory: %w", err)
		}
		defer os.RemoveAll(queueDir)
	}
	truth, err := newTruthWriter(cfg.TruthPath)
	if err != nil {
		return Summary{}, err
	}
	defer truth.Close()

	start := realStart.Truncate(time.Second)
	end := time.Time{}
	switch {
	case cfg.CatchUp > 0:
		start = start.Add(-cfg.CatchUp)
	case cfg.Speed > 1:
		if !cfg.End.IsZero() {
			start = cfg.End.Truncate(time.Second)
		}
		start, end = start.Add(-cfg.Duration), start
	case cfg.Duration > 0:
		end = start.Add(cfg.Duration)
	}
	eng := newEngine(start, cfg.FaultRate, cfg.Script, truth)

	transport := &http.Transport{
		Proxy: http.ProxyFromEnvironment, DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConns: 2 * pushesInFlight, MaxIdleConnsPerHost: pushesInFlight, MaxConnsPerHost: pushesInFlight, IdleConnTimeout: time.Minute,
	}
	defer transport.CloseIdleConnections()
	gate := push.NewGate(pushesInFlight)
	// Backoff runs in real time: scale it with the clock, so an outage
	// repaired in simulated minutes is noticed in simulated minutes.
	minBackoff := min(max(time.Duration(float64(time.Second)/cfg.Speed), 100*time.Millisecond), time.Second)
	maxBackoff := min(max(time.Duration(float64(5*time.Minute)/cfg.Speed), 2*time.Second), 5*time.Minute)

	senderCtx, stopSenders := context.WithCancel(context.Background())
	defer stopSenders()
	var sendersDone sync.WaitGroup
	makeKiosk := kioskMaker(cfg.Seed, eng)
	kiosks := make([]*runKiosk, 0, len(members)/cfg.Shards+1)
	for i, m := range members {
		if i%cfg.Shards != cfg.Shard {
			continue // another process simulates it
		}
		k := makeKiosk(i, m)
		q, err := queue.Open(queue.Config{Dir: filepath.Join(queueDir, m.Kiosk.ID), MaxBytes: 64 << 20, SegmentBytes: 1 << 20, NoSync: true}, logger)
		if err != nil {
			return Summary{}, fmt.Errorf("kiosk %s: %w", m.Kiosk.ID, err)
		}
		defer q.Close()
		sender := push.New(push.Config{
			URL: cfg.PushURL, KioskID: m.Kiosk.ID, Token: m.Token, MinBackoff: minBackoff, MaxBackoff: maxBackoff,
			UserAgent: "kiosk-sim/" + exporter.Version, Gate: gate,
			Now: func() time.Time { return time.Now().Add(-time.Duration(k.clockSkew.Load())) },
		}, q, &http.Client{Transport: linkTransport{k: k, base: transport}}, log.With(logger, "kiosk", m.Kiosk.ID))
		sendersDone.Add(1)
		go func() { defer sendersDone.Done(); sender.Run(senderCtx) }()
		// Spread the kiosks over the interval, as real exporters started
		// at different times are.
		h := fnv.New64a()
		h.Write([]byte(m.Kiosk.ID))
		offset := time.Duration(h.Sum64() % uint64(cfg.Interval))
		kiosks = append(kiosks, &runKiosk{Kiosk: k, q: q, sender: sender, next: start.Add(offset)})
	}
	level.Info(logger).Log("msg", "simulating", "kiosks", len(kiosks), "shard", fmt.Sprintf("%d/%d", cfg.Shard, cfg.Shards), "from", start.UTC().Format(time.RFC3339),
		"to", orForever(end), "speed", cfg.Speed, "interval", cfg.Interval, "faults", faultMode(cfg))

	var gathers, samples atomic.Int64
	workers := min(runtime.GOMAXPROCS(0), len(kiosks))
	step := func(simNow time.Time) {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var scratch exporter.Snapshot
				snaps := make([]*exporter.Snapshot, maxGathersPerRecord)
				for i := range snaps {
					snaps[i] = &exporter.Snapshot{}
				}
				for i := w; i < len(kiosks); i += workers {
					rk := kiosks[i]
					for !rk.next.After(simNow) {
						n := 0
						for n < len(snaps) && !rk.next.After(simNow) {
							if rk.Step(rk.next) {
								rk.Gather(rk.next, snaps[n])
								n++
							}
							rk.next = rk.next.Add(cfg.Interval)
						}
						if n == 0 {
							continue
						}
						// The exporter's own figures, as the real sender reports them,
						// except the clock offset, which the simulated host reports on
						// every gather (the sender measures it only when it pushes).
						scratch.Reset(rk.next)
						rk.sender.Collect(ctx, &scratch)
						for _, se := range scratch.Series {
							if se.Metric.Name != "kiosk_host_clock_offset_seconds" {
								snaps[n-1].Series = append(snaps[n-1].Series, se)
							}
						}
						for _, s := range snaps[:n] {
							samples.Add(int64(s.Len()))
						}
						gathers.Add(int64(n))
						if err := rk.sender.Enqueue(snaps[:n]...); err != nil {
							level.Error(logger).Log("msg", "cannot queue a gather", "kiosk", rk.Kiosk.Kiosk.ID, "err", err)
						}
					}
				}
			}()
		}
		wg.Wait()
	}
	backlog := func(excludeLinkDown bool) (records, samples, dropped int64) {
		for _, rk := range kiosks {
			st := rk.q.Stats()
			dropped += st.DroppedSamples
			if excludeLinkDown && rk.linkDown.Load() {
				continue
			}
			records += int64(st.Records)
			samples += st.Samples
		}
		return records, samples, dropped
	}

	simNow := start
	live := cfg.Speed == 1
	lastTick, lastProgress := cfg.now(), cfg.now()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	progress := func(final bool) {
		_, pending, _ := backlog(false)
		pct := ""
		switch {
		case !end.IsZero():
			pct = fmt.Sprintf(" (%.0f%%)", 100*float64(simNow.Sub(start))/float64(end.Sub(start)))
		case !live:
			pct = fmt.Sprintf(" (catching up: %s behind the wall clock)", cfg.now().Sub(simNow).Round(time.Second))
		}
		fmt.Fprintf(cfg.Progress, "kiosk-sim: simulated %s%s, %d kiosks, %d gathers, %d samples queued, %d delivered, %d pending, faults injected %d (active %d)\n",
			simNow.UTC().Format(time.RFC3339), pct, len(kiosks), gathers.Load(), samples.Load(), samples.Load()-pending, pending,
			eng.injected.Load(), eng.active.Load())
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		realNow := cfg.now()
		elapsed := realNow.Sub(lastTick)
		lastTick = realNow
		if live {
			// Live: follow the wall clock; the queues absorb a slow kioskmon.
			simNow = realNow
		} else if records, _, _ := backlog(true); records <= int64(2*len(kiosks)+100) {
			// Fast: never run ahead of what kioskmon takes in.
			simNow = simNow.Add(time.Duration(float64(elapsed) * cfg.Speed))
			if cfg.CatchUp > 0 && !simNow.Before(realNow) {
				simNow, live = realNow, true
				level.Info(logger).Log("msg", "caught up with the wall clock; simulating live", "faults_active", eng.active.Load())
			}
		}
		if !end.IsZero() && simNow.After(end) {
			simNow = end
		}
		step(simNow)
		if realNow.Sub(lastProgress) >= cfg.ProgressEvery {
			lastProgress = realNow
			progress(false)
		}
		if !end.IsZero() && !simNow.Before(end) {
			break
		}
	}
	for _, rk := range kiosks {
		eng.finish(rk.Kiosk, simNow)
	}
	// Deliver what is queued: tests read the store right after the run.
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	if ctx.Err() != nil {
		cancelDrain()
		drainCtx, cancelDrain = context.WithTimeout(context.Background(), min(cfg.DrainTimeout, 5*time.Second))
	}
	defer cancelDrain()
	for {
		_, pending, _ := backlog(false)
		if pending == 0 {
			break
		}
		select {
		case <-drainCtx.Done():
			level.Warn(logger).Log("msg", "stopping with samples not delivered", "samples", pending,
				"hint", "kioskmon did not take them in time; raise --drain-timeout or check kioskmon's log")
		case <-time.After(100 * time.Millisecond):
			if cfg.now().Sub(lastProgress) >= cfg.ProgressEvery {
				lastProgress = cfg.now()
				progress(false)
			}
			continue
		}
		break
	}
	progress(true)
	stopSenders()
	sendersDone.Wait()
	_, pending, dropped := backlog(false)
	sum := Summary{
		Kiosks: len(kiosks), Added: added, Start: start, End: simNow, Gathers: gathers.Load(), Samples: samples.Load(),
		Delivered: samples.Load() - pending - dropped, Dropped: dropped, Undelivered: pending,
		FaultsInjected: eng.injected.Load(), RealDuration: cfg.now().Sub(realStart),
	}
	sum.SamplesPerRealSecond = float64(sum.Delivered) / sum.RealDuration.Seconds()
	return sum, truth.Close()
}

func orForever(t time.Time) string {
	if t.IsZero() {
		return "until stopped"
	}
	return t.UTC().Format(time.RFC3339)
}

func faultMode(cfg Config) string {
	if cfg.Script != nil {
		return fmt.Sprintf("%d scripted", len(cfg.Script))
	}
	return fmt.Sprintf("random, %g per kiosk per day", cfg.FaultRate)
}

// linkTransport fails every request while its kiosk's network link is
// down, as a cut cable would: the push queue keeps the samples until the
// repair.
type linkTransport struct {
	k    *Kiosk
	base http.RoundTripper
}

var errLinkDown = errors.New("simulated network link down")

func (t linkTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.k.linkDown.Load() {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, errLinkDown
	}
	return t.base.RoundTrip(r)
}

// waitAccepted waits until kioskmon accepts m's token: it reloads a changed
// inventory within seconds, and a push refused with 401 would be dropped.
func waitAccepted(ctx context.Context, baseURL string, m Member, logger log.Logger) error {
	body := snappy.Encode(nil, nil) // an empty remote write request
	deadline := time.Now().Add(2 * time.Minute)
	lastLog := time.Time{}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/api/v1/write", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		req.SetBasicAuth(m.Kiosk.ID, m.Token)
		resp, err := http.DefaultClient.Do(req)
		status := 0
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			status = resp.StatusCode
			if status/100 == 2 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("kioskmon at %s does not answer: %w (start it first, or fix --push)", baseURL, err)
			}
			return fmt.Errorf("kioskmon at %s refuses kiosk %s (HTTP %d): is it serving the inventory this run wrote to?", baseURL, m.Kiosk.ID, status)
		}
		if time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
			level.Info(logger).Log("msg", "waiting for kioskmon to accept the simulated kiosks", "url", baseURL, "status", status, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// truthOnly steps every kiosk through the simulated time without gathering
// or pushing: the faults, and so the truth, are those a pushing run with
// the same seed, fleet, interval and end would inject.
func truthOnly(ctx context.Context, cfg Config, members []Member, added int, realStart time.Time) (Summary, error) {
	truth, err := newTruthWriter(cfg.TruthPath)
	if err != nil {
		return Summary{}, err
	}
	defer truth.Close()
	end := cfg.End
	if end.IsZero() {
		end = realStart
	}
	end = end.Truncate(time.Second)
	start := end.Add(-cfg.Duration)
	eng := newEngine(start, cfg.FaultRate, cfg.Script, truth)
	makeKiosk := kioskMaker(cfg.Seed, eng)
	var kiosks []*Kiosk
	for i, m := range members {
		kiosks = append(kiosks, makeKiosk(i, m))
	}
	var gathers atomic.Int64
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), len(kiosks))
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(kiosks); i += workers {
				k := kiosks[i]
				h := fnv.New64a()
				h.Write([]byte(k.Kiosk.ID))
				t := start.Add(time.Duration(h.Sum64() % uint64(cfg.Interval)))
				for ; !t.After(end) && ctx.Err() == nil; t = t.Add(cfg.Interval) {
					if k.Step(t) {
						gathers.Add(1)
					}
				}
				eng.finish(k, end)
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Summary{}, err
	}
	fmt.Fprintf(cfg.Progress, "kiosk-sim: faults of %d kiosks from %s to %s: %d injected\n", len(kiosks),
		start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), eng.injected.Load())
	sum := Summary{Kiosks: len(kiosks), Added: added, Start: start, End: end, Gathers: gathers.Load(),
		FaultsInjected: eng.injected.Load(), RealDuration: cfg.now().Sub(realStart)}
	return sum, truth.Close()
}

// kioskMaker returns what makes member i's simulated kiosk, attached to
// the fault engine. Each kiosk has its own opening-hours cache: kiosks of a
// site step on different workers, and a shared cache was a data race that
// made runs of the same seed differ.
func kioskMaker(seed uint64, eng *engine) func(i int, m Member) *Kiosk {
	return func(i int, m Member) *Kiosk {
		site := m.Site
		k := newKiosk(m, i, seed, &openCache{site: &site})
		k.engine = eng
		eng.forKiosk(k)
		return k
	}
}
