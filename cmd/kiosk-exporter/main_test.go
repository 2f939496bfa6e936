package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kioskmon/kioskmon/ingest/lineprotocol"
)

func TestExecdMode(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "kiosk-exporter.yml")
	os.WriteFile(cfg, []byte("version: v1\nlisten: \"\"\ncollectors:\n  host: {}\n"), 0o600)
	var stdout, stderr bytes.Buffer
	// execd needs no push or listener; the config check must allow that.
	code := run(context.Background(), []string{"--execd", "--config", cfg}, strings.NewReader("\n\n"), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var p lineprotocol.Parser
	p.Reset(stdout.Bytes())
	uptimes := 0
	for p.Next() {
		if p.Err() != nil {
			t.Fatalf("line %d: %v", p.LineNumber(), p.Err())
		}
		if string(p.Line().Measurement) == "kiosk_host_uptime_seconds" {
			uptimes++
		}
	}
	if uptimes != 2 {
		t.Fatalf("two lines on stdin gave %d gathers:\n%s", uptimes, stdout.String())
	}
}

func TestCheck(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--check", "--config", "../../exporter/config/testdata/full.good.yml"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "ok (8 collectors") {
		t.Fatalf("check output: %s", stdout.String())
	}
	// The example shipped in deploy/ stays valid.
	stdout.Reset()
	if code := run(context.Background(), []string{"--check", "--config", "../../deploy/kiosk-exporter.example.yml"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("deploy example: exit %d: %s", code, stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), []string{"--check", "--config", "../../exporter/config/testdata/ups.bad.yml"}, nil, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "ups.bad.yml:8:") {
		t.Fatalf("bad config: exit %d, %s", code, stderr.String())
	}
}
