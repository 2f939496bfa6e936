// Package config is the kiosk exporter's configuration file: strict,
// versioned YAML, validated with file:line errors (kiosk-exporter --check).
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/kioskmon/kioskmon/exporter/collector/app"
	"github.com/kioskmon/kioskmon/exporter/collector/host"
	"github.com/kioskmon/kioskmon/exporter/collector/ipp"
	"github.com/kioskmon/kioskmon/exporter/collector/network"
	"github.com/kioskmon/kioskmon/exporter/collector/probe"
	"github.com/kioskmon/kioskmon/exporter/collector/snmpprinter"
	"github.com/kioskmon/kioskmon/exporter/collector/ups"
	"github.com/kioskmon/kioskmon/exporter/collector/usb"
	"github.com/kioskmon/kioskmon/yamlfile"
)

// Config is the whole file.
type Config struct {
	Version string `yaml:"version"`
	// Interval between gathers; each gather is pushed and served on /metrics.
	Interval yamlfile.Duration `yaml:"interval"`
	// Listen is the address of /metrics; "" serves nothing.
	Listen string `yaml:"listen"`
	// Push sends every gather to kioskmon; without push.url nothing is pushed.
	Push       Push       `yaml:"push"`
	Collectors Collectors `yaml:"collectors"`

	lines *yamlfile.Lines
	file  string
}

// Push configures delivery to kioskmon.
type Push struct {
	URL       string `yaml:"url"`
	KioskID   string `yaml:"kiosk_id"`
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// QueueDir holds the on-disk queue. Required with push.url.
	QueueDir      string            `yaml:"queue_dir"`
	QueueMaxBytes yamlfile.ByteSize `yaml:"queue_max_bytes"`
	Timeout       yamlfile.Duration `yaml:"timeout"`
}

// Collectors switches collectors on by configuring them.
type Collectors struct {
	Host        *host.Config        `yaml:"host"`
	UPS         *ups.Config         `yaml:"ups"`
	IPP         *ipp.Config         `yaml:"ipp"`
	Network     *network.Config     `yaml:"network"`
	App         *app.Config         `yaml:"app"`
	Probe       *probe.Config       `yaml:"probe"`
	USB         *usb.Config         `yaml:"usb"`
	SNMPPrinter *snmpprinter.Config `yaml:"snmp_printer"`
}

// validators returns the configured collectors' Validate by their YAML key.
func (c *Collectors) validators() map[string]func() error {
	v := map[string]func() error{}
	if c.UPS != nil {
		v["ups"] = c.UPS.Validate
	}
	if c.IPP != nil {
		v["ipp"] = c.IPP.Validate
	}
	if c.Network != nil {
		v["network"] = c.Network.Validate
	}
	if c.App != nil {
		v["app"] = c.App.Validate
	}
	if c.Probe != nil {
		v["probe"] = c.Probe.Validate
	}
	if c.USB != nil {
		v["usb"] = c.USB.Validate
	}
	if c.SNMPPrinter != nil {
		v["snmp_printer"] = c.SNMPPrinter.Validate
	}
	return v
}

// Default returns the configuration used for fields the file leaves out.
func Default() Config {
	return Config{
		Version:  "v1",
		Interval: yamlfile.Duration(15 * time.Second),
		Listen:   "127.0.0.1:9182",
		Push:     Push{QueueMaxBytes: 256 << 20, Timeout: yamlfile.Duration(30 * time.Second)},
		Collectors: Collectors{
			Host: &host.Config{},
		},
	}
}

// Load reads and validates path.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path)
}

// Parse reads data (from file, for messages) over the defaults and validates it.
func Parse(data []byte, file string) (Config, error) {
	cfg := Default()
	lines, err := yamlfile.Decode(data, file, &cfg)
	if err != nil {
		return Config{}, err
	}
	cfg.lines, cfg.file = lines, file
	return cfg, cfg.Validate()
}

// Validate checks the values; errors name the field and its line.
func (c *Config) Validate() error {
	fail := func(field, format string, args ...any) error {
		where := c.file
		// A missing field is reported at its parent's line.
		for path := field; path != ""; {
			if line := c.lines.Line(path); line > 0 {
				where = fmt.Sprintf("%s:%d", c.file, line)
				break
			}
			i := strings.LastIndexByte(path, '.')
			path = path[:max(i, 0)]
		}
		if where != "" {
			where += ": "
		}
		return fmt.Errorf("%s%s: %s", where, field, fmt.Sprintf(format, args...))
	}
	if c.Version != "v1" {
		return fail("version", "%q is not a known version (want v1)", c.Version)
	}
	if time.Duration(c.Interval) < time.Second || time.Duration(c.Interval) > time.Hour {
		return fail("interval", "%s is not between 1s and 1h", c.Interval)
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fail("listen", "%q is not host:port", c.Listen)
		}
	}
	p := &c.Push
	if p.URL != "" {
		u, err := url.Parse(p.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fail("push.url", "%q is not an http(s) URL such as http://kioskmon:8428", p.URL)
		}
		if p.QueueDir == "" {
			return fail("push.queue_dir", "is required with push.url: the queue keeps samples across outages")
		}
		if p.Token == "" && p.TokenFile == "" {
			return fail("push.token_file", "a push needs the kiosk's token (token_file, or token); get one with kioskmon kiosks token")
		}
		if p.Token != "" && p.TokenFile != "" {
			return fail("push.token", "set token or token_file, not both")
		}
		if p.QueueMaxBytes < 1<<20 {
			return fail("push.queue_max_bytes", "%s is below 1MiB", p.QueueMaxBytes)
		}
	}
	for name, validate := range c.Collectors.validators() {
		if err := validate(); err != nil {
			var fe *yamlfile.FieldError
			if errors.As(err, &fe) {
				return fail("collectors."+name+"."+fe.Field, "%s", fe.Msg)
			}
			return fail("collectors."+name, "%s", err)
		}
	}
	return nil
}

// CheckOutputs fails when the exporter would report to no one: without
// /metrics and without a push (Telegraf execd mode needs neither).
func (c *Config) CheckOutputs() error {
	if c.Listen == "" && c.Push.URL == "" {
		return errors.New(c.file + ": neither listen nor push.url is set: the exporter would report to no one (or run it with --execd under Telegraf)")
	}
	return nil
}

// PushToken returns the configured token, reading token_file if set.
func (c *Config) PushToken() (string, error) {
	if c.Push.TokenFile == "" {
		return c.Push.Token, nil
	}
	data, err := os.ReadFile(c.Push.TokenFile)
	if err != nil {
		return "", fmt.Errorf("read push token: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("push token file %s is empty", c.Push.TokenFile)
	}
	return token, nil
}
