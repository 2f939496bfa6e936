package server

import (
	"fmt"
	"net"
	"os"
	"time"

	"github.com/kioskmon/kioskmon/yamlfile"
)

// Config is the server's configuration: the YAML file given by --config, with
// command-line flags taking precedence over it.
type Config struct {
	Version   string            `yaml:"version"`
	Listen    string            `yaml:"listen"`
	Data      string            `yaml:"data"`
	Inventory string            `yaml:"inventory"`
	Retention yamlfile.Duration `yaml:"retention"`
	// MemoryLimit is a soft cap for the Go heap and the storage caches.
	MemoryLimit yamlfile.ByteSize `yaml:"memory_limit"`
	LogLevel    string            `yaml:"log_level"`

	Query QueryConfig `yaml:"query"`
	Rules RulesConfig `yaml:"rules"`
	// Inspection configures the remote inspection (巡检).
	Inspection InspectionConfig `yaml:"inspection"`
	// SLA configures the incident ledger.
	SLA    SLAConfig    `yaml:"sla"`
	WAL    WALConfig    `yaml:"wal"`
	Ingest IngestConfig `yaml:"ingest"`
	// InventoryPoll is how often the inventory file is checked for changes.
	InventoryPoll yamlfile.Duration `yaml:"inventory_poll"`
	// ShutdownTimeout bounds the wait for in-flight requests on shutdown.
	ShutdownTimeout yamlfile.Duration `yaml:"shutdown_timeout"`

	lines *yamlfile.Lines // the parsed file, for line numbers in errors
	file  string
}

// RulesConfig configures the grading rules' evaluation.
type RulesConfig struct {
	// Rulebook file; "" is the built-in default rulebook.
	Rulebook string `yaml:"rulebook"`
	// Preset: db12-1060 or fujian-2022; "" is the rulebook's own.
	Preset string `yaml:"preset"`
	// Disable turns rule evaluation off (a vmalert evaluates instead).
	Disable bool `yaml:"disable"`
	// MaxConcurrent bounds the rules whose queries run at once (0: GOMAXPROCS).
	MaxConcurrent int `yaml:"max_concurrent"`
	// DisableConditionCopies stops the ingest copying the samples that meet
	// the rules' conditions (ingest/sparse); the rules then read every
	// kiosk's series in every cycle.
	DisableConditionCopies bool `yaml:"disable_condition_copies"`
	// Alertmanagers receive the alerts (all of them: an HA cluster).
	Alertmanagers []string `yaml:"alertmanagers"`
	// ExternalURL is how people reach kioskmon, for links in alerts.
	ExternalURL string `yaml:"external_url"`
}

// InspectionConfig configures the remote inspection of Fujian 2022 §8.2.
type InspectionConfig struct {
	// Interval: every kiosk is inspected at least this often.
	Interval yamlfile.Duration `yaml:"interval"`
	// Recheck: a kiosk that failed an item is inspected again this often
	// while its site is open, until it passes.
	Recheck yamlfile.Duration `yaml:"recheck"`
	// Disable turns inspections off.
	Disable bool `yaml:"disable"`
}

// SLAConfig configures the incident ledger.
type SLAConfig struct {
	// Ledger is the ledger's database: "" is SQLite in the data directory,
	// postgres://USER@HOST/DB is PostgreSQL.
	Ledger string `yaml:"ledger"`
	// ResolveAfter: an incident resolves once its fault stays clear this long.
	ResolveAfter yamlfile.Duration `yaml:"resolve_after"`
	// Policy is the SLA policy file; "" is the db12-1060 preset.
	Policy string `yaml:"policy"`
	// CheckInterval is how often the open incidents' clocks are checked
	// for breach warnings.
	CheckInterval yamlfile.Duration `yaml:"check_interval"`
}

// QueryConfig configures the Prometheus-compatible query API.
type QueryConfig struct {
	// TokenSHA256 is the hex SHA-256 of the read token. When set, queries need
	// it as a Bearer token or as the Basic auth password.
	TokenSHA256 string `yaml:"token_sha256"`
	// AllowOpen allows an unauthenticated query API on a non-loopback address.
	AllowOpen bool `yaml:"allow_open"`
	// LatencyOffset hides the newest samples from queries without explicit time.
	LatencyOffset yamlfile.Duration `yaml:"latency_offset"`
	// MaxConcurrent bounds concurrent queries.
	MaxConcurrent int `yaml:"max_concurrent"`
}

// WALConfig configures the write-ahead log.
type WALConfig struct {
	// CheckpointInterval is how often the storage is flushed and the log trimmed.
	CheckpointInterval yamlfile.Duration `yaml:"checkpoint_interval"`
	// Disable turns the log off: acknowledged samples of the last seconds are
	// then lost on a crash. Only for comparing costs.
	Disable bool `yaml:"disable"`
	// NoSync writes the log without fsync: safe against process crashes, not
	// against power loss.
	NoSync bool `yaml:"no_sync"`
	// CommitDelay makes each fsync wait this long for more requests to share
	// it while requests are concurrent: fewer fsyncs, a little more latency.
	CommitDelay yamlfile.Duration `yaml:"commit_delay"`
}

// IngestConfig holds the ingest limits (see ingest.Config).
type IngestConfig struct {
	MaxRequestBytes     yamlfile.ByteSize `yaml:"max_request_bytes"`
	MaxDecodedBytes     yamlfile.ByteSize `yaml:"max_decoded_bytes"`
	MaxLabels           int               `yaml:"max_labels"`
	MaxLabelNameLength  int               `yaml:"max_label_name_length"`
	MaxLabelValueLength int               `yaml:"max_label_value_length"`
	MaxFutureSkew       yamlfile.Duration `yaml:"max_future_skew"`
	KioskRateLimit      float64           `yaml:"kiosk_rate_limit"`
	KioskRateBurst      float64           `yaml:"kiosk_rate_burst"`
	KioskSeriesLimit    int               `yaml:"kiosk_series_limit"`
	KioskSeriesWindow   yamlfile.Duration `yaml:"kiosk_series_window"`
	// MaxConcurrent bounds requests decoded and stored at once (0: 2 per CPU).
	MaxConcurrent int `yaml:"max_concurrent"`
	// MaxQueueDuration is how long a request waits for a slot before a 503.
	MaxQueueDuration yamlfile.Duration `yaml:"max_queue_duration"`
}

// DefaultConfig returns the configuration a server runs with when nothing is set.
func DefaultConfig() Config {
	return Config{
		Version:         "v1",
		Listen:          "127.0.0.1:8428",
		Data:            "kioskmon-data",
		Inventory:       "inventory.yml",
		Retention:       yamlfile.Duration(90 * 24 * time.Hour),
		LogLevel:        "info",
		InventoryPoll:   yamlfile.Duration(5 * time.Second),
		ShutdownTimeout: yamlfile.Duration(30 * time.Second),
		Query: QueryConfig{
			LatencyOffset: yamlfile.Duration(5 * time.Second),
		},
		SLA:        SLAConfig{ResolveAfter: yamlfile.Duration(10 * time.Minute), CheckInterval: yamlfile.Duration(time.Minute)},
		Inspection: InspectionConfig{Interval: yamlfile.Duration(14 * 24 * time.Hour), Recheck: yamlfile.Duration(time.Hour)},
		WAL:        WALConfig{CheckpointInterval: yamlfile.Duration(30 * time.Second), CommitDelay: yamlfile.Duration(2 * time.Millisecond)},
		Ingest: IngestConfig{
			MaxRequestBytes:     16 << 20,
			MaxDecodedBytes:     64 << 20,
			MaxLabels:           40,
			MaxLabelNameLength:  128,
			MaxLabelValueLength: 1024,
			MaxFutureSkew:       yamlfile.Duration(10 * time.Minute),
			KioskRateLimit:      20000,
			KioskSeriesLimit:    20000,
			KioskSeriesWindow:   yamlfile.Duration(time.Hour),
		},
	}
}

// LoadConfigFile reads path over the defaults. Unknown fields are errors, and
// every error names the file and line.
func LoadConfigFile(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(data, path)
}

// ParseConfig parses data (from file, for messages) over the defaults.
func ParseConfig(data []byte, file string) (Config, error) {
	cfg := DefaultConfig()
	lines, err := yamlfile.Decode(data, file, &cfg)
	if err != nil {
		return Config{}, err
	}
	cfg.lines, cfg.file = lines, file
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks the values; errors name the field and, for a file, its line.
func (c *Config) Validate() error {
	fail := func(format string, args ...any) error {
		field := args[0].(string)
		msg := fmt.Sprintf(format, args[1:]...)
		if line := c.lines.Line(field); line > 0 {
			return fmt.Errorf("%s:%d: %s: %s", c.file, line, field, msg)
		}
		if c.file != "" {
			return fmt.Errorf("%s: %s: %s", c.file, field, msg)
		}
		return fmt.Errorf("%s: %s", field, msg)
	}
	if c.Version != "v1" {
		return fail("%q is not a known config version; use v1", "version", c.Version)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fail("%q is not host:port", "listen", c.Listen)
	}
	if c.Data == "" {
		return fail("is empty; give the data directory", "data")
	}
	if c.Inventory == "" {
		return fail("is empty; give the kiosk inventory file", "inventory")
	}
	if time.Duration(c.Retention) < 24*time.Hour {
		return fail("%s is shorter than the minimum of 1d", "retention", c.Retention)
	}
	if c.MemoryLimit != 0 && c.MemoryLimit < 64<<20 {
		return fail("%s is below the minimum of 64MiB", "memory_limit", c.MemoryLimit)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fail("%q is not one of debug, info, warn, error", "log_level", c.LogLevel)
	}
	if c.Query.TokenSHA256 != "" && !isHexSHA256(c.Query.TokenSHA256) {
		return fail("is not 64 hex characters (the SHA-256 of the read token)", "query.token_sha256")
	}
	if c.Query.MaxConcurrent < 0 {
		return fail("%d is negative", "query.max_concurrent", c.Query.MaxConcurrent)
	}
	if c.Rules.MaxConcurrent < 0 {
		return fail("%d is negative", "rules.max_concurrent", c.Rules.MaxConcurrent)
	}
	if ins := c.Inspection; !ins.Disable {
		switch {
		case time.Duration(ins.Interval) < time.Hour:
			return fail("%s is shorter than 1h", "inspection.interval", ins.Interval)
		case time.Duration(ins.Recheck) < time.Minute || ins.Recheck > ins.Interval:
			return fail("%s is not between 1m and inspection.interval", "inspection.recheck", ins.Recheck)
		}
	}
	if time.Duration(c.SLA.ResolveAfter) < 0 || time.Duration(c.SLA.ResolveAfter) > 24*time.Hour {
		return fail("%s is not between 0 and 24h", "sla.resolve_after", c.SLA.ResolveAfter)
	}
	if d := time.Duration(c.SLA.CheckInterval); d < time.Second || d > time.Hour {
		return fail("%s is not between 1s and 1h", "sla.check_interval", c.SLA.CheckInterval)
	}
	if time.Duration(c.WAL.CheckpointInterval) < time.Second {
		return fail("%s is shorter than 1s", "wal.checkpoint_interval", c.WAL.CheckpointInterval)
	}
	if c.WAL.CommitDelay < 0 || time.Duration(c.WAL.CommitDelay) > time.Second {
		return fail("%s is not between 0 and 1s", "wal.commit_delay", c.WAL.CommitDelay)
	}
	if time.Duration(c.InventoryPoll) < 100*time.Millisecond {
		return fail("%s is shorter than 100ms", "inventory_poll", c.InventoryPoll)
	}
	in := c.Ingest
	switch {
	case in.MaxRequestBytes < 1024:
		return fail("%s is below 1KiB", "ingest.max_request_bytes", in.MaxRequestBytes)
	case in.MaxDecodedBytes < in.MaxRequestBytes:
		return fail("%s is below ingest.max_request_bytes", "ingest.max_decoded_bytes", in.MaxDecodedBytes)
	case in.MaxLabels < 2:
		return fail("%d leaves no room for a metric name and a label", "ingest.max_labels", in.MaxLabels)
	case in.MaxLabelNameLength < 16:
		return fail("%d is below 16", "ingest.max_label_name_length", in.MaxLabelNameLength)
	case in.MaxLabelValueLength < 16:
		return fail("%d is below 16", "ingest.max_label_value_length", in.MaxLabelValueLength)
	case in.MaxFutureSkew < 0:
		return fail("%s is negative", "ingest.max_future_skew", in.MaxFutureSkew)
	case in.MaxConcurrent < 0:
		return fail("%d is negative", "ingest.max_concurrent", in.MaxConcurrent)
	case in.MaxQueueDuration < 0:
		return fail("%s is negative", "ingest.max_queue_duration", in.MaxQueueDuration)
	case time.Duration(in.KioskSeriesWindow) < time.Minute:
		return fail("%s is shorter than 1m", "ingest.kiosk_series_window", in.KioskSeriesWindow)
	}
	return nil
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// isLoopback reports whether a listen address only accepts local connections.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
