package ipp

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"
	"github.com/go-kit/log"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/internal/peertest"
	"github.com/kioskmon/kioskmon/yamlfile"
)

const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/><allow own="*"/>
    <allow send_type="method_call"/><allow send_type="signal"/><allow send_type="method_return"/><allow send_type="error"/>
    <allow receive_type="method_call"/><allow receive_type="signal"/><allow receive_type="method_return"/><allow receive_type="error"/>
  </policy>
</busconfig>
`

const avahiConfig = `[server]
use-ipv4=yes
use-ipv6=no
allow-interfaces=lo
enable-dbus=yes
[publish]
publish-addresses=no
publish-hinfo=no
publish-workstation=no
`

func start(t *testing.T, env []string, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), out)
		}
	})
	return cmd
}

// startPrinter runs a real ippeveprinter (CUPS' IPP Everywhere printer) on
// loopback. It will not start without DNS-SD, so the test also runs a
// private D-Bus system bus and an avahi-daemon on it (no system services
// are touched). Returns the printer URL and its web base URL.
func startPrinter(t *testing.T) (string, string) {
	t.Helper()
	ippeve := peertest.Tool(t, "ippeveprinter", "cups-ipp-utils", "/usr/sbin")
	dbus := peertest.Tool(t, "dbus-daemon", "dbus")
	avahi := peertest.Tool(t, "avahi-daemon", "avahi-daemon", "/usr/sbin")
	if os.Getuid() != 0 {
		peertest.Missing(t, "ippeveprinter needs an avahi-daemon, which this test starts as root only")
	}
	dir := t.TempDir()
	bus := filepath.Join(dir, "bus")
	os.WriteFile(filepath.Join(dir, "bus.conf"), []byte(fmt.Sprintf(busConfig, bus)), 0o600)
	os.WriteFile(filepath.Join(dir, "avahi.conf"), []byte(avahiConfig), 0o600)
	env := append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS=unix:path="+bus)
	start(t, env, dbus, "--config-file="+filepath.Join(dir, "bus.conf"), "--nofork")
	waitFile(t, bus)
	start(t, env, avahi, "-f", filepath.Join(dir, "avahi.conf"), "--no-drop-root", "--no-chroot", "--no-rlimits")
	port := peertest.FreePort(t)
	// -n localhost: with an IP address as host name it fails to listen on IPv6.
	start(t, env, ippeve, "-p", fmt.Sprint(port), "-n", "localhost", "-d", dir, "-r", "off", "Kiosk A4")
	web := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(web + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ippeveprinter does not answer on %s: %v", web, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Sprintf("ipp://127.0.0.1:%d/ipp/print", port), web
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
	t.Fatalf("%s did not appear", path)
}

func collect(t *testing.T, c *Collector) map[string]float64 {
	t.Helper()
	s := &exporter.Snapshot{}
	if err := c.Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return flatten(s)
}

func flatten(s *exporter.Snapshot) map[string]float64 {
	got := map[string]float64{}
	s.Each(func(name string, labels []exporter.Label, v float64) {
		var ls []string
		for _, l := range labels {
			ls = append(ls, l.Value)
		}
		got[name+"{"+strings.Join(ls, ",")+"}"] = v
	})
	return got
}

// setForm sets a printer attribute through ippeveprinter's web forms,
// as an operator at the printer's panel would.
func setForm(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestAgainstRealIPPPrinter(t *testing.T) {
	printerURL, web := startPrinter(t)
	c := New(Config{Printers: []Printer{{Name: "a4", URL: printerURL}}}, log.NewNopLogger())
	got := collect(t, c)
	want := map[string]float64{
		"kiosk_printer_state{a4,idle}":                  1,
		"kiosk_peripheral_state{a4,a4_printer,ok}":      1,
		"kiosk_paper_jam{a4}":                           0,
		"kiosk_paper_state{a4,main,ok}":                 1,
		"kiosk_paper_level_ratio{a4,main}":              0.4, // ippeveprinter starts with 100 of 250 sheets
		"kiosk_toner_level_ratio{a4,Black Toner,black}": 0.75,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %g (present %v), want %g\nall: %v", k, g, ok, v, got)
		}
	}

	// The main tray runs out of paper and the toner runs low.
	// ippeveprinter applies a form when it gets round to it: set and read
	// until both changes show, within a bound.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		setForm(t, web+"/media?size1=iso_a4_210x297mm&type1=stationery&level1=0")
		setForm(t, web+"/supplies?supply0=25&supply1=4")
		got = collect(t, c)
		if got["kiosk_toner_level_ratio{a4,Black Toner,black}"] == 0.04 && got["kiosk_paper_level_ratio{a4,main}"] == 0 || time.Now().After(deadline) {
			break
		}
	}
	if got["kiosk_paper_state{a4,main,empty}"] != 1 || got["kiosk_paper_level_ratio{a4,main}"] != 0 {
		t.Errorf("empty tray not seen: %v", got)
	}
	if _, ok := got["kiosk_printer_state_reason{a4,media-empty,report}"]; !ok {
		t.Errorf("printer-state-reasons media-empty not reported: %v", got)
	}
	if got["kiosk_toner_level_ratio{a4,Black Toner,black}"] != 0.04 {
		t.Errorf("toner at 4%% not seen: %v", got)
	}
	if got["kiosk_paper_state{a4,main,empty}"] != 1 {
		t.FailNow()
	}

	// A printer that does not answer.
	dead := New(Config{Printers: []Printer{{Name: "gone", URL: fmt.Sprintf("ipp://127.0.0.1:%d/ipp/print", peertest.FreePort(t))}},
		Timeout: yamlfile.Duration(time.Second)}, log.NewNopLogger())
	got = collect(t, dead)
	if got["kiosk_peripheral_state{gone,a4_printer,not_responding}"] != 1 || len(got) != 5 {
		t.Fatalf("dead printer: %v", got)
	}
}

// message builds printer attributes as a printer would send them.
func message(attrs ...goipp.Attribute) goipp.Attributes { return goipp.Attributes(attrs) }

func TestReportJamAndMarkerLevels(t *testing.T) {
	s := &exporter.Snapshot{}
	Report(s, "a4", "a4_printer", message(
		goipp.MakeAttr("printer-state", goipp.TagEnum, goipp.Integer(5)),
		goipp.MakeAttr("printer-state-reasons", goipp.TagKeyword, goipp.String("media-jam-error"), goipp.String("toner-low-warning"), goipp.String("door-open")),
		goipp.MakeAttr("marker-names", goipp.TagName, goipp.String("Black cartridge")),
		goipp.MakeAttr("marker-colors", goipp.TagName, goipp.String("#000000")),
		goipp.MakeAttr("marker-levels", goipp.TagInteger, goipp.Integer(7)),
		goipp.MakeAttr("printer-impressions-completed", goipp.TagInteger, goipp.Integer(12345)),
		goipp.MakeAttr("printer-input-tray", goipp.TagString, goipp.Binary("type=sheetFeedAutoRemovableTray;maxcapacity=500;level=-3;name=tray1;")),
	))
	got := flatten(s)
	for k, v := range map[string]float64{
		"kiosk_printer_state{a4,stopped}":                     1,
		"kiosk_paper_jam{a4}":                                 1,
		"kiosk_peripheral_state{a4,a4_printer,fault}":         1,
		"kiosk_printer_state_reason{a4,media-jam,error}":      1,
		"kiosk_printer_state_reason{a4,toner-low,warning}":    1,
		"kiosk_printer_state_reason{a4,door-open,error}":      1,
		"kiosk_toner_level_ratio{a4,Black cartridge,#000000}": 0.07,
		"kiosk_printed_pages_total{a4}":                       12345,
	} {
		if got[k] != v {
			t.Errorf("%s = %g, want %g\nall: %v", k, got[k], v, got)
		}
	}
	if _, ok := got["kiosk_paper_level_ratio{a4,tray1}"]; ok {
		t.Error("a tray at level -3 (some remaining) has no ratio to report")
	}
}

func TestValidate(t *testing.T) {
	f := func(c Config, field string) {
		t.Helper()
		err := c.Validate()
		if field == "" {
			if err != nil {
				t.Fatalf("%+v: %v", c, err)
			}
			return
		}
		fe, ok := err.(*yamlfile.FieldError)
		if !ok || fe.Field != field {
			t.Fatalf("%+v: error %v, want one about %s", c, err, field)
		}
	}
	f(Config{Printers: []Printer{{Name: "a4", URL: "ipp://10.0.0.5/ipp/print"}}}, "")
	f(Config{}, "printers")
	f(Config{Printers: []Printer{{Name: "a4", URL: "lpd://10.0.0.5/q"}}}, "printers.0.url")
	f(Config{Printers: []Printer{{Name: "a4", URL: "ipp://a/"}, {Name: "a4", URL: "ipp://b/"}}}, "printers.1.name")
	f(Config{Printers: []Printer{{Name: "a4", URL: "ipp://a/", Kind: "fax"}}}, "printers.0.kind")
	if u, _ := httpURL("ipp://10.0.0.5/ipp/print"); u != "http://10.0.0.5:631/ipp/print" {
		t.Fatalf("ipp URL mapped to %s", u)
	}
}

// FuzzReport feeds arbitrary IPP answers to the mapping: it must never
// panic, whatever a printer sends.
func FuzzReport(f *testing.F) {
	m := goipp.NewResponse(goipp.DefaultVersion, goipp.StatusOk, 1)
	m.Printer.Add(goipp.MakeAttr("printer-state", goipp.TagEnum, goipp.Integer(3)))
	m.Printer.Add(goipp.MakeAttr("printer-supply", goipp.TagString, goipp.Binary("type=toner;maxcapacity=-2;level=40;unit=percent;colorantname=black;")))
	m.Printer.Add(goipp.MakeAttr("printer-input-tray", goipp.TagString, goipp.Binary("type=x;maxcapacity=250;level=20;name=main;")))
	seed, _ := m.EncodeBytes()
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		var msg goipp.Message
		if err := msg.DecodeBytes(data); err != nil {
			return
		}
		s := &exporter.Snapshot{}
		Report(s, "p", "a4_printer", msg.Printer)
		s.Each(func(string, []exporter.Label, float64) {})
	})
}
