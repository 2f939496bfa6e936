// Package server runs kioskmon serve: it opens the storage and the
// write-ahead log, replays what a crash left, and serves ingest, the query API,
// health and self-metrics until its context ends.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/kioskmon/kioskmon/alerting/evaluator"
	"github.com/kioskmon/kioskmon/alerting/inspection"
	"github.com/kioskmon/kioskmon/alerting/notifier"
	"github.com/kioskmon/kioskmon/alerting/openhours"
	"github.com/kioskmon/kioskmon/ingest"
	"github.com/kioskmon/kioskmon/ingest/inventory"
	"github.com/kioskmon/kioskmon/ingest/store"
	"github.com/kioskmon/kioskmon/ingest/wal"
	"github.com/kioskmon/kioskmon/slo/access"
	"github.com/kioskmon/kioskmon/slo/api"
	"github.com/kioskmon/kioskmon/slo/escalation"
	"github.com/kioskmon/kioskmon/slo/intake"
	"github.com/kioskmon/kioskmon/slo/ledger"
	"github.com/kioskmon/kioskmon/slo/report"
)

// Version is set at build time.
var Version = "dev"

// Run serves until ctx is done, then shuts down gracefully: it stops accepting
// requests, waits for those in flight, flushes the storage and closes it.
// ready, if not nil, is called with the bound address once requests are served.
func Run(ctx context.Context, cfg Config, logger log.Logger, ready func(addr string)) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Query.TokenSHA256 == "" && !cfg.Query.AllowOpen && !isLoopback(cfg.Listen) {
		return fmt.Errorf("listen address %s is not loopback and the query API has no read token: set --query.token-sha256 (kioskmon token hash) or --query.allow-open", cfg.Listen)
	}
	if cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(int64(cfg.MemoryLimit))
	}
	if _, err := os.Stat(cfg.Inventory); err != nil {
		return fmt.Errorf("kiosk inventory %s: %w; create it with `kioskmon kiosks add --inventory %s --id ID --site SITE --district D --provider P`", cfg.Inventory, err, cfg.Inventory)
	}
	kiosks, err := inventory.NewWatcher(cfg.Inventory, logger)
	if err != nil {
		return fmt.Errorf("load kiosk inventory: %w", err)
	}

	level.Info(logger).Log("msg", "opening storage", "data", cfg.Data, "retention", cfg.Retention)
	st, err := store.Open(store.Config{
		DataPath:             filepath.Join(cfg.Data),
		Retention:            time.Duration(cfg.Retention),
		MemoryLimitBytes:     int64(cfg.MemoryLimit),
		SearchLatencyOffset:  time.Duration(cfg.Query.LatencyOffset),
		MaxConcurrentQueries: cfg.Query.MaxConcurrent,
	})
	if err != nil {
		return fmt.Errorf("open storage: %w", err)
	}
	defer func() {
		level.Info(logger).Log("msg", "closing storage")
		if err := st.Close(); err != nil {
			level.Error(logger).Log("msg", "close storage", "err", err)
		}
	}()

	var writer ingest.Writer = directWriter{st}
	var wlog *wal.WAL
	if !cfg.WAL.Disable {
		wlog, err = openAndReplayWAL(cfg, st, logger)
		if err != nil {
			return err
		}
		writer = walWriter{wlog, st}
	} else {
		level.Warn(logger).Log("msg", "write-ahead log disabled: acknowledged samples of the last seconds are lost on a crash")
	}

	self := metrics.NewSet()
	metrics.RegisterSet(self)
	defer metrics.UnregisterSet(self, true)
	h, err := ingest.New(ingestConfig(cfg), kiosks, writer, self, logger)
	if err != nil {
		return err
	}
	registerSelfMetrics(self, kiosks, wlog)

	var isReady atomic.Bool
	mux := http.NewServeMux()
	h.Register(mux)
	readAuth := newReadAuth(cfg.Query.TokenSHA256)
	query := readAuth.wrap(st.QueryHandler())
	for _, p := range queryPaths {
		mux.Handle(p, query)
	}
	evCfg, err := evaluatorConfig(cfg, kiosks)
	if err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	var rulesQuerier evaluator.Querier = storeQuerier{st}
	if cfg.Rules.DisableConditionCopies {
		// Nothing is copied from now on: a later start with copies must not
		// take them as covering this run.
		if err := os.Remove(filepath.Join(cfg.Data, conditionsFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rules: %w", err)
		}
	} else {
		conds, err := openConditions(ctx, cfg, evCfg, st, self, logger)
		if err != nil {
			return fmt.Errorf("rules: %w", err)
		}
		h.CopyConditions(conds)
		rulesQuerier = conditionQuerier{storeQuerier{st}, conds}
	}
	mux.Handle("/api/v1/rules/backtest", readAuth.wrap(evaluator.BacktestHandler(evCfg, rulesQuerier)))
	// The incident ledger: every graded fault becomes an incident.
	ledg, err := ledger.Open(ctx, cfg.SLA.Ledger, filepath.Join(cfg.Data, "sla"))
	if err != nil {
		return fmt.Errorf("incident ledger: %w (see --ledger)", err)
	}
	defer ledg.Close()
	level.Info(logger).Log("msg", "incident ledger open", "backend", ledg.Backend())
	intakeCfg := intake.Config{ResolveAfter: time.Duration(cfg.SLA.ResolveAfter)}
	var ev *evaluator.Evaluator
	if !cfg.Rules.Disable {
		if ev, err = newEvaluator(evCfg, rulesQuerier, self, logger); err != nil {
			return err
		}
		intakeCfg.Firing = ev.Alerts
	}
	tokens, adminTokenPath, err := access.Open(cfg.Data)
	if err != nil {
		return fmt.Errorf("incident API tokens: %w", err)
	}
	if adminTokenPath != "" {
		level.Info(logger).Log("msg", "created the first admin token; use it to issue others (kioskmon tokens add)", "path", adminTokenPath)
	}
	denied := deniedCounter(self)
	tokens.Register(mux, denied)
	in := intake.New(intakeCfg, ledg, storeQuerier{st}, log.With(logger, "component", "sla"), self)
	mux.Handle("/api/v1/sla/alertmanager", tokens.Require(access.Engineer, denied, in.WebhookHandler()))
	(&api.Handler{Ledger: ledg, Access: tokens, Describe: describeReport(evCfg, kiosks), Severities: severityLevels(evCfg),
		Denied: denied}).Register(mux)
	intakeCtx, stopIntake := context.WithCancel(ctx)
	intakeDone := make(chan struct{})
	go func() { defer close(intakeDone); in.Run(intakeCtx) }()
	defer func() { stopIntake(); <-intakeDone }()
	// Breach warnings: the open incidents' clocks, against the SLA policy.
	slaPolicy, err := loadSLAPolicy(cfg, evCfg)
	if err != nil {
		return err
	}
	level.Info(logger).Log("msg", "SLA policy", "version", slaPolicy.Version())
	externalURL := cfg.Rules.ExternalURL
	if externalURL == "" {
		externalURL = "http://" + cfg.Listen
	}
	engines := complianceEngines(slaPolicy, kiosks)
	escalations := escalation.New(escalation.Config{ExternalURL: externalURL, Every: time.Duration(cfg.SLA.CheckInterval)}, ledg, engines,
		storeQuerier{st}, log.With(logger, "component", "escalation"), self)
	escCtx, stopEsc := context.WithCancel(ctx)
	escDone := make(chan struct{})
	go func() { defer close(escDone); escalations.Run(escCtx) }()
	defer func() { stopEsc(); <-escDone }()

	// The notifier sends the graded faults and the SLA breach warnings; with
	// the rules evaluated elsewhere (vmalert), the warnings alone.
	var notify *notifier.Notifier
	if len(cfg.Rules.Alertmanagers) > 0 {
		sources := alertSources{escalations}
		if ev != nil {
			sources = alertSources{ev, escalations}
		}
		n, err := notifier.New(notifier.Config{Alertmanagers: cfg.Rules.Alertmanagers, ExternalURL: externalURL}, sources,
			log.With(logger, "component", "notifier"), self)
		if err != nil {
			return err
		}
		notifyCtx, stopNotify := context.WithCancel(ctx)
		notifyDone := make(chan struct{})
		go func() { defer close(notifyDone); n.Run(notifyCtx) }()
		defer func() { stopNotify(); <-notifyDone }()
		level.Info(logger).Log("msg", "sending alerts", "alertmanagers", strings.Join(cfg.Rules.Alertmanagers, ","))
		notify = n
	}
	var openAlerts inspection.AlertSource
	if ev != nil {
		openAlerts = ev
		ev.AddSink(in)
		if notify != nil {
			ev.AddSink(notify)
		}
		mux.Handle("/api/v1/alerts", readAuth.wrap(ev.AlertsHandler()))
		mux.Handle("/api/v1/alerts/held", readAuth.wrap(ev.HeldHandler()))
		mux.Handle("/api/v1/rules", readAuth.wrap(ev.RulesHandler()))
		evalCtx, stopEval := context.WithCancel(ctx)
		evalDone := make(chan struct{})
		go func() { defer close(evalDone); ev.Run(evalCtx) }()
		// The evaluator stops before the storage closes (defers run last-in first-out).
		defer func() { stopEval(); <-evalDone }()
	}
	var inspections *inspection.Ledger
	if !cfg.Inspection.Disable {
		ins, err := newInspector(cfg, evCfg, kiosks, st, openAlerts, self, logger)
		if err != nil {
			return err
		}
		inspections = ins.Ledger()
		mux.Handle("/api/v1/inspections", readAuth.wrap(ins.RecordsHandler()))
		mux.Handle("/api/v1/inspections/coverage", readAuth.wrap(ins.CoverageHandler()))
		mux.Handle("/api/v1/inspections/run", readAuth.wrap(ins.RunHandler()))
		insCtx, stopIns := context.WithCancel(ctx)
		insDone := make(chan struct{})
		go func() { defer close(insDone); ins.Run(insCtx) }()
		defer func() { stopIns(); <-insDone }()
	}
	mux.Handle("GET /api/v1/sla/report", tokens.Require(access.Viewer, denied, &report.Handler{Sources: func() (report.Sources, error) {
		engine, err := engines()
		return report.Sources{Ledger: ledg, Engine: engine, Inventory: kiosks.Index().Inventory(), Inspections: inspections,
			InspectionInterval: time.Duration(cfg.Inspection.Interval)}, err
	}}))
	// Opening hours as series: the consumables forecasts count time in
	// opening hours, in kioskmon or in a Prometheus or vmalert reading this
	// storage, so they are written even when kioskmon evaluates no rules.
	hours, err := openhours.New(openhours.Config{Index: kiosks.Index}, storeQuerier{st}, log.With(logger, "component", "openhours"), self)
	if err != nil {
		return err
	}
	hoursCtx, stopHours := context.WithCancel(ctx)
	hoursDone := make(chan struct{})
	go func() { defer close(hoursDone); hours.Run(hoursCtx) }()
	defer func() { stopHours(); <-hoursDone }()
	mux.Handle("/api/v1/label/", query)
	mux.Handle("/vmui/", query)
	mux.Handle("/internal/force_flush", readAuth.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st.MakeSearchable()
		w.WriteHeader(http.StatusNoContent)
	})))
	mux.Handle("/debug/pprof/", readAuth.wrap(http.HandlerFunc(pprof.Index)))
	mux.Handle("/debug/pprof/profile", readAuth.wrap(http.HandlerFunc(pprof.Profile)))
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		st.WriteMetrics(w)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !isReady.Load() {
			http.Error(w, "not ready: starting or shutting down", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		writeIndex(w, cfg)
	})

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another server running? choose another --listen)", cfg.Listen, err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          nil,
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
			cancel()
		}
	})
	wg.Go(func() { kiosks.Run(ctx, time.Duration(cfg.InventoryPoll)) })
	wg.Go(func() { reloadOnSIGHUP(ctx, kiosks, h, logger) })
	if wlog != nil {
		wg.Go(func() { checkpointLoop(ctx, wlog, st, time.Duration(cfg.WAL.CheckpointInterval), logger) })
	}

	isReady.Store(true)
	addr := ln.Addr().String()
	level.Info(logger).Log("msg", "kioskmon is ready", "listen", addr, "kiosks", kiosks.Index().Len(),
		"write", "http://"+addr+"/api/v1/write (remote write), /write and /api/v2/write (Influx), /api/v1/import/prometheus (text)",
		"query", "http://"+addr+"/api/v1/query (Prometheus API; Grafana data source URL http://"+addr+")")
	if ready != nil {
		ready(addr)
	}

	<-ctx.Done()
	isReady.Store(false)
	level.Info(logger).Log("msg", "shutting down: no new requests, waiting for those in flight")
	shutdownCtx, stop := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeout))
	defer stop()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		level.Warn(logger).Log("msg", "requests still in flight at the shutdown timeout were cut", "err", err)
		srv.Close()
	}
	wg.Wait()
	if wlog != nil {
		// Everything acknowledged is in the storage now; flushing it durably
		// lets the log start empty next time.
		if err := wlog.Checkpoint(st.FlushToDisk); err != nil {
			level.Error(logger).Log("msg", "final checkpoint failed; the log will be replayed at the next start", "err", err)
		}
		if err := wlog.Close(); err != nil {
			level.Error(logger).Log("msg", "close write-ahead log", "err", err)
		}
	}
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve http: %w", err)
	default:
		return nil
	}
}

// queryPaths are the read endpoints handed to the storage: what Grafana's
// Prometheus data source uses, plus export for backups.
var queryPaths = []string{
	"/api/v1/query",
	"/api/v1/query_range",
	"/api/v1/series",
	"/api/v1/series/count",
	"/api/v1/labels",
	"/api/v1/metadata",
	"/api/v1/query_exemplars",
	"/api/v1/status/buildinfo",
	"/api/v1/status/tsdb",
	"/api/v1/export",
	"/api/v1/export/native",
	"/api/v1/export/csv",
	"/vmui",
}

func ingestConfig(cfg Config) ingest.Config {
	in := cfg.Ingest
	rate := in.KioskRateLimit
	if rate == 0 {
		rate = -1 // 0 in kioskmon's config means unlimited
	}
	series := in.KioskSeriesLimit
	if series == 0 {
		series = -1
	}
	return ingest.Config{
		MaxRequestBytes:     int64(in.MaxRequestBytes),
		MaxDecodedBytes:     int64(in.MaxDecodedBytes),
		MaxLabels:           in.MaxLabels,
		MaxLabelNameLength:  in.MaxLabelNameLength,
		MaxLabelValueLength: in.MaxLabelValueLength,
		MaxFutureSkew:       time.Duration(in.MaxFutureSkew),
		Retention:           time.Duration(cfg.Retention),
		KioskRateLimit:      rate,
		KioskRateBurst:      in.KioskRateBurst,
		KioskSeriesLimit:    series,
		KioskSeriesWindow:   time.Duration(in.KioskSeriesWindow),
		MaxConcurrent:       in.MaxConcurrent,
		MaxQueueDuration:    time.Duration(in.MaxQueueDuration),
	}
}

// walWriter acknowledges rows once they are in the log and in the storage.
type walWriter struct {
	log *wal.WAL
	st  *store.Storage
}

func (w walWriter) Write(rows []store.Row) (func() error, error) {
	return w.log.Append(rows, w.st.AddRows)
}

// directWriter writes to the storage only (--wal.disable).
type directWriter struct{ st *store.Storage }

func (w directWriter) Write(rows []store.Row) (func() error, error) {
	return func() error { return nil }, w.st.AddRows(rows)
}

func openAndReplayWAL(cfg Config, st *store.Storage, logger log.Logger) (*wal.WAL, error) {
	dir := filepath.Join(cfg.Data, "wal")
	l, err := wal.Open(wal.Config{Dir: dir, NoSync: cfg.WAL.NoSync, CommitDelay: time.Duration(cfg.WAL.CommitDelay)}, logger)
	if err != nil {
		return nil, fmt.Errorf("open write-ahead log: %w", err)
	}
	start := time.Now()
	var replayed atomic.Int64
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				level.Info(logger).Log("msg", "replaying write-ahead log", "samples_so_far", replayed.Load(), "elapsed", time.Since(start).Round(time.Second))
			}
		}
	}()
	stats, err := l.Replay(func(rows []store.Row) error {
		replayed.Add(int64(len(rows)))
		return st.AddRows(rows)
	})
	close(done)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("replay write-ahead log in %s: %w (move the damaged segment away to start without it)", dir, err)
	}
	if stats.Samples > 0 || stats.CorruptSegs > 0 {
		level.Info(logger).Log("msg", "replayed write-ahead log", "segments", stats.Segments, "samples", stats.Samples,
			"corrupt_segments", stats.CorruptSegs, "duration", time.Since(start).Round(time.Millisecond))
	}
	if err := l.Checkpoint(st.FlushToDisk); err != nil {
		l.Close()
		return nil, fmt.Errorf("checkpoint after replay: %w", err)
	}
	return l, nil
}

func checkpointLoop(ctx context.Context, l *wal.WAL, st *store.Storage, every time.Duration, logger log.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := l.Checkpoint(st.FlushToDisk); err != nil {
				level.Error(logger).Log("msg", "write-ahead log checkpoint failed; the log keeps growing until one succeeds", "err", err)
			}
		}
	}
}

func reloadOnSIGHUP(ctx context.Context, kiosks *inventory.Watcher, h *ingest.Handler, logger log.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := kiosks.Reload(); err == nil {
				h.ForgetRemovedKiosks()
				level.Info(logger).Log("msg", "reloaded kiosk inventory on SIGHUP", "kiosks", kiosks.Index().Len())
			}
		}
	}
}

func registerSelfMetrics(set *metrics.Set, kiosks *inventory.Watcher, l *wal.WAL) {
	set.NewGauge(fmt.Sprintf(`kioskmon_build_info{version=%q}`, Version), func() float64 { return 1 })
	set.NewGauge(`kioskmon_inventory_kiosks`, func() float64 { return float64(kiosks.Index().Len()) })
	set.NewGauge(`kioskmon_inventory_last_reload_success`, func() float64 {
		if kiosks.LastReloadSuccess() {
			return 1
		}
		return 0
	})
	set.NewGauge(`kioskmon_inventory_reloads_failed_total`, func() float64 { _, failed := kiosks.ReloadsTotal(); return float64(failed) })
	if l == nil {
		return
	}
	set.NewGauge(`kioskmon_wal_size_bytes`, func() float64 { return float64(l.Size()) })
	set.NewGauge(`kioskmon_wal_commits_total`, func() float64 { return float64(l.Stats().Commits) })
	set.NewGauge(`kioskmon_wal_written_bytes_total`, func() float64 { return float64(l.Stats().RecordsBytes) })
	set.NewGauge(`kioskmon_wal_checkpoints_total`, func() float64 { return float64(l.Stats().Checkpoints) })
}

// readAuth guards the query API with the read token, when one is configured.
type readAuth struct {
	hash []byte
}

func newReadAuth(hexHash string) readAuth {
	if hexHash == "" {
		return readAuth{}
	}
	h, _ := hex.DecodeString(strings.ToLower(hexHash))
	return readAuth{hash: h}
}

func (a readAuth) wrap(next http.Handler) http.Handler {
	if a.hash == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := access.BearerToken(r)
		sum := sha256.Sum256([]byte(token))
		if token == "" || subtle.ConstantTimeCompare(sum[:], a.hash) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="kioskmon query"`)
			http.Error(w, "kioskmon: the query API needs the read token, as a Bearer token or as the Basic auth password", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeIndex(w http.ResponseWriter, cfg Config) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, `kioskmon %s

write (kiosk token required):
  POST /api/v1/write              Prometheus remote write 1.0
  POST /write, /api/v2/write      Influx line protocol (Telegraf outputs.influxdb / influxdb_v2)
  POST /api/v1/import/prometheus  Prometheus text format
query (Prometheus HTTP API; Grafana: Prometheus data source with this server's URL):
  /api/v1/query  /api/v1/query_range  /api/v1/series  /api/v1/labels  /api/v1/label/NAME/values
  /api/v1/export  /api/v1/status/buildinfo  /vmui/
operations:
  /metrics  /healthz  /readyz
`, Version)
}

// Check validates cfg and loads the inventory it names, without starting anything.
func Check(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if _, err := inventory.Load(cfg.Inventory); err != nil {
		return fmt.Errorf("kiosk inventory: %w", err)
	}
	return nil
}
