// Package host collects the kiosk host's basics: CPU, memory, disk, uptime.
// It reads /proc and statfs on Linux (Kylin and UOS included); on other
// systems it reports an error until their reader lands.
package host

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/kioskmon/kioskmon/exporter"
)

// Config configures the collector.
type Config struct {
	// Mountpoints whose usage is reported. Default: "/" (C:\ on Windows).
	Mountpoints []string `yaml:"mountpoints"`
	// ProcRoot is where /proc is mounted (tests point it at a fixture).
	ProcRoot string `yaml:"-"`
}

// Collector reads the host.
type Collector struct {
	cfg Config

	mu           sync.Mutex
	prevBusy     uint64
	prevTotal    uint64
	haveCPUTicks bool
}

// New returns a host collector.
func New(cfg Config) *Collector {
	if len(cfg.Mountpoints) == 0 {
		cfg.Mountpoints = []string{defaultMountpoint}
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	return &Collector{cfg: cfg}
}

// Name implements exporter.Collector.
func (c *Collector) Name() string { return "host" }

// Collect implements exporter.Collector.
func (c *Collector) Collect(_ context.Context, s *exporter.Snapshot) error {
	var errs []string
	if busy, total, err := readCPUTicks(filepath.Join(c.cfg.ProcRoot, "stat")); err != nil {
		errs = append(errs, err.Error())
	} else {
		c.mu.Lock()
		// The first read has no interval to measure over.
		if c.haveCPUTicks && total > c.prevTotal {
			s.Add("kiosk_host_cpu_usage_ratio", float64(busy-c.prevBusy)/float64(total-c.prevTotal))
		}
		c.prevBusy, c.prevTotal, c.haveCPUTicks = busy, total, true
		c.mu.Unlock()
	}
	if total, avail, err := readMemInfo(filepath.Join(c.cfg.ProcRoot, "meminfo")); err != nil {
		errs = append(errs, err.Error())
	} else {
		s.Add("kiosk_host_memory_total_bytes", float64(total))
		s.Add("kiosk_host_memory_usage_ratio", 1-float64(avail)/float64(total))
	}
	if up, err := readUptime(filepath.Join(c.cfg.ProcRoot, "uptime")); err != nil {
		errs = append(errs, err.Error())
	} else {
		s.Add("kiosk_host_uptime_seconds", up)
	}
	for _, mp := range c.cfg.Mountpoints {
		used, err := diskUsage(mp)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		s.Add("kiosk_host_disk_usage_ratio", used, mp)
	}
	if len(errs) > 0 {
		return fmt.Errorf("host: %s", strings.Join(errs, "; "))
	}
	return nil
}

var _ exporter.Collector = (*Collector)(nil)
