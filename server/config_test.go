package server

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigFiles(t *testing.T) {
	good, _ := filepath.Glob("testdata/*.good.yml")
	for _, f := range good {
		if _, err := LoadConfigFile(f); err != nil {
			t.Errorf("%s: %s", f, err)
		}
	}
	cfg, err := LoadConfigFile("testdata/full.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(cfg.Retention) != 26*7*24*time.Hour || cfg.MemoryLimit != 4<<30 || cfg.Ingest.MaxLabelNameLength != 128 ||
		time.Duration(cfg.Inspection.Interval) != 7*24*time.Hour || time.Duration(cfg.Inspection.Recheck) != 2*time.Hour ||
		cfg.Rules.MaxConcurrent != 4 || time.Duration(cfg.SLA.CheckInterval) != 30*time.Second || time.Duration(cfg.SLA.ResolveAfter) != 15*time.Minute {
		t.Errorf("parsed %+v: retention, memory limit or a default is wrong", cfg)
	}

	want := map[string]string{
		"unknown-key":           "unknown-key.bad.yml:3: field retension not found",
		"bad-retention":         "bad-retention.bad.yml:2: retention: 12h0m0s is shorter than the minimum of 1d",
		"bad-duration":          `bad-duration.bad.yml:3: duration "soon": want e.g. 30s`,
		"bad-size":              `bad-size.bad.yml:2: size "lots": want e.g. 512MiB`,
		"small-memory":          "small-memory.bad.yml:2: memory_limit: 1MiB is below the minimum of 64MiB",
		"bad-token":             "bad-token.bad.yml:3: query.token_sha256: is not 64 hex characters",
		"bad-listen":            `bad-listen.bad.yml:2: listen: "8428" is not host:port`,
		"bad-version":           `bad-version.bad.yml:1: version: "2" is not a known config version`,
		"bad-level":             `bad-level.bad.yml:2: log_level: "chatty" is not one of debug, info, warn, error`,
		"bad-recheck":           "bad-recheck.bad.yml:4: inspection.recheck: 30s is not between 1m and inspection.interval",
		"bad-sla-check":         "bad-sla-check.bad.yml:4: sla.check_interval: 2h0m0s is not between 1s and 1h",
		"decoded-below-request": "decoded-below-request.bad.yml:4: ingest.max_decoded_bytes: 16MiB is below ingest.max_request_bytes",
	}
	bad, _ := filepath.Glob("testdata/*.bad.yml")
	if len(bad) != len(want) {
		t.Fatalf("%d bad files, %d expectations", len(bad), len(want))
	}
	for _, f := range bad {
		name := strings.TrimSuffix(filepath.Base(f), ".bad.yml")
		_, err := LoadConfigFile(f)
		if err == nil || !strings.Contains(err.Error(), want[name]) {
			t.Errorf("%s:\n got %v\nwant %s", f, err, want[name])
		}
	}
}

func TestOpenQueryAPIOnPublicAddressNeedsAToken(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen = "0.0.0.0:0"
	err := Run(t.Context(), cfg, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "--query.token-sha256") {
		t.Fatalf("got %v, want a refusal naming --query.token-sha256", err)
	}
	if !isLoopback("127.0.0.1:8428") || !isLoopback("[::1]:8428") || !isLoopback("localhost:1") || isLoopback("0.0.0.0:8428") || isLoopback(":8428") {
		t.Error("isLoopback misjudges an address")
	}
}
