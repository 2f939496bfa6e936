package ingest

import (
	"math"
	"sync"
	"time"
)

// kioskLimits holds one kiosk's rate bucket and series budget, so that a
// kiosk that floods or explodes its cardinality is refused alone.
type kioskLimits struct {
	mu sync.Mutex

	// Token bucket in samples. A request may take the bucket below zero (a
	// catching-up exporter sends large batches); the kiosk then waits until it
	// refills.
	tokens  float64
	updated time.Time

	// Series seen in the current and the previous budget window. A series is
	// counted once per window; the budget bounds len(current).
	current, previous map[uint64]struct{}
	windowStart       time.Time
}

// limiter gives each kiosk its kioskLimits.
type limiter struct {
	rate        float64 // samples per second; 0 means no limit
	burst       float64
	seriesLimit int // distinct series per window; 0 means no limit
	window      time.Duration

	mu     sync.RWMutex
	kiosks map[string]*kioskLimits
}

func newLimiter(rate, burst float64, seriesLimit int, window time.Duration) *limiter {
	return &limiter{rate: rate, burst: burst, seriesLimit: seriesLimit, window: window, kiosks: map[string]*kioskLimits{}}
}

func (l *limiter) get(id string, now time.Time) *kioskLimits {
	l.mu.RLock()
	k := l.kiosks[id]
	l.mu.RUnlock()
	if k != nil {
		return k
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if k = l.kiosks[id]; k == nil {
		k = &kioskLimits{tokens: l.burst, updated: now, current: map[uint64]struct{}{}, windowStart: now}
		l.kiosks[id] = k
	}
	return k
}

// take removes n samples from the kiosk's bucket. When the bucket is empty it
// returns false and how long until it holds a sample again.
func (l *limiter) take(k *kioskLimits, n int, now time.Time) (bool, time.Duration) {
	if l.rate <= 0 {
		return true, 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.tokens = math.Min(l.burst, k.tokens+now.Sub(k.updated).Seconds()*l.rate)
	k.updated = now
	if k.tokens <= 0 {
		wait := time.Duration(-k.tokens/l.rate*float64(time.Second)) + time.Second
		return false, wait.Truncate(time.Second)
	}
	k.tokens -= float64(n)
	return true, 0
}

// seriesChecker admits series of one kiosk against its budget for the length
// of one request, holding the kiosk's lock.
type seriesChecker struct {
	l *limiter
	k *kioskLimits
}

func (l *limiter) lockSeries(k *kioskLimits, now time.Time) seriesChecker {
	k.mu.Lock()
	if l.seriesLimit > 0 && now.Sub(k.windowStart) >= l.window {
		k.previous, k.current = k.current, make(map[uint64]struct{}, len(k.current))
		k.windowStart = now
	}
	return seriesChecker{l: l, k: k}
}

// admit reports whether the series with this hash may be written.
func (c seriesChecker) admit(hash uint64) bool {
	if c.l.seriesLimit <= 0 {
		return true
	}
	if _, ok := c.k.current[hash]; ok {
		return true
	}
	_, known := c.k.previous[hash]
	if !known && len(c.k.current) >= c.l.seriesLimit {
		return false
	}
	c.k.current[hash] = struct{}{}
	return true
}

func (c seriesChecker) unlock() { c.k.mu.Unlock() }

// forget drops the state of kiosks no longer in the inventory.
func (l *limiter) forget(keep func(id string) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id := range l.kiosks {
		if !keep(id) {
			delete(l.kiosks, id)
		}
	}
}
