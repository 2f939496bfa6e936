// Package agent runs the kiosk exporter: it builds the collectors a config
// names, gathers on the interval, serves /metrics and pushes every gather
// through the durable queue.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/exporter/collector/app"
	"github.com/kioskmon/kioskmon/exporter/collector/host"
	"github.com/kioskmon/kioskmon/exporter/collector/ipp"
	"github.com/kioskmon/kioskmon/exporter/collector/network"
	"github.com/kioskmon/kioskmon/exporter/collector/probe"
	"github.com/kioskmon/kioskmon/exporter/collector/snmpprinter"
	"github.com/kioskmon/kioskmon/exporter/collector/ups"
	"github.com/kioskmon/kioskmon/exporter/collector/usb"
	"github.com/kioskmon/kioskmon/exporter/config"
	"github.com/kioskmon/kioskmon/exporter/execd"
	"github.com/kioskmon/kioskmon/exporter/push"
	"github.com/kioskmon/kioskmon/exporter/queue"
)

// Collectors returns the collectors cfg switches on.
func Collectors(cfg config.Config, logger log.Logger) ([]exporter.Collector, error) {
	var cs []exporter.Collector
	c := cfg.Collectors
	if c.Host != nil {
		cs = append(cs, host.New(*c.Host))
	}
	if c.UPS != nil {
		cs = append(cs, ups.New(*c.UPS, log.With(logger, "collector", "ups")))
	}
	if c.IPP != nil {
		cs = append(cs, ipp.New(*c.IPP, log.With(logger, "collector", "ipp")))
	}
	if c.Network != nil {
		cs = append(cs, network.New(*c.Network, log.With(logger, "collector", "network")))
	}
	if c.App != nil {
		appCfg := *c.App
		if appCfg.StateFile == "" && cfg.Push.QueueDir != "" {
			// Beside the queue: the one directory the exporter owns.
			appCfg.StateFile = filepath.Join(filepath.Dir(filepath.Clean(cfg.Push.QueueDir)), "service-mode.json")
		}
		a, err := app.New(appCfg, log.With(logger, "collector", "app"))
		if err != nil {
			return nil, err
		}
		cs = append(cs, a)
	}
	if c.Probe != nil {
		pr, err := probe.New(*c.Probe)
		if err != nil {
			return nil, err
		}
		cs = append(cs, pr)
	}
	if c.USB != nil {
		cs = append(cs, usb.New(*c.USB))
	}
	if c.SNMPPrinter != nil {
		cs = append(cs, snmpprinter.New(*c.SNMPPrinter, log.With(logger, "collector", "snmp_printer")))
	}
	return cs, nil
}

// Run runs the exporter until ctx ends.
func Run(ctx context.Context, cfg config.Config, logger log.Logger) error {
	collectors, err := Collectors(cfg, logger)
	if err != nil {
		return err
	}
	interval := time.Duration(cfg.Interval)
	var sender *push.Sender
	if cfg.Push.URL != "" {
		token, err := cfg.PushToken()
		if err != nil {
			return err
		}
		q, err := queue.Open(queue.Config{Dir: cfg.Push.QueueDir, MaxBytes: int64(cfg.Push.QueueMaxBytes)}, logger)
		if err != nil {
			return fmt.Errorf("open push queue in %s: %w", cfg.Push.QueueDir, err)
		}
		defer q.Close()
		if st := q.Stats(); st.Records > 0 {
			level.Info(logger).Log("msg", "push queue holds samples from before; delivering them", "samples", st.Samples, "oldest", time.UnixMilli(st.Oldest).UTC().Format(time.RFC3339))
		}
		sender = push.New(push.Config{URL: cfg.Push.URL, KioskID: cfg.Push.KioskID, Token: token, Timeout: time.Duration(cfg.Push.Timeout)}, q, nil, logger)
		collectors = append(collectors, sender)
	}
	// A gather must end before the next one starts.
	g := exporter.NewGatherer(collectors, interval*9/10, logger)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Collectors with work between gathers (listeners, pingers) and the
	// sender run until runCtx ends; done closes when all have returned.
	var running sync.WaitGroup
	for _, c := range collectors {
		r, ok := c.(exporter.Runner)
		if !ok {
			continue
		}
		running.Add(1)
		go func() {
			defer running.Done()
			if err := r.Run(runCtx); err != nil {
				level.Error(logger).Log("msg", "collector cannot run; its metrics are missing", "collector", c.Name(), "err", err)
			}
		}()
	}
	if sender != nil {
		running.Add(1)
		go func() { defer running.Done(); sender.Run(runCtx) }()
	}
	done := make(chan struct{})
	go func() { running.Wait(); close(done) }()
	var srv *http.Server
	if cfg.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w (set listen to a free address, or \"\" to serve nothing)", cfg.Listen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", exporter.MetricsHandler(g))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		level.Info(logger).Log("msg", "serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	}
	level.Info(logger).Log("msg", "kiosk exporter started", "interval", interval, "collectors", len(collectors), "push", cfg.Push.URL)

	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		snap := g.Gather(runCtx, time.Now())
		if sender != nil {
			if err := sender.Enqueue(snap); err != nil {
				level.Error(logger).Log("msg", "cannot queue a gather; it is lost", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			cancel()
			<-done
			if srv != nil {
				shutdownCtx, c := context.WithTimeout(context.Background(), 5*time.Second)
				defer c()
				if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
					return err
				}
			}
			level.Info(logger).Log("msg", "kiosk exporter stopped; undelivered samples stay queued")
			return nil
		case <-tick.C:
		}
	}
}

// RunExecd runs the exporter under Telegraf's inputs.execd: one gather per
// line on stdin, written to stdout as line protocol. Nothing is pushed or
// served: Telegraf is the output. Collectors with background work run.
func RunExecd(ctx context.Context, cfg config.Config, stdin io.Reader, stdout io.Writer, logger log.Logger) error {
	collectors, err := Collectors(cfg, logger)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var running sync.WaitGroup
	defer running.Wait()
	for _, c := range collectors {
		if r, ok := c.(exporter.Runner); ok {
			running.Go(func() {
				if err := r.Run(runCtx); err != nil {
					level.Error(logger).Log("msg", "collector cannot run; its metrics are missing", "collector", c.Name(), "err", err)
				}
			})
		}
	}
	defer cancel()
	return execd.Run(runCtx, exporter.NewGatherer(collectors, time.Duration(cfg.Interval)*9/10, logger), stdin, stdout, logger)
}
