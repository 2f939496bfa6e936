// Package store owns kioskmon's embedded VictoriaMetrics storage.
//
// It is the only package that imports VictoriaMetrics' vmstorage and vmselect
// applications. VictoriaMetrics keeps its state in package-level variables and
// configures itself through the process-wide flag set, so a process can hold at
// most one open Storage; Open sets the flags it needs from Config and refuses a
// second call while one is open.
package store

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/app/vmselect"
	"github.com/VictoriaMetrics/VictoriaMetrics/app/vmselect/promql"
	"github.com/VictoriaMetrics/VictoriaMetrics/app/vmstorage"
	"github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo"
	"github.com/VictoriaMetrics/VictoriaMetrics/lib/decimal"
	vmlogger "github.com/VictoriaMetrics/VictoriaMetrics/lib/logger"
	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
	vmstorage_lib "github.com/VictoriaMetrics/VictoriaMetrics/lib/storage"
	"github.com/VictoriaMetrics/metrics"
)

// Row is one sample ready for storage: a raw metric name made by AppendMetricName,
// a timestamp in milliseconds and a value. It is VictoriaMetrics' own row type,
// so handing a batch to the storage copies nothing.
type Row = vmstorage_lib.MetricRow

// Label is a name/value pair of a series.
type Label = prompb.Label

// StaleNaN is the Prometheus staleness marker: a series whose last sample
// is one has no value from then on.
var StaleNaN = decimal.StaleNaN

// IsStaleNaN reports whether v is the staleness marker. The storage keeps
// it, and drops any other NaN.
func IsStaleNaN(v float64) bool { return decimal.IsStaleNaN(v) }

// AppendMetricName appends the storage encoding of labels to dst. The metric name
// is the label "__name__". Labels with empty values are dropped, as in Prometheus.
func AppendMetricName(dst []byte, labels []Label) []byte {
	return vmstorage_lib.MarshalMetricNameRaw(dst, labels)
}

// DecodeMetricName returns the labels encoded by AppendMetricName, with the
// metric name as "__name__". It is meant for tools and tests, not hot paths.
func DecodeMetricName(raw []byte) ([]Label, error) {
	var mn vmstorage_lib.MetricName
	if err := mn.UnmarshalRaw(raw); err != nil {
		return nil, fmt.Errorf("decode metric name: %w", err)
	}
	labels := []Label{{Name: "__name__", Value: string(mn.MetricGroup)}}
	for _, tag := range mn.Tags {
		labels = append(labels, Label{Name: string(tag.Key), Value: string(tag.Value)})
	}
	return labels, nil
}

// Config configures the embedded storage. Zero values mean defaults.
type Config struct {
	// DataPath is the directory VictoriaMetrics writes to. Required.
	DataPath string
	// Retention is how long samples are kept. Default 90 days, minimum 1 day.
	Retention time.Duration
	// MemoryLimitBytes caps the memory VictoriaMetrics sizes its caches for.
	// Zero leaves VictoriaMetrics' default (60% of the machine or cgroup).
	MemoryLimitBytes int64
	// SearchLatencyOffset hides the newest samples from queries without an
	// explicit time, so that a graph does not show a half-arrived last point.
	// Default 5s.
	SearchLatencyOffset time.Duration
	// MaxConcurrentQueries bounds concurrent query executions. Default: 2 per CPU, at most 16.
	MaxConcurrentQueries int
	// MaxQueryQueueDuration is how long a query waits for a free slot. Default 10s.
	MaxQueryQueueDuration time.Duration
	// InternalLogLevel is VictoriaMetrics' own log level (INFO, WARN, ERROR). Default WARN.
	InternalLogLevel string
}

func (c *Config) defaults() {
	if c.Retention == 0 {
		c.Retention = 90 * 24 * time.Hour
	}
	if c.SearchLatencyOffset == 0 {
		c.SearchLatencyOffset = 5 * time.Second
	}
	if c.MaxConcurrentQueries == 0 {
		c.MaxConcurrentQueries = min(2*runtimeCPUs(), 16)
	}
	if c.MaxQueryQueueDuration == 0 {
		c.MaxQueryQueueDuration = 10 * time.Second
	}
	if c.InternalLogLevel == "" {
		c.InternalLogLevel = "WARN"
	}
}

// Validate names the first bad field.
func (c *Config) Validate() error {
	if c.DataPath == "" {
		return errors.New("storage data path is empty")
	}
	if c.Retention < 24*time.Hour {
		return fmt.Errorf("retention %s is shorter than the minimum of 1 day", c.Retention)
	}
	if c.MemoryLimitBytes < 0 {
		return fmt.Errorf("memory limit %d is negative", c.MemoryLimitBytes)
	}
	switch c.InternalLogLevel {
	case "INFO", "WARN", "ERROR":
	default:
		return fmt.Errorf("internal log level %q is not one of INFO, WARN, ERROR", c.InternalLogLevel)
	}
	return nil
}

// ErrLocked is returned by Open when another process holds the data directory.
var ErrLocked = errors.New("data directory is in use by another process")

// Storage is the open embedded storage.
type Storage struct {
	cfg      Config
	lock     *os.File
	closeMu  sync.Mutex
	closed   bool
	vmPath   string
	created  bool
	flushMu  sync.Mutex
	flushes  *metrics.Counter
	flushDur *metrics.Summary
}

var (
	openMu sync.Mutex
	opened bool
)

// Open opens (creating if needed) the storage in cfg.DataPath. It fails with an
// error wrapping ErrLocked when another process has the directory open.
func Open(cfg Config) (*Storage, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	openMu.Lock()
	defer openMu.Unlock()
	if opened {
		// VictoriaMetrics' package state does not support a second start.
		return nil, errors.New("the embedded storage can be opened once per process")
	}
	if err := os.MkdirAll(cfg.DataPath, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	lock, err := lockDir(cfg.DataPath)
	if err != nil {
		return nil, err
	}
	vmPath := filepath.Join(cfg.DataPath, "vm")
	_, statErr := os.Stat(vmPath)
	if err := configureVictoriaMetrics(cfg, vmPath); err != nil {
		lock.Close()
		return nil, err
	}
	vmstorage.Init(cfg.MaxConcurrentQueries, cfg.MaxQueryQueueDuration, promql.ResetRollupResultCacheIfNeeded)
	vmselect.Init(cfg.MaxConcurrentQueries, cfg.MaxQueryQueueDuration)
	opened = true
	return &Storage{
		cfg:      cfg,
		lock:     lock,
		vmPath:   vmPath,
		created:  errors.Is(statErr, os.ErrNotExist),
		flushes:  metrics.GetOrCreateCounter(`kioskmon_storage_durable_flushes_total`),
		flushDur: metrics.GetOrCreateSummary(`kioskmon_storage_durable_flush_duration_seconds`),
	}, nil
}

// configureVictoriaMetrics sets the process-wide VictoriaMetrics flags. They are
// kioskmon's to choose: users configure kioskmon, never VictoriaMetrics directly.
func configureVictoriaMetrics(cfg Config, vmPath string) error {
	settings := []struct{ name, value string }{
		{"storageDataPath", vmPath},
		{"retentionPeriod", strconv.FormatInt(int64(cfg.Retention/time.Hour), 10) + "h"},
		// Replaying the write-ahead log after a crash may add a sample the storage
		// already has; identical timestamps of one series are then kept once.
		{"dedup.minScrapeInterval", "1ms"},
		{"search.latencyOffset", cfg.SearchLatencyOffset.String()},
		// A rule of the form "few kiosks op every kiosk" (a ratio whose
		// numerator is the kiosks with errors; "unless on (kiosk)" a state
		// most kiosks are in) reads the second side only for the kiosks the
		// first returned, when they are at most this many: VictoriaMetrics'
		// default, 100, made those rules read the whole fleet's series.
		{"search.maxBinaryOpPushdownLabelValues", "10000"},
		{"loggerLevel", cfg.InternalLogLevel},
		{"loggerOutput", "stderr"},
	}
	if cfg.MemoryLimitBytes > 0 {
		settings = append(settings, struct{ name, value string }{"memory.allowedBytes", strconv.FormatInt(cfg.MemoryLimitBytes, 10)})
	}
	for _, s := range settings {
		if err := flag.Set(s.name, s.value); err != nil {
			return fmt.Errorf("set storage option %s=%q: %w", s.name, s.value, err)
		}
	}
	// VictoriaMetrics reads its flags after flag.Parse; kioskmon's own flags live
	// in their own flag sets, so the global one is parsed empty.
	if !flag.Parsed() {
		if err := flag.CommandLine.Parse(nil); err != nil {
			return fmt.Errorf("initialise storage flags: %w", err)
		}
	}
	buildinfo.Init()
	vmlogger.InitNoLogFlags()
	return nil
}

// AddRows hands rows to the storage. The rows become searchable within a few
// seconds and durable on disk after the next FlushToDisk or within
// VictoriaMetrics' own flush interval. AddRows is safe for concurrent use; the
// caller keeps ownership of rows.
func (s *Storage) AddRows(rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	if err := vmstorage.VMInsertAPI.WriteRows(rows); err != nil {
		return fmt.Errorf("add %d rows to storage: %w", len(rows), err)
	}
	return nil
}

// Created reports whether Open created the storage: every sample it holds
// was added since.
func (s *Storage) Created() bool { return s.created }

// FlushToDisk makes every row added before the call durable: in-memory parts of
// the samples and of the index are written to files and fsynced. It works by
// creating and deleting a storage snapshot, the one VictoriaMetrics operation
// that guarantees this; the snapshot is made of hard links, so it is cheap.
func (s *Storage) FlushToDisk() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	start := time.Now()
	resp := &discardResponse{header: http.Header{}}
	req, err := http.NewRequest(http.MethodGet, "/snapshot/create", nil)
	if err != nil {
		return err
	}
	vmstorage.RequestHandler(resp, req)
	name, err := snapshotName(resp.body)
	if err != nil {
		return fmt.Errorf("flush storage to disk: %w", err)
	}
	req, _ = http.NewRequest(http.MethodGet, "/snapshot/delete?snapshot="+name, nil)
	resp = &discardResponse{header: http.Header{}}
	vmstorage.RequestHandler(resp, req)
	s.flushes.Inc()
	s.flushDur.UpdateDuration(start)
	return nil
}

// MakeSearchable makes rows added so far visible to queries without waiting
// for the storage's own few-second flush. It costs ingest speed; tests and the
// /internal/force_flush endpoint use it.
func (s *Storage) MakeSearchable() {
	vmstorage.DebugFlush()
}

// QueryHandler serves the Prometheus-compatible query API (query, query_range,
// series, labels, label values, export, status) from the storage. The caller
// decides which paths reach it.
func (s *Storage) QueryHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !vmselect.RequestHandler(w, r) {
			http.Error(w, fmt.Sprintf("unsupported path %q", r.URL.Path), http.StatusNotFound)
		}
	})
}

// WriteMetrics writes the storage's and the Go runtime's metrics in
// Prometheus text format.
func (s *Storage) WriteMetrics(w io.Writer) {
	metrics.WritePrometheus(w, true)
}

// Close flushes everything to disk and closes the storage. It is safe to call twice.
func (s *Storage) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	vmselect.Stop()
	vmstorage.Stop()
	return unlockDir(s.lock)
}
