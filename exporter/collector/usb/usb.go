// Package usb tells whether the kiosk's USB peripherals are enumerated, by
// vendor:product id from sysfs (Linux, Kylin and UOS included). Unplugged or
// dead at the USB level is a different fault from a driver that does not
// answer, which the app collector's middleware reports.
package usb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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
	// SysRoot is where sysfs is mounted. Default /sys; tests point it at a
	// fixture.
	SysRoot string `yaml:"-"`
}

// Device is a peripheral expected on the USB bus.
type Device struct {
	// Name is the device label, as in kiosk_peripheral_state.
	Name string `yaml:"name"`
	// Kind is one of catalog.PeripheralKinds (id_card_reader, camera...).
	Kind string `yaml:"kind"`
	// USBID is vendor:product in hex, as lsusb shows it (1a2b:3c4d); case
	// does not matter.
	USBID string `yaml:"usb_id"`
}

var usbIDRe = regexp.MustCompile(`^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$`)

// Validate checks the configuration; errors are *yamlfile.FieldError with
// paths such as "devices.1.usb_id".
func (c *Config) Validate() error {
	seen := map[string]bool{}
	for i, d := range c.Devices {
		field := func(f string) string { return fmt.Sprintf("devices.%d.%s", i, f) }
		switch {
		case d.Name == "":
			return yamlfile.Fieldf(field("name"), "is missing")
		case seen[d.Name]:
			return yamlfile.Fieldf(field("name"), "%q is used twice", d.Name)
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

// New returns a USB presence collector of a configuration that passed
// Validate.
func New(cfg Config) *Collector {
	if cfg.SysRoot == "" {
		cfg.SysRoot = "/sys"
	}
	cfg.Devices = slices.Clone(cfg.Devices)
	for i := range cfg.Devices {
		cfg.Devices[i].USBID = strings.ToLower(cfg.Devices[i].USBID)
	}
	return &Collector{cfg: cfg}
}

// Name implements exporter.Collector.
func (c *Collector) Name() string { return "usb" }

// Collect implements exporter.Collector: one kiosk_peripheral_usb_present
// series per configured device. It fails on systems other than Linux, and
// when sysfs is not mounted at SysRoot.
func (c *Collector) Collect(_ context.Context, s *exporter.Snapshot) error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("usb: presence is read from sysfs, on Linux only (this is %s)", runtime.GOOS)
	}
	present, err := enumerated(c.cfg.SysRoot)
	if err != nil {
		return fmt.Errorf("usb: %w", err)
	}
	for _, d := range c.cfg.Devices {
		s.AddBool("kiosk_peripheral_usb_present", present[d.USBID], d.Name, d.Kind, d.USBID)
	}
	return nil
}

// enumerated returns the vendor:product ids, lower case, of the devices on
// the bus. Entries of bus/usb/devices are symlinks to the devices and to
// their interfaces (1-1:1.0), which have no idVendor; plain directories are
// read the same way. An entry that vanishes while it is read was unplugged.
func enumerated(sysRoot string) (map[string]bool, error) {
	dir := filepath.Join(sysRoot, "bus", "usb", "devices")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		// With sysfs mounted but no USB bus registered (no controller, or
		// usbcore not loaded), no device is enumerated: that is a value.
		if _, err := os.Stat(filepath.Join(sysRoot, "bus")); err != nil {
			return nil, fmt.Errorf("no sysfs at %s: %w", sysRoot, err)
		}
		return map[string]bool{}, nil
	}
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

var _ exporter.Collector = (*Collector)(nil)
