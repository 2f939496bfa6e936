package exporter

import (
	"context"
	"runtime"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// Collector reads one part of the kiosk (a UPS, the printers, the network).
type Collector interface {
	// Name identifies the collector in logs and in kiosk_exporter_collector_*.
	Name() string
	// Collect adds the collector's series to s and returns when ctx ends at the
	// latest. A device that does not answer is a value (kiosk_ups_up 0), not an
	// error; an error means the collector itself could not do its work.
	Collect(ctx context.Context, s *Snapshot) error
}

// Runner is a collector with work between gathers (a listener the kiosk app
// posts to, a pinger sending on its own schedule). The agent runs Run until
// its context ends; Run returns an error only if the work cannot start.
type Runner interface {
	Run(ctx context.Context) error
}

// Version is the exporter's version, set at build time with
// -ldflags "-X github.com/kioskmon/kioskmon/exporter.Version=...".
var Version = "dev"

// Gatherer runs the collectors, all at once, and keeps the last snapshot for
// scrapes: a scrape serves what the last gather saw instead of probing again
// (an ICMP round takes seconds; the kiosk's devices are not polled twice).
type Gatherer struct {
	collectors []Collector
	timeout    time.Duration
	logger     log.Logger

	mu     sync.Mutex
	last   *Snapshot
	failed map[string]bool // collectors whose last run failed, to log changes only
}

// NewGatherer returns a gatherer of the collectors; each collector's run is
// cut at timeout.
func NewGatherer(collectors []Collector, timeout time.Duration, logger log.Logger) *Gatherer {
	return &Gatherer{collectors: collectors, timeout: timeout, logger: logger, failed: map[string]bool{}}
}

// Gather runs every collector and returns the snapshot taken at now.
func (g *Gatherer) Gather(ctx context.Context, now time.Time) *Snapshot {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	parts := make([]Snapshot, len(g.collectors))
	errs := make([]error, len(g.collectors))
	took := make([]time.Duration, len(g.collectors))
	var wg sync.WaitGroup
	for i, c := range g.collectors {
		wg.Go(func() {
			start := time.Now()
			parts[i].Time = now
			errs[i] = c.Collect(ctx, &parts[i])
			took[i] = time.Since(start)
		})
	}
	wg.Wait()

	s := &Snapshot{Time: now}
	s.Add("kiosk_exporter_build_info", 1, Version, runtime.GOOS, runtime.GOARCH)
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, c := range g.collectors {
		s.Series = append(s.Series, parts[i].Series...)
		s.AddBool("kiosk_exporter_collector_success", errs[i] == nil, c.Name())
		s.Add("kiosk_exporter_collector_duration_seconds", took[i].Seconds(), c.Name())
		if failed := errs[i] != nil; failed != g.failed[c.Name()] {
			g.failed[c.Name()] = failed
			if failed {
				level.Warn(g.logger).Log("msg", "collector failed; its series are missing until it recovers", "collector", c.Name(), "err", errs[i])
			} else {
				level.Info(g.logger).Log("msg", "collector recovered", "collector", c.Name())
			}
		}
	}
	g.last = s
	return s
}

// Last returns the last snapshot, or nil before the first gather.
func (g *Gatherer) Last() *Snapshot {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.last
}
