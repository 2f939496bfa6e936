// Package ups reads UPSes through Network UPS Tools' upsd, the daemon every
// kiosk OS can run in front of its UPS driver (usbhid-ups, blazer, ...).
package ups

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/yamlfile"
)

// Config configures the collector.
type Config struct {
	// Address of upsd. Default 127.0.0.1:3493.
	Address string `yaml:"address"`
	// Username and Password, if upsd asks for a login (upsd.users).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// UPS names to read; empty reads every UPS upsd lists.
	UPS []string `yaml:"ups"`
	// Timeout of one read. Default 5s.
	Timeout yamlfile.Duration `yaml:"timeout"`
}

func (c *Config) defaults() {
	if c.Address == "" {
		c.Address = "127.0.0.1:3493"
	}
	if c.Timeout <= 0 {
		c.Timeout = yamlfile.Duration(5 * time.Second)
	}
}

// Validate checks the configuration; errors are *yamlfile.FieldError.
func (c *Config) Validate() error {
	if c.Address != "" {
		if _, _, err := net.SplitHostPort(c.Address); err != nil {
			return yamlfile.Fieldf("address", "%q is not host:port (upsd listens on 3493)", c.Address)
		}
	}
	if (c.Username == "") != (c.Password == "") {
		return yamlfile.Fieldf("password", "username and password go together")
	}
	for i, name := range c.UPS {
		if name == "" || strings.ContainsAny(name, " \t\"") {
			return yamlfile.Fieldf(fmt.Sprintf("ups.%d", i), "%q is not a UPS name of ups.conf", name)
		}
	}
	if c.Timeout < 0 {
		return yamlfile.Fieldf("timeout", "is negative")
	}
	return nil
}

// Collector reads the UPSes.
type Collector struct {
	cfg    Config
	logger log.Logger

	mu   sync.Mutex
	seen []string // UPS names upsd listed before, reported as down while upsd is
}

// New returns a UPS collector.
func New(cfg Config, logger log.Logger) *Collector {
	cfg.defaults()
	return &Collector{cfg: cfg, logger: logger, seen: slices.Clone(cfg.UPS)}
}

// Name implements exporter.Collector.
func (c *Collector) Name() string { return "ups" }

// Collect implements exporter.Collector. A UPS upsd cannot read (its driver
// is not connected, or still WAITing for its first read) is kiosk_ups_up 0;
// so is every known UPS while upsd itself does not answer.
func (c *Collector) Collect(ctx context.Context, s *exporter.Snapshot) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	down := func(err error) error {
		if len(c.seen) == 0 {
			return fmt.Errorf("upsd at %s: %w", c.cfg.Address, err)
		}
		level.Debug(c.logger).Log("msg", "upsd does not answer", "address", c.cfg.Address, "err", err)
		for _, name := range c.seen {
			s.AddBool("kiosk_ups_up", false, name)
		}
		return nil
	}
	conn, err := dial(ctx, c.cfg.Address, time.Duration(c.cfg.Timeout))
	if err != nil {
		return down(err)
	}
	defer conn.Close()
	if c.cfg.Username != "" {
		if err := conn.command("USERNAME " + c.cfg.Username); err != nil {
			return down(err)
		}
		if err := conn.command("PASSWORD " + c.cfg.Password); err != nil {
			return down(err)
		}
	}
	names := c.cfg.UPS
	if len(names) == 0 {
		items, err := conn.list("UPS")
		if err != nil {
			return down(err)
		}
		names = names[:0:0]
		for _, it := range items {
			names = append(names, it[0])
		}
		c.seen = names
	}
	for _, name := range names {
		items, err := conn.list("VAR " + name)
		var protoErr *errUPSd
		if errors.As(err, &protoErr) {
			level.Debug(c.logger).Log("msg", "upsd cannot read the UPS", "ups", name, "err", err)
			s.AddBool("kiosk_ups_up", false, name)
			continue
		}
		if err != nil {
			return down(err)
		}
		vars := make(map[string]string, len(items))
		for _, it := range items {
			if len(it) >= 2 {
				vars[it[0]] = it[1]
			}
		}
		report(s, name, vars)
	}
	return nil
}

// report adds the series of one UPS from its upsd variables.
func report(s *exporter.Snapshot, name string, vars map[string]string) {
	status := strings.Fields(vars["ups.status"])
	// WAIT: the driver has not read the UPS yet; nothing it says is real.
	if len(status) == 0 || slices.Contains(status, "WAIT") {
		s.AddBool("kiosk_ups_up", false, name)
		return
	}
	s.AddBool("kiosk_ups_up", true, name)
	s.AddBool("kiosk_ups_on_battery", slices.Contains(status, "OB"), name)
	s.AddBool("kiosk_ups_low_battery", slices.Contains(status, "LB"), name)
	s.AddBool("kiosk_ups_replace_battery", slices.Contains(status, "RB"), name)
	number := func(key string, scale float64, metric string) {
		if v, err := strconv.ParseFloat(vars[key], 64); err == nil {
			s.Add(metric, v*scale, name)
		}
	}
	number("battery.charge", 0.01, "kiosk_ups_battery_charge_ratio")
	number("battery.runtime", 1, "kiosk_ups_battery_runtime_seconds")
	number("ups.load", 0.01, "kiosk_ups_load_ratio")
	number("input.voltage", 1, "kiosk_ups_input_voltage_volts")
}
