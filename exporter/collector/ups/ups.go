// Package ups reads UPSes through Network UPS Tools' upsd, the daemon every
// kiosk OS can run in front of its UPS driver (usbhid-ups, blazer, ...).
package ups

import (
	"context"
	"errors"
	"fmt"
	"math"
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

// Config configures the collector. Zero values mean the defaults.
type Config struct {
	// Address of upsd, host:port. Default 127.0.0.1:3493.
	Address string `yaml:"address"`
	// Username and Password of upsd.users, sent when set. Reading needs no
	// login in upsd itself; set them where the site's upsd wants clients
	// to identify themselves.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// UPS names to read, the sections of ups.conf. Empty reads every UPS
	// upsd lists.
	UPS []string `yaml:"ups"`
	// Timeout of one gather's conversation with upsd, connect included; the
	// gather's own deadline cuts it shorter. Default 5s.
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

// Validate checks the configuration; errors are *yamlfile.FieldError with
// the field's path below the collector's configuration.
func (c *Config) Validate() error {
	if c.Address != "" {
		if _, port, err := net.SplitHostPort(c.Address); err != nil || port == "" {
			return yamlfile.Fieldf("address", "%q is not host:port (upsd listens on 3493)", c.Address)
		}
	}
	switch {
	case c.Username != "" && c.Password == "":
		return yamlfile.Fieldf("password", "is required with username")
	case c.Username == "" && c.Password != "":
		return yamlfile.Fieldf("username", "is required with password")
	case hasControl(c.Username):
		return yamlfile.Fieldf("username", "holds a control character")
	case hasControl(c.Password):
		return yamlfile.Fieldf("password", "holds a control character")
	}
	for i, name := range c.UPS {
		// A name goes unquoted into LIST VAR <ups>; ups.conf section names
		// have no spaces or quotes either.
		if name == "" || strings.ContainsAny(name, " \"\\") || hasControl(name) {
			return yamlfile.Fieldf(fmt.Sprintf("ups.%d", i), "%q is not a UPS name of ups.conf", name)
		}
		if slices.Contains(c.UPS[:i], name) {
			return yamlfile.Fieldf(fmt.Sprintf("ups.%d", i), "%q is listed twice", name)
		}
	}
	if c.Timeout < 0 {
		return yamlfile.Fieldf("timeout", "is negative")
	}
	return nil
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f })
}

// Collector reads the UPSes through upsd.
//
// Each gather opens a new connection and closes it: at one gather every 15s
// that costs nothing, and there is no connection to find broken after upsd
// restarts or the kiosk resumes from sleep.
type Collector struct {
	cfg    Config
	logger log.Logger

	mu        sync.Mutex // one gather at a time
	known     []string   // the UPSes reported down while upsd does not answer
	upsdError bool       // whether the last gather failed to talk to upsd, to log changes only
}

// New returns a UPS collector; cfg should have passed Validate.
func New(cfg Config, logger log.Logger) *Collector {
	cfg.defaults()
	return &Collector{cfg: cfg, logger: logger, known: slices.Clone(cfg.UPS)}
}

// Name implements exporter.Collector.
func (c *Collector) Name() string { return "ups" }

// Collect implements exporter.Collector.
//
// A UPS that upsd cannot read (unknown to it, driver not connected, data
// stale, or status WAIT) is kiosk_ups_up 0 with no other series. While upsd
// itself does not answer, every UPS of the configuration, or every UPS upsd
// listed at its last answer, is kiosk_ups_up 0 and Collect returns nil: the
// exporter works, the power side of the kiosk does not. Collect returns an
// error only when upsd does not answer and there is no UPS to report down,
// because ups is empty and upsd never listed one.
func (c *Collector) Collect(ctx context.Context, s *exporter.Snapshot) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	readings, err := c.read(ctx)
	done := make(map[string]bool, len(readings))
	for _, r := range readings {
		done[r.name] = true
		if r.err != nil {
			level.Debug(c.logger).Log("msg", "upsd cannot read the UPS", "ups", r.name, "err", r.err)
			s.AddBool("kiosk_ups_up", false, r.name)
			continue
		}
		report(s, r.name, r.vars)
	}
	if err == nil {
		if c.upsdError {
			level.Info(c.logger).Log("msg", "upsd answers again", "address", c.cfg.Address)
		}
		c.upsdError = false
		return nil
	}
	err = fmt.Errorf("upsd at %s: %w", c.cfg.Address, err)
	if len(readings) == 0 && len(c.known) == 0 {
		return err
	}
	if !c.upsdError {
		level.Warn(c.logger).Log("msg", "upsd does not answer; its UPSes are reported down", "err", err)
	}
	c.upsdError = true
	for _, name := range c.known {
		if !done[name] {
			s.AddBool("kiosk_ups_up", false, name)
		}
	}
	return nil
}

// reading is what upsd said about one UPS.
type reading struct {
	name string
	vars map[string]string
	err  error // an ERR answer of upsd about this UPS
}

// read returns the variables of the UPSes. If upsd fails (does not answer,
// closes the connection, sends what is not the protocol), read returns the
// UPSes read so far and the error.
func (c *Collector) read(ctx context.Context) ([]reading, error) {
	conn, err := dial(ctx, c.cfg.Address, time.Duration(c.cfg.Timeout))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if c.cfg.Username != "" {
		// upsd checks the password only for commands that change the UPS
		// (LOGIN, SET, INSTCMD), so a wrong one goes unnoticed here.
		if err := conn.command("USERNAME", c.cfg.Username); err != nil {
			return nil, err
		}
		if err := conn.command("PASSWORD", c.cfg.Password); err != nil {
			return nil, err
		}
	}
	names := c.cfg.UPS
	if len(names) == 0 {
		items, err := conn.list("UPS")
		if err != nil {
			return nil, err
		}
		names = make([]string, 0, len(items))
		for _, it := range items {
			names = append(names, it[0])
		}
		c.known = names
	}
	readings := make([]reading, 0, len(names))
	for _, name := range names {
		items, err := conn.list("VAR " + name)
		if errUPS := (*errUPSd)(nil); errors.As(err, &errUPS) {
			readings = append(readings, reading{name: name, err: err})
			continue
		}
		if err != nil {
			return readings, err
		}
		vars := make(map[string]string, len(items))
		for _, it := range items {
			if len(it) >= 2 {
				vars[it[0]] = it[1]
			}
		}
		readings = append(readings, reading{name: name, vars: vars})
	}
	return readings, nil
}

// report adds the series of one UPS from its upsd variables. Variables the
// UPS does not have, or whose value is not a number, are left out.
func report(s *exporter.Snapshot, name string, vars map[string]string) {
	status := strings.Fields(vars["ups.status"])
	// WAIT: the driver has not read the UPS yet, so nothing it holds is
	// real; up 0 rather than up 1 with made-up flags. No status at all is a
	// driver that is not working either.
	if len(status) == 0 || slices.Contains(status, "WAIT") {
		s.AddBool("kiosk_ups_up", false, name)
		return
	}
	s.AddBool("kiosk_ups_up", true, name)
	s.AddBool("kiosk_ups_on_battery", slices.Contains(status, "OB"), name)
	s.AddBool("kiosk_ups_low_battery", slices.Contains(status, "LB"), name)
	s.AddBool("kiosk_ups_replace_battery", slices.Contains(status, "RB"), name)
	// per is the variable's unit in the metric's: 100 for percent to ratio.
	number := func(key string, per float64, metric string) {
		v, err := strconv.ParseFloat(strings.TrimSpace(vars[key]), 64)
		if err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
			s.Add(metric, v/per, name)
		}
	}
	number("battery.charge", 100, "kiosk_ups_battery_charge_ratio")
	number("battery.runtime", 1, "kiosk_ups_battery_runtime_seconds")
	number("ups.load", 100, "kiosk_ups_load_ratio")
	number("input.voltage", 1, "kiosk_ups_input_voltage_volts")
}
