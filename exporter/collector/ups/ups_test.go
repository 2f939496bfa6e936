package ups

import (
	"context"
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

// nut is a real Network UPS Tools: the dummy-ups driver reading a .dev
// file the test rewrites, and upsd serving it on loopback.
type nut struct {
	dir, address string
	upsd         *exec.Cmd
}

var nutDirs = []string{"/lib/nut", "/usr/lib/nut", "/usr/libexec/nut", "/usr/sbin"}

func startNUT(t *testing.T, dev string) *nut {
	t.Helper()
	// Debian's /sbin/upsd is a wrapper that refuses to run unless
	// /etc/nut/nut.conf enables it; the daemons themselves live in /lib/nut.
	driver := peertest.Tool(t, "dummy-ups", "nut-server", nutDirs...)
	upsd := filepath.Join(filepath.Dir(driver), "upsd")
	if _, err := os.Stat(upsd); err != nil {
		upsd = peertest.Tool(t, "upsd", "nut-server", nutDirs...)
	}
	n := &nut{dir: t.TempDir(), address: fmt.Sprintf("127.0.0.1:%d", peertest.FreePort(t))}
	host, port, _ := strings.Cut(n.address, ":")
	files := map[string]string{
		"ups.conf":   fmt.Sprintf("[kiosk]\n\tdriver = dummy-ups\n\tport = %s\n\tdesc = \"kiosk UPS\"\n", filepath.Join(n.dir, "kiosk.dev")),
		"upsd.conf":  fmt.Sprintf("LISTEN %s %s\n", host, port),
		"upsd.users": "[kioskmon]\n\tpassword = s3cret\n\tupsmon secondary\n",
		"nut.conf":   "MODE=netserver\n",
		"kiosk.dev":  dev,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(n.dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "NUT_CONFPATH="+n.dir, "NUT_STATEPATH="+n.dir, "NUT_ALTPIDPATH="+n.dir)
	start := func(args ...string) *exec.Cmd {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = env
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", args[0], err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				t.Logf("%s output:\n%s", filepath.Base(args[0]), out)
			}
		})
		return cmd
	}
	// -u root: the daemons drop to user nut otherwise, who cannot read the
	// test's temporary directory. As another user they run as that user.
	user := []string{}
	if os.Getuid() == 0 {
		user = []string{"-u", "root"}
	}
	start(append([]string{driver, "-a", "kiosk", "-F"}, user...)...)
	// upsd connects to the driver's socket, which takes the driver a moment.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(n.dir, "dummy-ups-kiosk")); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.upsd = start(append([]string{upsd, "-F"}, user...)...)
	return n
}

// setDev rewrites the driver's data file; dummy-ups re-reads it when its
// modification time changes.
func (n *nut) setDev(t *testing.T, dev string) {
	t.Helper()
	path := filepath.Join(n.dir, "kiosk.dev")
	if err := os.WriteFile(path, []byte(dev), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(2 * time.Second)
	os.Chtimes(path, future, future)
}

func collect(t *testing.T, c *Collector) (map[string]float64, error) {
	t.Helper()
	s := &exporter.Snapshot{}
	err := c.Collect(context.Background(), s)
	got := map[string]float64{}
	s.Each(func(name string, labels []exporter.Label, v float64) {
		got[name+"{"+labels[0].Value+"}"] = v
	})
	return got, err
}

// waitFor collects until ok accepts the values (the driver polls every 2s).
func waitFor(t *testing.T, c *Collector, what string, ok func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got map[string]float64
	var err error
	for time.Now().Before(deadline) {
		got, err = collect(t, c)
		if err == nil && ok(got) {
			return got
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not seen within 20s; last: %v, err %v", what, got, err)
	return nil
}

func TestAgainstRealUPSd(t *testing.T) {
	n := startNUT(t, "ups.status: OL\nbattery.charge: 100\nbattery.runtime: 1800\nups.load: 23\ninput.voltage: 230\n")
	c := New(Config{Address: n.address, Username: "kioskmon", Password: "s3cret"}, log.NewNopLogger())
	got := waitFor(t, c, "UPS on line", func(m map[string]float64) bool { return m["kiosk_ups_up{kiosk}"] == 1 })
	want := map[string]float64{
		"kiosk_ups_up{kiosk}": 1, "kiosk_ups_on_battery{kiosk}": 0, "kiosk_ups_low_battery{kiosk}": 0,
		"kiosk_ups_replace_battery{kiosk}": 0, "kiosk_ups_battery_charge_ratio{kiosk}": 1,
		"kiosk_ups_battery_runtime_seconds{kiosk}": 1800, "kiosk_ups_load_ratio{kiosk}": 0.23,
		"kiosk_ups_input_voltage_volts{kiosk}": 230,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %g, want %g (all: %v)", k, got[k], v, got)
		}
	}

	// Mains lost, then the battery runs low.
	n.setDev(t, "ups.status: OB LB\nbattery.charge: 8\nbattery.runtime: 120\nups.load: 23\ninput.voltage: 0\n")
	got = waitFor(t, c, "UPS on battery and low", func(m map[string]float64) bool { return m["kiosk_ups_on_battery{kiosk}"] == 1 })
	if got["kiosk_ups_low_battery{kiosk}"] != 1 || got["kiosk_ups_battery_runtime_seconds{kiosk}"] != 120 ||
		got["kiosk_ups_battery_charge_ratio{kiosk}"] != 0.08 || got["kiosk_ups_input_voltage_volts{kiosk}"] != 0 {
		t.Fatalf("on battery: %v", got)
	}

	// upsd gone: the UPS it listed is reported down, without an error.
	n.upsd.Process.Kill()
	n.upsd.Wait()
	got, err := collect(t, c)
	if err != nil || got["kiosk_ups_up{kiosk}"] != 0 || len(got) != 1 {
		t.Fatalf("upsd stopped: %v, err %v", got, err)
	}
}

// upsd checks a password only for commands that change the UPS, so a
// read-only collector cannot tell a wrong one: not tested here.
func TestUnknownUPS(t *testing.T) {
	n := startNUT(t, "ups.status: OL\nbattery.charge: 90\n")
	c := New(Config{Address: n.address, UPS: []string{"kiosk", "nosuch"}}, log.NewNopLogger())
	got := waitFor(t, c, "UPS on line", func(m map[string]float64) bool { return m["kiosk_ups_up{kiosk}"] == 1 })
	if v, ok := got["kiosk_ups_up{nosuch}"]; !ok || v != 0 {
		t.Fatalf("a UPS upsd does not know should be down: %v", got)
	}
}

func TestNoUPSdAndNothingKnown(t *testing.T) {
	c := New(Config{Address: fmt.Sprintf("127.0.0.1:%d", peertest.FreePort(t)), Timeout: yamlfile.Duration(time.Second)}, log.NewNopLogger())
	if _, err := collect(t, c); err == nil || !strings.Contains(err.Error(), "upsd at 127.0.0.1") {
		t.Fatalf("no upsd and no UPS configured: err %v, want one naming upsd", err)
	}
}

func TestReport(t *testing.T) {
	f := func(vars map[string]string, want map[string]float64) {
		t.Helper()
		s := &exporter.Snapshot{}
		report(s, "u", vars)
		got := map[string]float64{}
		s.Each(func(name string, _ []exporter.Label, v float64) { got[name] = v })
		if len(got) != len(want) {
			t.Fatalf("%v: got %v, want %v", vars, got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("%v: %s = %g, want %g", vars, k, got[k], v)
			}
		}
	}
	f(map[string]string{"ups.status": "WAIT"}, map[string]float64{"kiosk_ups_up": 0})
	f(map[string]string{}, map[string]float64{"kiosk_ups_up": 0})
	f(map[string]string{"ups.status": "OL RB", "battery.charge": "n/a"}, map[string]float64{
		"kiosk_ups_up": 1, "kiosk_ups_on_battery": 0, "kiosk_ups_low_battery": 0, "kiosk_ups_replace_battery": 1})
	f(map[string]string{"ups.status": "OB DISCHRG", "battery.runtime": "300"}, map[string]float64{
		"kiosk_ups_up": 1, "kiosk_ups_on_battery": 1, "kiosk_ups_low_battery": 0, "kiosk_ups_replace_battery": 0,
		"kiosk_ups_battery_runtime_seconds": 300})
}

func TestSplitQuoted(t *testing.T) {
	f := func(line string, want ...string) {
		t.Helper()
		got, err := splitQuoted(line)
		if err != nil || strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("%q: %q, %v; want %q", line, got, err, want)
		}
	}
	f(`VAR kiosk ups.status "OB LB"`, "VAR", "kiosk", "ups.status", "OB LB")
	f(`VAR k device.model "Smart \"UPS\" 1500"`, "VAR", "k", "device.model", `Smart "UPS" 1500`)
	f(`UPS kiosk ""`, "UPS", "kiosk", "")
	if _, err := splitQuoted(`VAR k x "open`); err == nil {
		t.Fatal("an unterminated quote was accepted")
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
	f(Config{}, "")
	f(Config{Address: "ups.local:3493", UPS: []string{"kiosk"}}, "")
	f(Config{Address: "ups.local"}, "address")
	f(Config{Username: "u"}, "password")
	f(Config{UPS: []string{"ok", "two words"}}, "ups.1")
}
