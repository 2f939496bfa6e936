package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestServeConfigCheck(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.yml")
	var out, errOut bytes.Buffer
	if code := run([]string{"kiosks", "add", "--inventory", inv, "--id", "k1", "--site", "s", "--district", "d", "--provider", "p"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("add: %d %s", code, errOut.String())
	}
	cfg := filepath.Join(dir, "kioskmon.yml")
	os.WriteFile(cfg, []byte("version: v1\ninventory: "+inv+"\ndata: "+dir+"\nretention: 30d\n"), 0o600)
	out.Reset()
	if code := run([]string{"serve", "--config", cfg, "--config.check"}, nil, &out, &errOut); code != 0 || !strings.Contains(out.String(), "valid") {
		t.Fatalf("check good config: %d %s %s", code, out.String(), errOut.String())
	}
	os.WriteFile(cfg, []byte("version: v1\ninventory: "+inv+"\nwal:\n  checkpoint_interval: 10ms\n"), 0o600)
	errOut.Reset()
	if code := run([]string{"serve", "--config", cfg, "--config.check"}, nil, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "kioskmon.yml:4: wal.checkpoint_interval: 10ms is shorter than 1s") {
		t.Fatalf("bad config: %d %q", code, errOut.String())
	}
	// A flag overrides the file.
	os.WriteFile(cfg, []byte("version: v1\ninventory: /nonexistent\n"), 0o600)
	errOut.Reset()
	if code := run([]string{"serve", "--config", cfg, "--inventory", inv, "--config.check"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("flag over file: %d %s", code, errOut.String())
	}
}
