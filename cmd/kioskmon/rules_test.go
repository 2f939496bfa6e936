package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRulesCommands(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"rules", "list", "--preset", "fujian-2022"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("list: %d %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	found := false
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) != 4 {
			t.Fatalf("list line %q: want id, category, severity, name separated by tabs", l)
		}
		if f[0] == "hw.paper_jam" {
			found = f[1] == "hardware" && f[2] == "severe" && f[3] == "Paper jam"
		}
	}
	if !found {
		t.Fatalf("hw.paper_jam not listed as hardware/severe: %s", stdout.String())
	}

	out := t.TempDir()
	stdout.Reset()
	if code := run([]string{"rules", "export", "--out", out}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("export: %d %s", code, stderr.String())
	}
	files, _ := filepath.Glob(filepath.Join(out, "*.yml"))
	if len(files) != 5 || !strings.Contains(stdout.String(), "kioskmon-hardware.yml") {
		t.Fatalf("export wrote %v; said %s", files, stdout.String())
	}
	data, _ := os.ReadFile(filepath.Join(out, "kioskmon-power.yml"))
	if !strings.Contains(string(data), "power_mains_lost") || !strings.Contains(string(data), "severity: urgent") {
		t.Fatalf("power rules:\n%s", data)
	}

	stderr.Reset()
	if code := run([]string{"rules", "check", "../../alerting/rulebook/testdata/expr.bad.yml"}, nil, &stdout, &stderr); code == 0 ||
		!strings.Contains(stderr.String(), "expr.bad.yml:7: faults.0.expr") {
		t.Fatalf("check of a bad rulebook: %d %s", code, stderr.String())
	}
}
