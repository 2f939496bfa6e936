package usb

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/yamlfile"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fixture copies testdata/sys to a temporary sysfs and completes it the way
// the kernel lays it out, with what the repository cannot hold: a device
// reached through a symlink (bus/usb/devices/1-4 -> devices/.../1-4) and
// interfaces, whose names have colons, without idVendor.
func fixture(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS("testdata/sys")); err != nil {
		t.Fatal(err)
	}
	bus := filepath.Join(root, "bus", "usb", "devices")
	dev := filepath.Join(root, "devices", "pci0000:00", "0000:00:14.0", "usb1", "1-4")
	for name, content := range map[string]string{"idVendor": "2109\n", "idProduct": "7638\n", "product": "Fingerprint sensor\n"} {
		write(t, filepath.Join(dev, name), content)
	}
	if err := os.Symlink(dev, filepath.Join(bus, "1-4")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(bus, "1-1:1.0", "bInterfaceClass"), "ff\n")
	write(t, filepath.Join(dev+":1.0", "bInterfaceClass"), "ff\n")
	if err := os.Symlink(dev+":1.0", filepath.Join(bus, "1-4:1.0")); err != nil {
		t.Fatal(err)
	}
	return root
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// expose writes the snapshot one series a line, in collection order.
func expose(s *exporter.Snapshot) string {
	var b strings.Builder
	s.Each(func(name string, labels []exporter.Label, v float64) {
		var ls []string
		for _, l := range labels {
			ls = append(ls, fmt.Sprintf("%s=%q", l.Name, l.Value))
		}
		fmt.Fprintf(&b, "%s{%s} %g\n", name, strings.Join(ls, ","), v)
	})
	return b.String()
}

func golden(t *testing.T, s *exporter.Snapshot, file string) {
	t.Helper()
	got := expose(s)
	path := filepath.Join("testdata", file)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\ngot:\n%swant:\n%s", path, got, want)
	}
}

func collect(t *testing.T, c *Collector) *exporter.Snapshot {
	t.Helper()
	s := &exporter.Snapshot{}
	if err := c.Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return s
}

var kioskDevices = []Device{
	{Name: "idreader", Kind: "id_card_reader", USBID: "0400:c35a"},
	{Name: "camera", Kind: "camera", USBID: "0C45:636B"},
	{Name: "receipt", Kind: "receipt_printer", USBID: "0416:5011"},
	{Name: "fingerprint", Kind: "fingerprint_reader", USBID: "2109:7638"},
	{Name: "signature", Kind: "signature_pad", USBID: "056a:00a5"},
}

func TestPresence(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("sysfs is Linux only")
	}
	root := fixture(t)
	cfg := Config{SysRoot: root, Devices: kioskDevices}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c := New(cfg)
	golden(t, collect(t, c), "present.golden")

	// The ID card reader (a plain directory) is unplugged; the fingerprint
	// sensor's device goes, leaving its bus symlink dangling for a moment.
	if err := os.RemoveAll(filepath.Join(root, "bus", "usb", "devices", "1-1")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(root, "devices", "pci0000:00", "0000:00:14.0", "usb1", "1-4")); err != nil {
		t.Fatal(err)
	}
	golden(t, collect(t, c), "unplugged.golden")
}

func TestNoUSBBus(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("sysfs is Linux only")
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "bus", "pci"), 0o755)
	s := collect(t, New(Config{SysRoot: root, Devices: kioskDevices[:2]}))
	if got := expose(s); strings.Count(got, "} 0\n") != 2 {
		t.Fatalf("sysfs without a USB bus:\n%s", got)
	}
	err := New(Config{SysRoot: filepath.Join(root, "nonexistent"), Devices: kioskDevices}).Collect(context.Background(), &exporter.Snapshot{})
	if err == nil || !strings.Contains(err.Error(), "no sysfs") {
		t.Fatalf("no sysfs: %v", err)
	}
}

// TestThisMachine reads the real sysfs: whatever is plugged in, each
// configured device has one series.
func TestThisMachine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("sysfs is Linux only")
	}
	if _, err := os.Stat("/sys/bus"); err != nil {
		t.Skip("no sysfs mounted at /sys")
	}
	c := New(Config{Devices: kioskDevices[:2]})
	s := collect(t, c)
	if len(s.Series) != 2 || s.Series[0].LabelValues[0] != "idreader" || s.Series[1].LabelValues[0] != "camera" {
		t.Fatalf("real sysfs:\n%s", expose(s))
	}
}

func TestOtherSystems(t *testing.T) {
	if runtime.GOOS == "linux" {
		t.Skip("Linux reads sysfs")
	}
	err := New(Config{Devices: kioskDevices}).Collect(context.Background(), &exporter.Snapshot{})
	if err == nil || !strings.Contains(err.Error(), "Linux only") {
		t.Fatalf("want an error saying USB presence is Linux only, got %v", err)
	}
}

func TestValidate(t *testing.T) {
	f := func(c Config, field string) {
		t.Helper()
		err := c.Validate()
		var fe *yamlfile.FieldError
		if field == "" && err != nil || field != "" && (!errors.As(err, &fe) || fe.Field != field) {
			t.Fatalf("%+v: error %v, want one about %q", c, err, field)
		}
	}
	f(Config{}, "")
	f(Config{Devices: kioskDevices}, "")
	f(Config{Devices: []Device{{Name: "a", Kind: "camera", USBID: "0BDA:5411"}}}, "")
	f(Config{Devices: []Device{{Name: "a", Kind: "camera", USBID: "0bda5411"}}}, "devices.0.usb_id")
	f(Config{Devices: []Device{{Name: "a", Kind: "camera", USBID: "bda:5411"}}}, "devices.0.usb_id")
	f(Config{Devices: []Device{{Name: "a", Kind: "camera", USBID: "0bdg:5411"}}}, "devices.0.usb_id")
	f(Config{Devices: []Device{{Name: "a", Kind: "camera", USBID: " 0bda:5411"}}}, "devices.0.usb_id")
	f(Config{Devices: []Device{{Name: "a", Kind: "camera"}}}, "devices.0.usb_id")
	f(Config{Devices: []Device{{Name: "a", Kind: "webcam", USBID: "0bda:5411"}}}, "devices.0.kind")
	f(Config{Devices: []Device{{Name: "a", USBID: "0bda:5411"}}}, "devices.0.kind")
	f(Config{Devices: []Device{{Kind: "camera", USBID: "0bda:5411"}}}, "devices.0.name")
	f(Config{Devices: []Device{{Name: "a", Kind: "camera", USBID: "0bda:5411"}, {Name: "a", Kind: "camera", USBID: "0bda:5412"}}}, "devices.1.name")
}

// TestYAML decodes the collector's section as the exporter's file holds it;
// sys_root is not a setting.
func TestYAML(t *testing.T) {
	var c Config
	if _, err := yamlfile.Decode([]byte(`devices: [{name: idreader, kind: id_card_reader, usb_id: "1a2b:3c4d"}]`), "usb.yml", &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil || c.Devices[0].USBID != "1a2b:3c4d" {
		t.Fatalf("decoded %+v, %v", c, err)
	}
	if _, err := yamlfile.Decode([]byte(`sys_root: /tmp`), "usb.yml", &Config{}); err == nil {
		t.Fatal("sys_root was accepted from the file")
	}
}
