// Package usb tells whether the kiosk's USB peripherals are enumerated, by
// vendor:product id from sysfs (Linux, Kylin and UOS included). Unplugged or
// dead at the USB level is a different fault from a driver that does not
// answer, which the app collector's middleware reports.
package usb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/exporter/catalog"
	"github.com/kioskmon/kioskmon/yamlfile"
)

// Config configures the collector.
type Config struct {
	Devices []Device `yaml:"devices"`
	// SysRoot is where /sys is mounted (tests point it at a fixture).
	SysRoot string `yaml:"-"`
}

// Device is a peripheral expected on the USB bus.
type Device struct {
	Name string `yaml:"name"`
	Kind string `yaml:"kind"`
	// USBID is vendor:product in hex, as lsusb shows it (1a2b:3c4d).
	USBID string `yaml:"usb_id"`
}

var usbIDRe = regexp.MustCompile(`^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$`)

// Validate checks the configuration; errors are *yamlfile.FieldError.
func (c *Config) Validate() error {
	seen := map[string]bool{}
	for i, d := range c.Devices {
		field := func(f string) string { return fmt.Sprintf("devices.%d.%s", i, f) }
		if d.Name == "" || seen[d.Name] {
			return yamlfile.Fieldf(field("name"), "%q is missing or used twice", d.Name)
		}
		seen[d.Name] = true
		if !slices.Contains(catalog.PeripheralKinds, d.Kind) {
			return yamlfile.Fieldf(field("kind"), "%q is not one of %s", d.Kind, strings.Join(catalog.PeripheralKinds, ", "))
		}
		if !usbIDRe.MatchString(d.USBID) {
			return yamlfile.Fieldf(field("usb_id"), "%q is not vendor:product in hex, e.g. 0bda:5411 (see lsusb)", d.USBID)
		}
	}
	return nil
}

// Collector reads the USB bus.
type Collector struct{ cfg Config }

// New returns a USB presence collector.
func New(cfg Config) *Collector {
	if cfg.SysRoot == "" {
		cfg.SysRoot = "/sys"
	}
	for i := range cfg.Devices {
		cfg.Devices[i].USBID = strings.ToLower(cfg.Devices[i].USBID)
	}
	return &Collector{cfg: cfg}
}

// Name implements exporter.Collector.
func (c *Collector) Name() string { return "usb" }

// Collect implements exporter.Collector.
func (c *Collector) Collect(_ context.Context, s *exporter.Snapshot) error {
	if runtime.GOOS != "linux" {
		return errors.New("USB presence is read from sysfs, on Linux only")
	}
	present, err := c.enumerated()
	if err != nil {
		return err
	}
	for _, d := range c.cfg.Devices {
		s.AddBool("kiosk_peripheral_usb_present", present[d.USBID], d.Name, d.Kind, d.USBID)
	}
	return nil
}

// enumerated returns the vendor:product ids on the bus. Entries of
// /sys/bus/usb/devices are symlinks to devices and to their interfaces;
// only devices have idVendor.
func (c *Collector) enumerated() (map[string]bool, error) {
	dir := filepath.Join(c.cfg.SysRoot, "bus", "usb", "devices")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list USB devices: %w", err)
	}
	ids := map[string]bool{}
	for _, e := range entries {
		vendor, err1 := os.ReadFile(filepath.Join(dir, e.Name(), "idVendor"))
		product, err2 := os.ReadFile(filepath.Join(dir, e.Name(), "idProduct"))
		if err1 != nil || err2 != nil {
			continue
		}
		ids[strings.ToLower(strings.TrimSpace(string(vendor))+":"+strings.TrimSpace(string(product)))] = true
	}
	return ids, nil
}
