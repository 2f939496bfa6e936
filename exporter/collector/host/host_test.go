package host

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kioskmon/kioskmon/exporter"
)

func values(s *exporter.Snapshot) map[string]float64 {
	out := map[string]float64{}
	s.Each(func(name string, labels []exporter.Label, v float64) {
		for _, l := range labels {
			name += "{" + l.Value + "}"
		}
		out[name] = v
	})
	return out
}

// TestFixture reads a fixture /proc, then a second /proc/stat 100 jiffies
// later of which 25 were busy.
func TestFixture(t *testing.T) {
	proc := t.TempDir()
	for _, f := range []string{"stat", "meminfo", "uptime"} {
		data, _ := os.ReadFile(filepath.Join("testdata/proc", f))
		os.WriteFile(filepath.Join(proc, f), data, 0o644)
	}
	c := New(Config{ProcRoot: proc, Mountpoints: []string{t.TempDir()}})
	var s exporter.Snapshot
	if err := c.Collect(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	v := values(&s)
	if _, ok := v["kiosk_host_cpu_usage_ratio"]; ok {
		t.Error("CPU usage reported without an interval")
	}
	if v["kiosk_host_memory_total_bytes"] != 8000000*1024 || v["kiosk_host_memory_usage_ratio"] != 0.75 || v["kiosk_host_uptime_seconds"] != 12345.67 {
		t.Errorf("memory or uptime wrong: %v", v)
	}
	os.WriteFile(filepath.Join(proc, "stat"), []byte("cpu  120 0 55 870 55 0 0 0 0 0\n"), 0o644)
	s = exporter.Snapshot{}
	c.Collect(context.Background(), &s)
	if got := values(&s)["kiosk_host_cpu_usage_ratio"]; got != 0.25 {
		t.Errorf("cpu usage %v, want 0.25", got)
	}
}

func TestRealHost(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	c := New(Config{})
	var s exporter.Snapshot
	c.Collect(context.Background(), &s)
	time.Sleep(200 * time.Millisecond) // let the jiffy counters move
	s = exporter.Snapshot{}
	if err := c.Collect(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	v := values(&s)
	for _, name := range []string{"kiosk_host_cpu_usage_ratio", "kiosk_host_memory_usage_ratio", "kiosk_host_disk_usage_ratio{/}"} {
		if r, ok := v[name]; !ok || r < 0 || r > 1 {
			t.Errorf("%s = %v, %v: want a ratio", name, r, ok)
		}
	}
}

func TestBrokenProcIsAnError(t *testing.T) {
	c := New(Config{ProcRoot: t.TempDir()})
	var s exporter.Snapshot
	if err := c.Collect(context.Background(), &s); err == nil {
		t.Fatal("want an error naming the missing files")
	}
}
