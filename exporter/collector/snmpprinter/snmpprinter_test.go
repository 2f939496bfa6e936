package snmpprinter

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/internal/peertest"
	"github.com/kioskmon/kioskmon/yamlfile"
)

// agent is a real net-snmp snmpd on loopback. snmpd has no printer, so the
// Printer MIB and hrPrinterTable are served by a "pass" script from a
// values file the test rewrites; snmpd's own hrPrinterTable is switched off
// (-I -hr_print) so the script's answers are the ones seen.
type agent struct {
	dir, address string
}

func startAgent(t *testing.T, values map[string][2]string) *agent {
	t.Helper()
	snmpd := peertest.Tool(t, "snmpd", "snmpd", "/usr/sbin")
	peertest.Tool(t, "python3", "python3")
	a := &agent{dir: t.TempDir(), address: fmt.Sprintf("127.0.0.1:%d", peertest.FreeUDPPort(t))}
	script, err := os.ReadFile("testdata/pass.py")
	if err != nil {
		t.Fatal(err)
	}
	pass := filepath.Join(a.dir, "pass.py")
	os.WriteFile(pass, script, 0o755)
	a.set(t, values)
	conf := fmt.Sprintf("rocommunity kiosk 127.0.0.1\npass .1.3.6.1.2.1.43 %s\npass .1.3.6.1.2.1.25.3.5 %s\n", pass, pass)
	os.WriteFile(filepath.Join(a.dir, "snmpd.conf"), []byte(conf), 0o600)
	cmd := exec.Command(snmpd, "-f", "-Lo", "-C", "-c", filepath.Join(a.dir, "snmpd.conf"), "-I", "-hr_print",
		"-p", filepath.Join(a.dir, "snmpd.pid"), "udp:"+a.address)
	cmd.Env = append(os.Environ(), "MIBS=", "SNMP_PERSISTENT_DIR="+a.dir)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("snmpd output:\n%s", out)
		}
	})
	return a
}

func (a *agent) set(t *testing.T, values map[string][2]string) {
	t.Helper()
	data, _ := json.Marshal(values)
	tmp := filepath.Join(a.dir, "values.json.tmp")
	os.WriteFile(tmp, data, 0o644)
	os.Rename(tmp, filepath.Join(a.dir, "values.json"))
}

func printer(errorState string) map[string][2]string {
	return map[string][2]string{
		".1.3.6.1.2.1.25.3.5.1.1.1":    {"integer", "3"},
		".1.3.6.1.2.1.25.3.5.1.2.1":    {"octet", errorState},
		".1.3.6.1.2.1.43.8.2.1.9.1.1":  {"integer", "500"},
		".1.3.6.1.2.1.43.8.2.1.10.1.1": {"integer", "120"},
		".1.3.6.1.2.1.43.8.2.1.13.1.1": {"string", "Tray 1"},
		".1.3.6.1.2.1.43.8.2.1.9.1.2":  {"integer", "100"},
		".1.3.6.1.2.1.43.8.2.1.10.1.2": {"integer", "-3"},
		".1.3.6.1.2.1.43.10.2.1.4.1.1": {"counter32", "48213"},
		".1.3.6.1.2.1.43.11.1.1.5.1.1": {"integer", "21"},
		".1.3.6.1.2.1.43.11.1.1.6.1.1": {"string", "Black Toner Cartridge"},
		".1.3.6.1.2.1.43.11.1.1.8.1.1": {"integer", "10000"},
		".1.3.6.1.2.1.43.11.1.1.9.1.1": {"integer", "700"},
		".1.3.6.1.2.1.43.11.1.1.5.1.2": {"integer", "4"},
		".1.3.6.1.2.1.43.11.1.1.6.1.2": {"string", "Waste Toner Box"},
		".1.3.6.1.2.1.43.11.1.1.8.1.2": {"integer", "100"},
		".1.3.6.1.2.1.43.11.1.1.9.1.2": {"integer", "30"},
	}
}

func gather(t *testing.T, c *Collector) map[string]float64 {
	t.Helper()
	s := &exporter.Snapshot{}
	if err := c.Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
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

func TestAgainstRealSNMPd(t *testing.T) {
	a := startAgent(t, printer("00"))
	c := New(Config{Printers: []Printer{{Name: "a4", Address: a.address, Community: "kiosk"}}}, log.NewNopLogger())
	var got map[string]float64
	// snmpd takes a moment to bind its port.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got = gather(t, c); got["kiosk_peripheral_state{a4,a4_printer,ok}"] == 1 {
			break
		}
	}
	for k, v := range map[string]float64{
		"kiosk_peripheral_state{a4,a4_printer,ok}":           1,
		"kiosk_printer_state{a4,idle}":                       1,
		"kiosk_paper_jam{a4}":                                0,
		"kiosk_paper_level_ratio{a4,Tray 1}":                 0.24,
		"kiosk_paper_state{a4,Tray 1,ok}":                    1,
		"kiosk_paper_state{a4,tray2,ok}":                     1,
		"kiosk_toner_level_ratio{a4,Black Toner Cartridge,}": 0.07,
		"kiosk_printed_pages_total{a4}":                      48213,
	} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %g (present %v), want %g\nall: %v", k, g, ok, v, got)
		}
	}
	if _, ok := got["kiosk_toner_level_ratio{a4,Waste Toner Box,}"]; ok {
		t.Error("the waste toner box is reported as toner")
	}
	if _, ok := got["kiosk_paper_level_ratio{a4,tray2}"]; ok {
		t.Error("a tray at -3 (some paper) has no ratio")
	}

	// No paper and a jam: hrPrinterDetectedErrorState bits 1 and 5 (0x44).
	a.set(t, printer("44"))
	got = gather(t, c)
	if got["kiosk_paper_jam{a4}"] != 1 || got["kiosk_paper_state{a4,Tray 1,empty}"] != 1 ||
		got["kiosk_peripheral_state{a4,a4_printer,fault}"] != 1 || got["kiosk_printer_state_reason{a4,noPaper,error}"] != 1 {
		t.Fatalf("no paper and jammed: %v", got)
	}

	// Wrong community: snmpd does not answer at all.
	wrong := New(Config{Printers: []Printer{{Name: "a4", Address: a.address, Community: "nope"}},
		Timeout: yamlfile.Duration(300 * time.Millisecond), Retries: 0}, log.NewNopLogger())
	start := time.Now()
	got = gather(t, wrong)
	if got["kiosk_peripheral_state{a4,a4_printer,not_responding}"] != 1 {
		t.Fatalf("wrong community: %v", got)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("a silent printer held the gather for %s", d)
	}
}

func TestDecodeErrorState(t *testing.T) {
	f := func(b []byte, want ...string) {
		t.Helper()
		got := DecodeErrorState(b)
		if len(got) != len(want) {
			t.Fatalf("% x: %v, want %v", b, got, want)
		}
		for _, w := range want {
			if !got[w] {
				t.Fatalf("% x: %v, want %v", b, got, want)
			}
		}
	}
	f(nil)
	f([]byte{0x00})
	f([]byte{0x80}, "lowPaper")
	f([]byte{0x44}, "noPaper", "jammed")
	f([]byte{0x01, 0x04}, "serviceRequested", "inputTrayEmpty")
	f([]byte{0x00, 0x80, 0xff}, "inputTrayMissing")
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
	f(Config{Printers: []Printer{{Name: "a4", Address: "10.0.0.20"}, {Name: "b", Address: "10.0.0.21:1161"}}}, "")
	f(Config{}, "printers")
	f(Config{Printers: []Printer{{Name: "a4", Address: ""}}}, "printers.0.address")
	f(Config{Printers: []Printer{{Name: "a4", Address: "x:port"}}}, "printers.0.address")
	f(Config{Printers: []Printer{{Name: "a4", Address: "x", Kind: "fax"}}}, "printers.0.kind")
}
