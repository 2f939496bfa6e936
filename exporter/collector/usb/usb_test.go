package usb

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/yamlfile"
)

// fixture builds a sysfs tree the way the kernel lays it out: real device
// directories under devices/, symlinks to them (and to their interfaces,
// which have no idVendor) under bus/usb/devices.
func fixture(t *testing.T) (root string, unplug func(name string)) {
	t.Helper()
	root = t.TempDir()
	bus := filepath.Join(root, "bus", "usb", "devices")
	os.MkdirAll(bus, 0o755)
	add := func(name, vendor, product string) {
		dev := filepath.Join(root, "devices", "pci0000:00", "usb1", name)
		os.MkdirAll(dev, 0o755)
		if vendor != "" {
			os.WriteFile(filepath.Join(dev, "idVendor"), []byte(vendor+"\n"), 0o644)
			os.WriteFile(filepath.Join(dev, "idProduct"), []byte(product+"\n"), 0o644)
		}
		if err := os.Symlink(dev, filepath.Join(bus, name)); err != nil {
			t.Fatal(err)
		}
	}
	add("usb1", "1d6b", "0002") // root hub
	add("1-1", "0400", "C35A")  // ID card reader (upper case, as some firmware writes)
	add("1-1:1.0", "", "")      // its interface
	add("1-2", "0bda", "5411")  // camera hub
	return root, func(name string) { os.Remove(filepath.Join(bus, name)) }
}

func gather(t *testing.T, c *Collector) map[string]float64 {
	t.Helper()
	s := &exporter.Snapshot{}
	if err := c.Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	s.Each(func(name string, labels []exporter.Label, v float64) { got[labels[0].Value] = v })
	return got
}

func TestPresence(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("sysfs is Linux only")
	}
	root, unplug := fixture(t)
	cfg := Config{SysRoot: root, Devices: []Device{
		{Name: "idreader", Kind: "id_card_reader", USBID: "0400:c35a"},
		{Name: "camera", Kind: "camera", USBID: "0BDA:5411"},
		{Name: "fingerprint", Kind: "fingerprint_reader", USBID: "2109:7638"},
	}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c := New(cfg)
	got := gather(t, c)
	if got["idreader"] != 1 || got["camera"] != 1 || got["fingerprint"] != 0 || len(got) != 3 {
		t.Fatalf("present: %v", got)
	}
	unplug("1-1")
	if got := gather(t, c); got["idreader"] != 0 || got["camera"] != 1 {
		t.Fatalf("after unplugging the ID card reader: %v", got)
	}
}

func TestThisMachine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("sysfs is Linux only")
	}
	if _, err := os.Stat("/sys/bus/usb/devices"); err != nil {
		t.Skip("no USB bus in this machine's sysfs")
	}
	c := New(Config{Devices: []Device{{Name: "x", Kind: "camera", USBID: "ffff:fffe"}}})
	if got := gather(t, c); len(got) != 1 || got["x"] != 0 {
		t.Fatalf("real sysfs: %v", got)
	}
}

func TestValidate(t *testing.T) {
	f := func(c Config, field string) {
		t.Helper()
		err := c.Validate()
		fe, ok := err.(*yamlfile.FieldError)
		if field == "" && err != nil || field != "" && (!ok || fe.Field != field) {
			t.Fatalf("%+v: error %v, want one about %q", c, err, field)
		}
	}
	f(Config{Devices: []Device{{Name: "a", Kind: "camera", USBID: "0bda:5411"}}}, "")
	f(Config{Devices: []Device{{Name: "a", Kind: "camera", USBID: "0bda5411"}}}, "devices.0.usb_id")
	f(Config{Devices: []Device{{Name: "a", Kind: "webcam", USBID: "0bda:5411"}}}, "devices.0.kind")
	f(Config{Devices: []Device{{Name: "a", Kind: "camera", USBID: "0bda:5411"}, {Name: "a", Kind: "camera", USBID: "0bda:5412"}}}, "devices.1.name")
}
