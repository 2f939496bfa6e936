package sparse

import (
	"sync"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
)

// tracker remembers which copies are live: the series whose last sample met
// its condition, with that sample's time. Only those need a staleness marker
// when a sample stops meeting it, and they are few, so a series that never
// meets its condition costs one map lookup per sample.
type tracker struct {
	shards    [64]trackerShard
	sweepMu   sync.Mutex
	lastSweep time.Time
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

// Update is one change to the live copies, made once the samples that caused
// it are stored.
type Update struct {
	Key uint64
	// Ts is the time of the sample that met the condition, or for Ended the
	// sample that stopped meeting it.
	Ts    int64
	Ended bool
}

// Commit applies updates: a copy is live from a sample that met the
// condition until a later one that did not.
func (s *Set) Commit(updates []Update) {
	now := time.Now()
	for _, u := range updates {
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
	if now.Sub(t.lastSweep) < sweepAge/4 {
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
}

// LiveCount returns how many copies are live.
func (s *Set) LiveCount() int {
	n := 0
	for i := range s.tracker.shards {
		sh := &s.tracker.shards[i]
		sh.mu.Lock()
		n += len(sh.live)
		sh.mu.Unlock()
	}
	return n
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
	var updates []Update
	var rest []prompb.Label
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
		updates = append(updates, Update{Key: s.Key(i, rest), Ts: c.LastMs})
	}
	s.Commit(updates)
	return len(updates)
}
