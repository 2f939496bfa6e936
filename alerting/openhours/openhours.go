// Package openhours writes each kiosk's opening hours (the inventory's, by
// its site) to the storage as series, so that rules in standard PromQL,
// evaluated by kioskmon, Prometheus or vmalert alike, can count time in
// opening hours: a kiosk consumes paper only while its site is open
// (Fujian 2022 §7.1), so a forecast in wall time is diluted by every night
// and weekend.
package openhours

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/kioskmon/kioskmon/alerting/evaluator"
	"github.com/kioskmon/kioskmon/alerting/inspection"
	"github.com/kioskmon/kioskmon/ingest/inventory"
)

// Series written for every kiosk of the inventory, labelled kiosk, site,
// district and provider like the kiosk's own series.
const (
	// MetricOpen is 1 while the kiosk's site is open, 0 while it is closed.
	MetricOpen = "kioskmon_kiosk_open"
	// MetricOpenSeconds counts the seconds the kiosk's site has been open
	// (inventory.Site.OpenSeconds): x - x offset 7d is the opening time of
	// the last week, read with two instant lookups.
	MetricOpenSeconds = "kioskmon_kiosk_open_seconds_total"
)

// Config configures a Writer.
type Config struct {
	// Index returns the inventory as it is now (inventory.Watcher.Index).
	Index func() *inventory.Index
	// Every is how often the series are written. Default 1 minute, well
	// inside the 5-minute lookback of an instant query.
	Every time.Duration
}

func (c *Config) defaults() {
	if c.Every <= 0 {
		c.Every = time.Minute
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.Index == nil:
		return errors.New("openhours: no inventory")
	case c.Every > 4*time.Minute:
		return fmt.Errorf("openhours: every %s leaves gaps in instant lookups (5m lookback); want at most 4m", c.Every)
	}
	return nil
}

// Writer writes the opening hours series.
type Writer struct {
	cfg    Config
	w      inspection.SeriesWriter
	logger log.Logger

	failures *metrics.Counter
	written  *metrics.Counter
}

// New returns a Writer that writes through w, the storage path the
// inspection writes its findings by.
func New(cfg Config, w inspection.SeriesWriter, logger log.Logger, self *metrics.Set) (*Writer, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if self == nil {
		self = metrics.NewSet()
	}
	return &Writer{cfg: cfg, w: w, logger: logger,
		failures: self.NewCounter(`kioskmon_openhours_write_failures_total`),
		written:  self.NewCounter(`kioskmon_openhours_samples_written_total`)}, nil
}

// Series returns the samples of every kiosk at t. A kiosk whose site the
// inventory does not describe is open all the time, as the evaluator
// treats it; a site whose hours do not evaluate (the inventory's
// validation rejects those) is left out and returned in the error.
func (wr *Writer) Series(t time.Time) ([]inspection.Series, error) {
	ix := wr.cfg.Index()
	kiosks := ix.Kiosks()
	out := make([]inspection.Series, 0, 2*len(kiosks))
	type siteValues struct {
		open    float64
		seconds float64
		err     error
	}
	// Sites have many kiosks: each site is evaluated once per round.
	sites := map[string]siteValues{}
	var errs []error
	for _, k := range kiosks {
		v, ok := sites[k.Site]
		if !ok {
			s, known := ix.Site(k.Site)
			if !known {
				s = &inventory.Site{ID: k.Site}
			}
			open, err := s.IsOpen(t)
			if err == nil {
				v.seconds, err = s.OpenSeconds(t)
			}
			if open {
				v.open = 1
			}
			v.err = err
			sites[k.Site] = v
			if err != nil {
				errs = append(errs, err)
			}
		}
		if v.err != nil {
			continue
		}
		out = append(out,
			inspection.Series{Labels: labels(MetricOpen, k), At: t, Value: v.open},
			inspection.Series{Labels: labels(MetricOpenSeconds, k), At: t, Value: v.seconds})
	}
	return out, errors.Join(errs...)
}

func labels(name string, k *inventory.Kiosk) []evaluator.Label {
	return []evaluator.Label{{Name: "__name__", Value: name}, {Name: "kiosk", Value: k.ID}, {Name: "site", Value: k.Site},
		{Name: "district", Value: k.District}, {Name: "provider", Value: k.Provider}}
}

// Write writes the samples of t.
func (wr *Writer) Write(t time.Time) error {
	series, err := wr.Series(t)
	if err != nil {
		level.Warn(wr.logger).Log("msg", "some sites' opening hours do not evaluate; their kiosks get no opening hours series", "err", err)
	}
	if len(series) == 0 {
		return nil
	}
	if err := wr.w.WriteSeries(series); err != nil {
		wr.failures.Inc()
		return fmt.Errorf("write opening hours series: %w", err)
	}
	wr.written.Add(len(series))
	return nil
}

// Run writes the series now and then every cfg.Every until ctx is done.
func (wr *Writer) Run(ctx context.Context) {
	tick := time.NewTicker(wr.cfg.Every)
	defer tick.Stop()
	for {
		if err := wr.Write(time.Now()); err != nil {
			level.Error(wr.logger).Log("msg", "opening hours series not written; forecasts in opening hours lack this sample", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
