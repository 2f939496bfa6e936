package ups

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/internal/peertest"
	"github.com/kioskmon/kioskmon/yamlfile"
)

// nut is a real Network UPS Tools: the dummy-ups driver reading a .dev file
// the test rewrites, and upsd serving it on loopback.
type nut struct {
	dir, address string
	upsd         *daemon
}

// nutDirs are where distributions keep the NUT daemons: Debian's /sbin/upsd
// is a wrapper that refuses to run unless /etc/nut/nut.conf enables it, the
// daemons themselves are in /lib/nut.
var nutDirs = []string{"/lib/nut", "/usr/lib/nut", "/usr/libexec/nut", "/usr/sbin", "/sbin"}

func startNUT(t *testing.T, dev string) *nut {
	t.Helper()
	if testing.Short() {
		t.Skip("starts NUT's upsd and dummy-ups")
	}
	driver := peertest.Tool(t, "dummy-ups", "nut-server", nutDirs...)
	upsd := filepath.Join(filepath.Dir(driver), "upsd")
	if _, err := os.Stat(upsd); err != nil {
		upsd = peertest.Tool(t, "upsd", "nut-server", nutDirs...)
	}
	// Not t.TempDir: the driver's socket lives here, and a Unix socket path
	// must stay under 108 bytes, which a long test name can exceed.
	dir, err := os.MkdirTemp("", "nut-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) // after the daemons stop: cleanups run last first
	n := &nut{dir: dir, address: fmt.Sprintf("127.0.0.1:%d", peertest.FreePort(t))}
	host, port, _ := strings.Cut(n.address, ":")
	files := map[string]string{
		"ups.conf":   fmt.Sprintf("[kiosk]\n\tdriver = dummy-ups\n\tport = %s\n\tdesc = \"kiosk UPS\"\n", filepath.Join(dir, "kiosk.dev")),
		"upsd.conf":  fmt.Sprintf("LISTEN %s %s\n", host, port),
		"upsd.users": "[kioskmon]\n\tpassword = \"s3cret word\"\n",
		"nut.conf":   "MODE=netserver\n",
		"kiosk.dev":  dev,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "NUT_CONFPATH="+dir, "NUT_STATEPATH="+dir, "NUT_ALTPIDPATH="+dir)
	// As root the daemons switch to user nut, who cannot read the test's
	// directory; -u root keeps them root. As anyone else they run as that user.
	var user []string
	if os.Getuid() == 0 {
		user = []string{"-u", "root"}
	}

	drv := startDaemon(t, env, append([]string{driver, "-a", "kiosk", foreground(t, driver)}, user...)...)
	socket := filepath.Join(dir, "dummy-ups-kiosk")
	drv.waitFor(t, "its socket "+socket, func() bool {
		_, err := os.Stat(socket)
		return err == nil
	})
	n.upsd = startDaemon(t, env, append([]string{upsd, foreground(t, upsd)}, user...)...)
	n.upsd.waitFor(t, "listening on "+n.address, func() bool {
		c, err := net.DialTimeout("tcp", n.address, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return n
}

// foreground returns the option that keeps a NUT daemon in the foreground
// without debug output: -F since NUT 2.8; before, only -D (debug output,
// and stays in the foreground) did.
func foreground(t *testing.T, path string) string {
	t.Helper()
	help, _ := exec.Command(path, "-h").CombinedOutput() // exits 0 or 1 by version
	switch {
	case strings.Contains(string(help), "\n  -F"):
		return "-F"
	case strings.Contains(string(help), "\n  -D"):
		return "-D"
	}
	t.Fatalf("%s -h lists neither -F (NUT 2.8) nor -D (NUT 2.7) to stay in the foreground; its help:\n%s", path, help)
	return ""
}

// daemon is a NUT daemon the test runs and kills at its end.
type daemon struct {
	name   string
	cmd    *exec.Cmd
	out    syncBuffer
	exited chan struct{}
}

func startDaemon(t *testing.T, env []string, args ...string) *daemon {
	t.Helper()
	d := &daemon{name: filepath.Base(args[0]), cmd: exec.Command(args[0], args[1:]...), exited: make(chan struct{})}
	d.cmd.Env = env
	d.cmd.Stdout, d.cmd.Stderr = &d.out, &d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", d.name, err)
	}
	go func() {
		d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("%s %s output:\n%s", d.name, strings.Join(args[1:], " "), d.out.String())
		}
	})
	return d
}

func (d *daemon) stop() {
	d.cmd.Process.Kill()
	<-d.exited
}

// waitFor polls ready until it holds, for at most 10s; the daemon exiting
// first fails the test with its output.
func (d *daemon) waitFor(t *testing.T, what string, ready func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ready() {
		select {
		case <-d.exited:
			t.Fatalf("%s exited before %s: %v\n%s", d.name, what, d.cmd.ProcessState, d.out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not %s within 10s\n%s", d.name, what, d.out.String())
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// setDev rewrites the driver's data file. dummy-ups re-reads it when its
// modification time changes, in whole seconds: the time is moved ahead so
// that a rewrite within the second of the last one is seen too.
func (n *nut) setDev(t *testing.T, dev string) {
	t.Helper()
	path := filepath.Join(n.dir, "kiosk.dev")
	if err := os.WriteFile(path, []byte(dev), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
}

// collect gathers once and returns the series as `name{ups}` → value.
func collect(t *testing.T, ctx context.Context, c *Collector) (map[string]float64, error) {
	t.Helper()
	s := &exporter.Snapshot{}
	err := c.Collect(ctx, s)
	got := map[string]float64{}
	s.Each(func(name string, labels []exporter.Label, v float64) {
		key := name + "{" + labels[0].Value + "}"
		if _, dup := got[key]; dup {
			t.Fatalf("%s reported twice", key)
		}
		got[key] = v
	})
	return got, err
}

// waitFor collects until ok accepts the values: the driver polls its file
// every 2s, and upsd reports WAIT or DRIVER-NOT-CONNECTED until its first read.
func waitFor(t *testing.T, c *Collector, what string, ok func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got map[string]float64
	var err error
	for time.Now().Before(deadline) {
		got, err = collect(t, context.Background(), c)
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
	c := New(Config{Address: n.address, Username: "kioskmon", Password: "s3cret word"}, log.NewNopLogger())
	got := waitFor(t, c, "UPS on line", func(m map[string]float64) bool { return m["kiosk_ups_up{kiosk}"] == 1 })
	want := map[string]float64{
		"kiosk_ups_up{kiosk}": 1, "kiosk_ups_on_battery{kiosk}": 0, "kiosk_ups_low_battery{kiosk}": 0,
		"kiosk_ups_replace_battery{kiosk}": 0, "kiosk_ups_battery_charge_ratio{kiosk}": 1,
		"kiosk_ups_battery_runtime_seconds{kiosk}": 1800, "kiosk_ups_load_ratio{kiosk}": 0.23,
		"kiosk_ups_input_voltage_volts{kiosk}": 230,
	}
	if len(got) != len(want) {
		t.Errorf("on line: %d series, want %d: %v", len(got), len(want), got)
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
	n.upsd.stop()
	got, err := collect(t, context.Background(), c)
	if err != nil || got["kiosk_ups_up{kiosk}"] != 0 || len(got) != 1 {
		t.Fatalf("upsd stopped: %v, err %v", got, err)
	}
}

func TestUnknownUPS(t *testing.T) {
	n := startNUT(t, "ups.status: OL\nbattery.charge: 90\n")
	c := New(Config{Address: n.address, UPS: []string{"kiosk", "nosuch"}}, log.NewNopLogger())
	got := waitFor(t, c, "UPS on line", func(m map[string]float64) bool { return m["kiosk_ups_up{kiosk}"] == 1 })
	if v, ok := got["kiosk_ups_up{nosuch}"]; !ok || v != 0 || len(got) != 6 {
		t.Fatalf("a UPS upsd does not know should be down, the other read: %v", got)
	}
}

func TestNoUPSdAndNothingKnown(t *testing.T) {
	c := New(Config{Address: fmt.Sprintf("127.0.0.1:%d", peertest.FreePort(t)), Timeout: yamlfile.Duration(time.Second)}, log.NewNopLogger())
	if _, err := collect(t, context.Background(), c); err == nil || !strings.Contains(err.Error(), "upsd at 127.0.0.1") {
		t.Fatalf("no upsd and no UPS configured: err %v, want one naming upsd", err)
	}
}

// fakeUPSd serves one scripted conversation per connection: answer maps a
// request line to the lines sent back; a request it has no answer for
// closes the connection.
func fakeUPSd(t *testing.T, answer map[string]string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				r := bufio.NewReader(c)
				for {
					req, err := r.ReadString('\n')
					if err != nil {
						return
					}
					resp, ok := answer[strings.TrimSuffix(req, "\n")]
					if !ok {
						return
					}
					if _, err := c.Write([]byte(resp)); err != nil {
						return
					}
				}
			})
		}
	})
	return ln.Addr().String()
}

func TestProtocol(t *testing.T) {
	f := func(cfg Config, answer map[string]string, want map[string]float64) {
		t.Helper()
		cfg.Address = fakeUPSd(t, answer)
		got, err := collect(t, context.Background(), New(cfg, log.NewNopLogger()))
		if err != nil {
			t.Fatalf("%v: %v", answer, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%v:\ngot  %v\nwant %v", answer, got, want)
		}
	}
	list := "BEGIN LIST UPS\nUPS a \"first\"\nUPS b \"second \\\"B\\\"\"\nEND LIST UPS\n"
	// Every UPS upsd lists; one whose driver is away is down.
	f(Config{}, map[string]string{
		"LIST UPS":   list,
		"LIST VAR a": "BEGIN LIST VAR a\nVAR a ups.status \"OL RB\"\nVAR a ups.load \"12.5\"\nEND LIST VAR a\n",
		"LIST VAR b": "ERR DRIVER-NOT-CONNECTED\n",
		"LOGOUT":     "OK Goodbye\n",
	}, map[string]float64{
		"kiosk_ups_up{a}": 1, "kiosk_ups_on_battery{a}": 0, "kiosk_ups_low_battery{a}": 0,
		"kiosk_ups_replace_battery{a}": 1, "kiosk_ups_load_ratio{a}": 0.125,
		"kiosk_ups_up{b}": 0,
	})
	// upsd drops the connection after the first UPS: the first is
	// reported once, the rest down.
	f(Config{}, map[string]string{
		"LIST UPS":   list,
		"LIST VAR a": "BEGIN LIST VAR a\nVAR a ups.status \"OB\"\nEND LIST VAR a\n",
	}, map[string]float64{
		"kiosk_ups_up{a}": 1, "kiosk_ups_on_battery{a}": 1, "kiosk_ups_low_battery{a}": 0,
		"kiosk_ups_replace_battery{a}": 0,
		"kiosk_ups_up{b}":              0,
	})
	// The login is quoted; a refused one leaves the configured UPS down.
	f(Config{Username: "kiosk mon", Password: `p"w`, UPS: []string{"a"}}, map[string]string{
		`USERNAME "kiosk mon"`: "OK\n",
		`PASSWORD "p\"w"`:      "ERR INVALID-PASSWORD\n",
	}, map[string]float64{"kiosk_ups_up{a}": 0})
	// Not the protocol: the UPS is down, not garbage.
	f(Config{UPS: []string{"a"}}, map[string]string{
		"LIST VAR a": "BEGIN LIST VAR a\nVAR a ups.status \"OL\n",
	}, map[string]float64{"kiosk_ups_up{a}": 0})
	f(Config{UPS: []string{"a"}}, map[string]string{
		"LIST VAR a": "HELLO\n",
	}, map[string]float64{"kiosk_ups_up{a}": 0})
	f(Config{UPS: []string{"a"}}, map[string]string{
		"LIST VAR a": "BEGIN LIST VAR a\n" + strings.Repeat("x", 2*maxLine) + "\n",
	}, map[string]float64{"kiosk_ups_up{a}": 0})
}

// A upsd that accepts and never answers holds the gather no longer than the
// timeout, or the gather's context.
func TestSilentUPSd(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f := func(timeout, ctxTimeout time.Duration) {
		t.Helper()
		c := New(Config{Address: ln.Addr().String(), UPS: []string{"a"}, Timeout: yamlfile.Duration(timeout)}, log.NewNopLogger())
		ctx, cancel := context.WithTimeout(context.Background(), ctxTimeout)
		defer cancel()
		start := time.Now()
		got, err := collect(t, ctx, c)
		if took := time.Since(start); took > 2*min(timeout, ctxTimeout)+time.Second {
			t.Fatalf("timeout %v, context %v: the gather took %v", timeout, ctxTimeout, took)
		}
		if err != nil || fmt.Sprint(got) != "map[kiosk_ups_up{a}:0]" {
			t.Fatalf("silent upsd: %v, err %v", got, err)
		}
	}
	f(300*time.Millisecond, time.Minute)
	f(time.Minute, 300*time.Millisecond)

	// Cancelled, not timed out: the agent stopping.
	c := New(Config{Address: ln.Addr().String(), UPS: []string{"a"}, Timeout: yamlfile.Duration(time.Minute)}, log.NewNopLogger())
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	if _, err := collect(t, ctx, c); err != nil || time.Since(start) > 5*time.Second {
		t.Fatalf("cancelled gather: err %v after %v", err, time.Since(start))
	}
}

func TestReport(t *testing.T) {
	f := func(vars map[string]string, want map[string]float64) {
		t.Helper()
		s := &exporter.Snapshot{}
		report(s, "u", vars)
		got := map[string]float64{}
		s.Each(func(name string, _ []exporter.Label, v float64) { got[name] = v })
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%v:\ngot  %v\nwant %v", vars, got, want)
		}
	}
	flags := func(ob, lb, rb float64, more ...any) map[string]float64 {
		m := map[string]float64{"kiosk_ups_up": 1, "kiosk_ups_on_battery": ob, "kiosk_ups_low_battery": lb, "kiosk_ups_replace_battery": rb}
		for i := 0; i+1 < len(more); i += 2 {
			m[more[i].(string)] = more[i+1].(float64)
		}
		return m
	}
	down := map[string]float64{"kiosk_ups_up": 0}

	f(map[string]string{"ups.status": "WAIT"}, down)
	f(map[string]string{"ups.status": "WAIT", "battery.charge": "100"}, down)
	f(map[string]string{}, down)
	f(map[string]string{"ups.status": " "}, down)
	f(map[string]string{"ups.status": "OL"}, flags(0, 0, 0))
	f(map[string]string{"ups.status": "OL CHRG RB"}, flags(0, 0, 1))
	f(map[string]string{"ups.status": "OB DISCHRG"}, flags(1, 0, 0))
	f(map[string]string{"ups.status": "OB LB"}, flags(1, 1, 0))
	f(map[string]string{"ups.status": "OL", "battery.charge": "100", "ups.load": "23", "battery.runtime": "1800", "input.voltage": "229.8"},
		flags(0, 0, 0, "kiosk_ups_battery_charge_ratio", 1.0, "kiosk_ups_load_ratio", 0.23,
			"kiosk_ups_battery_runtime_seconds", 1800.0, "kiosk_ups_input_voltage_volts", 229.8))
	f(map[string]string{"ups.status": "OB", "battery.charge": "8"}, flags(1, 0, 0, "kiosk_ups_battery_charge_ratio", 0.08))
	// Values that are not numbers are left out.
	f(map[string]string{"ups.status": "OL", "battery.charge": "n/a", "ups.load": "NaN", "battery.runtime": ""}, flags(0, 0, 0))
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
	f(`VAR k x "C:\\ups"`, "VAR", "k", "x", `C:\ups`)
	f(`UPS kiosk ""`, "UPS", "kiosk", "")
	f("UPS  kiosk\t\"a\"", "UPS", "kiosk", "a")
	f("")
	for _, bad := range []string{`VAR k x "open`, `VAR k x "ends in \"`} {
		if _, err := splitQuoted(bad); err == nil {
			t.Fatalf("%q: an unterminated quote was accepted", bad)
		}
	}
}

// FuzzSplitQuoted checks that what quote writes, splitQuoted reads back,
// and that no line makes splitQuoted panic.
func FuzzSplitQuoted(f *testing.F) {
	f.Add("kiosk", `VAR kiosk ups.status "OB LB"`)
	f.Add(`Smart "UPS" \ 1500`, `UPS kiosk "a \"b\" \\"`)
	f.Add("", `"unterminated`)
	f.Fuzz(func(t *testing.T, word, line string) {
		splitQuoted(line)
		if strings.ContainsAny(word, "\r\n") {
			return
		}
		got, err := splitQuoted("PASSWORD " + quote(word))
		if err != nil || len(got) != 2 || got[1] != word {
			t.Fatalf("quote(%q) read back as %q, %v", word, got, err)
		}
	})
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
			t.Fatalf("%+v: error %v, want a *yamlfile.FieldError about %s", c, err, field)
		}
	}
	f(Config{}, "")
	f(Config{Address: "ups.local:3493", UPS: []string{"kiosk", "kiosk2"}, Timeout: yamlfile.Duration(time.Second)}, "")
	f(Config{Address: "[::1]:3493", Username: "kioskmon", Password: "two words"}, "")
	f(Config{Address: "ups.local"}, "address")
	f(Config{Address: "ups.local:"}, "address")
	f(Config{Username: "u"}, "password")
	f(Config{Password: "p"}, "username")
	f(Config{Username: "u\nLIST UPS", Password: "p"}, "username")
	f(Config{Username: "u", Password: "p\r"}, "password")
	f(Config{UPS: []string{"ok", "two words"}}, "ups.1")
	f(Config{UPS: []string{""}}, "ups.0")
	f(Config{UPS: []string{`q"uote`}}, "ups.0")
	f(Config{UPS: []string{"a\nLIST UPS"}}, "ups.0")
	f(Config{UPS: []string{"a", "b", "a"}}, "ups.2")
	f(Config{Timeout: yamlfile.Duration(-time.Second)}, "timeout")
}
