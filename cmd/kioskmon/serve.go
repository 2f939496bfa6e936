package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/kioskmon/kioskmon/server"
)

var version = "dev"

// runServe parses the serve flags over the optional config file and runs the server.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := server.DefaultConfig()
	fs := flag.NewFlagSet("kioskmon serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "YAML config file (see README: Configuration); flags given on the command line override it")
	checkOnly := fs.Bool("config.check", false, "validate the configuration and the inventory, then exit")
	// Each flag writes into a Config that is applied over the file's values
	// only if the flag was given.
	var f server.Config
	f = cfg
	fs.StringVar(&f.Listen, "listen", cfg.Listen, "address to serve ingest, query API, /metrics and health on")
	fs.StringVar(&f.Data, "data", cfg.Data, "data directory (storage and write-ahead log)")
	fs.StringVar(&f.Inventory, "inventory", cfg.Inventory, "kiosk inventory file (YAML; create with `kioskmon kiosks add`); reloaded on change and on SIGHUP")
	fs.Var(&f.Retention, "retention", "how long samples are kept, e.g. 90d, 26w, 1y (minimum 1d)")
	fs.Var(&f.MemoryLimit, "memory-limit", "soft memory cap for the Go heap and storage caches, e.g. 2GiB (default: 60% of the machine)")
	fs.StringVar(&f.LogLevel, "log.level", cfg.LogLevel, "log level: debug, info, warn, error")
	fs.StringVar(&f.Query.TokenSHA256, "query.token-sha256", "", "hex SHA-256 of the read token; when set, the query API needs the token (Bearer, or Basic auth password)")
	fs.BoolVar(&f.Query.AllowOpen, "query.allow-open", false, "allow an unauthenticated query API on a non-loopback listen address")
	fs.Var(&f.Query.LatencyOffset, "query.latency-offset", "hide samples newer than this from queries without an explicit time")
	fs.IntVar(&f.Query.MaxConcurrent, "query.max-concurrent", 0, "maximum concurrent queries (0: 2 per CPU, at most 16)")
	fs.Var(&f.WAL.CheckpointInterval, "wal.checkpoint-interval", "how often the storage is flushed to disk and the write-ahead log trimmed")
	fs.BoolVar(&f.WAL.Disable, "wal.disable", false, "turn the write-ahead log off (acknowledged samples of the last seconds are lost on a crash; for measuring its cost)")
	fs.BoolVar(&f.WAL.NoSync, "wal.no-sync", false, "write the log without fsync: survives a process crash, not a power cut")
	fs.Var(&f.WAL.CommitDelay, "wal.commit-delay", "how long each fsync of the log waits for more requests to share it, while requests are concurrent (0: never waits)")
	fs.Var(&f.Ingest.MaxRequestBytes, "ingest.max-request-bytes", "largest request body accepted, as sent")
	fs.Var(&f.Ingest.MaxDecodedBytes, "ingest.max-decoded-bytes", "largest request body accepted after decompression")
	fs.IntVar(&f.Ingest.MaxLabels, "ingest.max-labels", cfg.Ingest.MaxLabels, "most labels a series may carry, metric name included")
	fs.IntVar(&f.Ingest.MaxLabelNameLength, "ingest.max-label-name-length", cfg.Ingest.MaxLabelNameLength, "longest label name in bytes")
	fs.IntVar(&f.Ingest.MaxLabelValueLength, "ingest.max-label-value-length", cfg.Ingest.MaxLabelValueLength, "longest label value in bytes")
	fs.Var(&f.Ingest.MaxFutureSkew, "ingest.max-future-skew", "how far ahead of the server clock a sample's timestamp may be")
	fs.Float64Var(&f.Ingest.KioskRateLimit, "ingest.kiosk-rate-limit", cfg.Ingest.KioskRateLimit, "samples per second each kiosk may send on average (0: unlimited)")
	fs.Float64Var(&f.Ingest.KioskRateBurst, "ingest.kiosk-rate-burst", 0, "samples a kiosk may send at once before its rate applies (0: 60 s of its rate)")
	fs.IntVar(&f.Ingest.KioskSeriesLimit, "ingest.kiosk-series-limit", cfg.Ingest.KioskSeriesLimit, "distinct series each kiosk may write per series window (0: unlimited)")
	fs.Var(&f.Ingest.KioskSeriesWindow, "ingest.kiosk-series-window", "window of the series limit")
	fs.IntVar(&f.Ingest.MaxConcurrent, "ingest.max-concurrent", 0, "requests decoded and stored at once; others wait (0: 2 per CPU)")
	fs.Var(&f.Ingest.MaxQueueDuration, "ingest.max-queue-duration", "how long a request waits for a free slot before a 503 (default 30s)")
	fs.StringVar(&f.Rules.Rulebook, "rulebook", "", "grading rulebook file (default: the built-in rulebook; see kioskmon rules)")
	fs.StringVar(&f.Rules.Preset, "rules.preset", "", "severity preset: db12-1060 or fujian-2022 (default: the rulebook's)")
	fs.BoolVar(&f.Rules.Disable, "rules.disable", false, "do not evaluate the grading rules in process (when a vmalert does)")
	fs.IntVar(&f.Rules.MaxConcurrent, "rules.max-concurrent", 0, "rules evaluated at once in a cycle; their results still apply in the rulebook's order (0: one per CPU)")
	fs.BoolVar(&f.Rules.DisableConditionCopies, "rules.condition-copies.disable", false, "do not copy at ingest the samples that meet the rules' conditions; the rules then read every kiosk's series each cycle (several times the CPU at 100,000 kiosks)")
	fs.Func("alertmanager", "Alertmanager base URL to send alerts to, e.g. http://127.0.0.1:9093 (repeat for each member of an HA cluster)", func(v string) error {
		f.Rules.Alertmanagers = append(f.Rules.Alertmanagers, v)
		return nil
	})
	fs.StringVar(&f.Rules.ExternalURL, "external-url", "", "URL people reach kioskmon at, for links in alerts (default: http://LISTEN)")
	fs.StringVar(&f.SLA.Ledger, "ledger", "", "incident ledger database: postgres://USER@HOST/DB for PostgreSQL (default: SQLite in the data directory)")
	fs.Var(&f.SLA.ResolveAfter, "sla.resolve-after", "an incident resolves once its fault has stayed clear this long")
	fs.Var(&f.SLA.CheckInterval, "sla.check-interval", "how often the open incidents' clocks are checked for breach warnings (50/75/90% of a target)")
	fs.StringVar(&f.SLA.Policy, "sla.policy", "", "SLA policy file: targets, clocks, holidays, provider contracts (default: the DB12/T 1060 preset)")
	fs.Var(&f.Inspection.Interval, "inspection.interval", "every kiosk gets a remote inspection (Fujian 2022 §8.2 checklist) at least this often")
	fs.Var(&f.Inspection.Recheck, "inspection.recheck", "a kiosk that failed an inspection item is inspected again this often while its site is open")
	fs.BoolVar(&f.Inspection.Disable, "inspection.disable", false, "do not inspect kiosks")
	fs.Var(&f.InventoryPoll, "inventory.poll", "how often the inventory file is checked for changes (a change is loaded once the file has stayed the same for one check)")
	fs.Var(&f.ShutdownTimeout, "shutdown-timeout", "how long shutdown waits for requests in flight")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kioskmon serve [flags]\n\nRuns the kioskmon server on its embedded storage.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	if *configFile != "" {
		fileCfg, err := server.LoadConfigFile(*configFile)
		if err != nil {
			return err
		}
		cfg = fileCfg
	}
	applyGivenFlags(fs, &cfg, &f)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid flags: %w", err)
	}
	logger := newLogger(stderr, cfg.LogLevel)
	if *checkOnly {
		if err := server.Check(cfg); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "configuration and inventory are valid")
		return nil
	}
	server.Version = version
	return server.Run(ctx, cfg, logger, func(addr string) {
		fmt.Fprintf(stdout, "kioskmon %s serving on http://%s\n  send data:  POST http://%s/api/v1/write (remote write), /write (Influx), /api/v1/import/prometheus (text)\n  query:      http://%s/api/v1/query  (Grafana: Prometheus data source, URL http://%s)\n", version, addr, addr, addr, addr)
	})
}

// applyGivenFlags copies into cfg the values of the flags given on the command line.
func applyGivenFlags(fs *flag.FlagSet, cfg, f *server.Config) {
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "listen":
			cfg.Listen = f.Listen
		case "data":
			cfg.Data = f.Data
		case "inventory":
			cfg.Inventory = f.Inventory
		case "rulebook":
			cfg.Rules.Rulebook = f.Rules.Rulebook
		case "rules.preset":
			cfg.Rules.Preset = f.Rules.Preset
		case "rules.disable":
			cfg.Rules.Disable = f.Rules.Disable
		case "rules.max-concurrent":
			cfg.Rules.MaxConcurrent = f.Rules.MaxConcurrent
		case "rules.condition-copies.disable":
			cfg.Rules.DisableConditionCopies = f.Rules.DisableConditionCopies
		case "alertmanager":
			cfg.Rules.Alertmanagers = f.Rules.Alertmanagers
		case "external-url":
			cfg.Rules.ExternalURL = f.Rules.ExternalURL
		case "retention":
			cfg.Retention = f.Retention
		case "memory-limit":
			cfg.MemoryLimit = f.MemoryLimit
		case "log.level":
			cfg.LogLevel = f.LogLevel
		case "query.token-sha256":
			cfg.Query.TokenSHA256 = f.Query.TokenSHA256
		case "query.allow-open":
			cfg.Query.AllowOpen = f.Query.AllowOpen
		case "query.latency-offset":
			cfg.Query.LatencyOffset = f.Query.LatencyOffset
		case "query.max-concurrent":
			cfg.Query.MaxConcurrent = f.Query.MaxConcurrent
		case "wal.checkpoint-interval":
			cfg.WAL.CheckpointInterval = f.WAL.CheckpointInterval
		case "wal.disable":
			cfg.WAL.Disable = f.WAL.Disable
		case "wal.no-sync":
			cfg.WAL.NoSync = f.WAL.NoSync
		case "wal.commit-delay":
			cfg.WAL.CommitDelay = f.WAL.CommitDelay
		case "ingest.max-request-bytes":
			cfg.Ingest.MaxRequestBytes = f.Ingest.MaxRequestBytes
		case "ingest.max-decoded-bytes":
			cfg.Ingest.MaxDecodedBytes = f.Ingest.MaxDecodedBytes
		case "ingest.max-labels":
			cfg.Ingest.MaxLabels = f.Ingest.MaxLabels
		case "ingest.max-label-name-length":
			cfg.Ingest.MaxLabelNameLength = f.Ingest.MaxLabelNameLength
		case "ingest.max-label-value-length":
			cfg.Ingest.MaxLabelValueLength = f.Ingest.MaxLabelValueLength
		case "ingest.max-future-skew":
			cfg.Ingest.MaxFutureSkew = f.Ingest.MaxFutureSkew
		case "ingest.kiosk-rate-limit":
			cfg.Ingest.KioskRateLimit = f.Ingest.KioskRateLimit
		case "ingest.kiosk-rate-burst":
			cfg.Ingest.KioskRateBurst = f.Ingest.KioskRateBurst
		case "ingest.kiosk-series-limit":
			cfg.Ingest.KioskSeriesLimit = f.Ingest.KioskSeriesLimit
		case "ingest.kiosk-series-window":
			cfg.Ingest.KioskSeriesWindow = f.Ingest.KioskSeriesWindow
		case "ingest.max-concurrent":
			cfg.Ingest.MaxConcurrent = f.Ingest.MaxConcurrent
		case "ingest.max-queue-duration":
			cfg.Ingest.MaxQueueDuration = f.Ingest.MaxQueueDuration
		case "ledger":
			cfg.SLA.Ledger = f.SLA.Ledger
		case "sla.resolve-after":
			cfg.SLA.ResolveAfter = f.SLA.ResolveAfter
		case "sla.policy":
			cfg.SLA.Policy = f.SLA.Policy
		case "sla.check-interval":
			cfg.SLA.CheckInterval = f.SLA.CheckInterval
		case "inspection.interval":
			cfg.Inspection.Interval = f.Inspection.Interval
		case "inspection.recheck":
			cfg.Inspection.Recheck = f.Inspection.Recheck
		case "inspection.disable":
			cfg.Inspection.Disable = f.Inspection.Disable
		case "inventory.poll":
			cfg.InventoryPoll = f.InventoryPoll
		case "shutdown-timeout":
			cfg.ShutdownTimeout = f.ShutdownTimeout
		}
	})
}

func newLogger(w io.Writer, lvl string) log.Logger {
	logger := log.NewLogfmtLogger(log.NewSyncWriter(w))
	logger = level.NewFilter(logger, level.Allow(level.ParseDefault(lvl, level.InfoValue())))
	return log.With(logger, "ts", log.DefaultTimestampUTC, "caller", log.DefaultCaller)
}
