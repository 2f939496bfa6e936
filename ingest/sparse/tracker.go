package sparse

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
)

// tracker remembers which copies are live: the series whose last sample met
// its condition, with that sample's time. Only those need a staleness marker
// when a sample stops meeting it, and they are few, so a series that never
// meets its condition costs one map lookup per sample.
//
// The ingest knows a copy by a key from its series' encoded name (Key). After
// a restart the live copies are found in the storage, which gives their
// labels in another order: those are kept by a key from the sorted labels
// (seedKey) until their series next reports, or for seedAge.
type tracker struct {
	shards    [64]trackerShard
	sweepMu   sync.Mutex
	lastSweep time.Time

	seedMu  sync.Mutex
	seeded  map[uint64]liveCopy
	seeding atomic.Int64 // len(seeded)
}

type trackerShard struct {
	mu   sync.Mutex
	live map[uint64]liveCopy
	_    [40]byte // one shard per cache line
}

type liveCopy struct {
	ts      int64 // the last sample that met the condition, ms
	touched int64 // when a sample last changed it, Unix seconds of the wall clock
}

func (t *tracker) init() {
	for i := range t.shards {
		t.shards[i].live = map[uint64]liveCopy{}
	}
	t.seeded = map[uint64]liveCopy{}
}

func (t *tracker) shard(key uint64) *trackerShard { return &t.shards[key%uint64(len(t.shards))] }

// Live returns the time of the last sample that met the condition, if the
// copy is live.
func (s *Set) Live(key uint64) (int64, bool) {
	sh := s.tracker.shard(key)
	sh.mu.Lock()
	c, ok := sh.live[key]
	sh.mu.Unlock()
	return c.ts, ok
}

// Seeding reports whether copies found at a restart are still waiting for
// their series; only then is Seeded worth asking.
func (s *Set) Seeding() bool { return s.tracker.seeding.Load() > 0 }

// Seeded returns the seed key and last time of a copy found live at a
// restart, from its series' labels without the metric name, sorted by name.
func (s *Set) Seeded(i int32, sorted []prompb.Label) (seedKey uint64, ts int64, ok bool) {
	seedKey = s.seedKey(i, sorted)
	t := &s.tracker
	t.seedMu.Lock()
	c, ok := t.seeded[seedKey]
	t.seedMu.Unlock()
	return seedKey, c.ts, ok
}

// Update is one change to the live copies, made once the samples that caused
// it are stored.
type Update struct {
	Key uint64
	// Ts is the time of the sample that met the condition, or for Ended the
	// sample that stopped meeting it.
	Ts    int64
	Ended bool
	// Seeded, if not 0, is the seed key of the copy found at a restart that
	// this update takes over.
	Seeded uint64
}

// Commit applies updates: a copy is live from a sample that met the
// condition until a later one that did not.
func (s *Set) Commit(updates []Update) {
	now := time.Now()
	for _, u := range updates {
		if u.Seeded != 0 {
			t := &s.tracker
			t.seedMu.Lock()
			if _, ok := t.seeded[u.Seeded]; ok {
				delete(t.seeded, u.Seeded)
				t.seeding.Add(-1)
			}
			t.seedMu.Unlock()
		}
		sh := s.tracker.shard(u.Key)
		sh.mu.Lock()
		last, ok := sh.live[u.Key]
		switch {
		case u.Ended:
			if ok && u.Ts >= last.ts {
				delete(sh.live, u.Key)
			}
		case !ok || u.Ts > last.ts:
			sh.live[u.Key] = liveCopy{ts: u.Ts, touched: now.Unix()}
		}
		sh.mu.Unlock()
	}
	s.sweep(now)
}

// sweepAge is how long a live copy whose series stopped reporting is
// remembered. A kiosk back within it, replaying its queue, still ends the
// copy where the condition ended; one back later leaves a copy that goes
// stale by itself, 5 minutes after its last sample, which only a backtest of
// those minutes can see.
const sweepAge = 24 * time.Hour

func (s *Set) sweep(now time.Time) {
	t := &s.tracker
	if !t.sweepMu.TryLock() {
		return
	}
	defer t.sweepMu.Unlock()
	if now.Sub(t.lastSweep) < seedAge/4 {
		return
	}
	t.lastSweep = now
	oldest := now.Add(-sweepAge).Unix()
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for k, c := range sh.live {
			if c.touched < oldest {
				delete(sh.live, k)
			}
		}
		sh.mu.Unlock()
	}
	oldestSeed := now.Add(-seedAge).Unix()
	t.seedMu.Lock()
	for k, c := range t.seeded {
		if c.touched < oldestSeed {
			delete(t.seeded, k)
		}
	}
	t.seeding.Store(int64(len(t.seeded)))
	t.seedMu.Unlock()
}

// seedAge is how long a copy found live at a restart waits for its series:
// past it, the ingest stops sorting the labels of every series whose
// condition it does not meet to look for one.
const seedAge = time.Hour

// LiveCount returns how many copies are live.
func (s *Set) LiveCount() int {
	n := 0
	for i := range s.tracker.shards {
		sh := &s.tracker.shards[i]
		sh.mu.Lock()
		n += len(sh.live)
		sh.mu.Unlock()
	}
	return n + int(s.tracker.seeding.Load())
}

// LiveCopy is a copy found in the storage: its labels, the metric name as
// __name__, and the time of its last sample.
type LiveCopy struct {
	Labels []prompb.Label
	LastMs int64
}

// Seed marks live the copies found in the storage, so that after a restart a
// condition that ends still gets its staleness marker. A copy whose last
// sample is a staleness marker is marked too; it gets a second one, which
// changes nothing. Seed returns how many it marked.
func (s *Set) Seed(copies []LiveCopy) int {
	t := &s.tracker
	now := time.Now().Unix()
	var rest []prompb.Label
	n := 0
	for _, c := range copies {
		rest = rest[:0]
		i := int32(-1)
		for _, l := range c.Labels {
			if l.Name == "__name__" {
				if ci, ok := s.byName[l.Value]; ok {
					i = ci
				}
				continue
			}
			rest = append(rest, l)
		}
		if i < 0 {
			continue
		}
		SortLabels(rest)
		t.seedMu.Lock()
		t.seeded[s.seedKey(i, rest)] = liveCopy{ts: c.LastMs, touched: now}
		t.seeding.Store(int64(len(t.seeded)))
		t.seedMu.Unlock()
		n++
	}
	return n
}
