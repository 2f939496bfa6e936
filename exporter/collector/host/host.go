// Package host collects the kiosk host's basics: CPU, memory, disk, uptime.
// It reads /proc and statfs on Linux (Kylin and UOS included); on other
// systems it reports an error until their reader lands.
package host

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/kioskmon/kioskmon/exporter"
)

// Config configures the collector.
type Config struct {
	// Mountpoints whose usage is reported. Default: "/".
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
		cfg.Mountpoints = []string{"/"}
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

// readCPUTicks returns busy and total jiffies of all CPUs ("cpu" line of
// /proc/stat); idle and iowait are not busy.
func readCPUTicks(path string) (busy, total uint64, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	fields := strings.Fields(string(line))
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("%s: no cpu line", path)
	}
	for i, f := range fields[1:] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: cpu field %d: %w", path, i+1, err)
		}
		// guest and guest_nice (fields 9, 10) are already in user and nice.
		if i >= 8 {
			break
		}
		total += v
		if i != 3 && i != 4 {
			busy += v
		}
	}
	return busy, total, nil
}

func readMemInfo(path string) (total, available uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != "MemTotal" && name != "MemAvailable" {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %s: %w", path, name, err)
		}
		if name == "MemTotal" {
			total = kb * 1024
		} else {
			available = kb * 1024
		}
	}
	if total == 0 {
		return 0, 0, fmt.Errorf("%s: no MemTotal", path)
	}
	return total, available, sc.Err()
}

func readUptime(path string) (float64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return 0, fmt.Errorf("%s: empty", path)
	}
	return strconv.ParseFloat(fields[0], 64)
}

var _ exporter.Collector = (*Collector)(nil)
