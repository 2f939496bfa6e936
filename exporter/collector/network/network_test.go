package network

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
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

// The loss test runs the pinger inside a network namespace by running this
// test binary again there (ip netns exec), in helper mode: one probe round,
// its result as JSON on stdout. Re-executing keeps the namespace switch out
// of the test process's threads.
const helperEnv = "KIOSKMON_PING_HELPER"

type helperResult struct {
	Sent, Received int
	MedianSeconds  float64
	Err            string
	Metrics        map[string]float64
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		os.Exit(runHelper(spec))
	}
	os.Exit(m.Run())
}

func runHelper(spec string) int {
	var cfg Config
	if err := json.Unmarshal([]byte(spec), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	c := New(cfg, log.NewNopLogger())
	out := helperResult{Metrics: map[string]float64{}}
	if len(cfg.Ping.Targets) > 0 {
		r := c.ProbeRound(context.Background())[cfg.Ping.Targets[0]]
		out.Sent, out.Received, out.MedianSeconds = r.Sent, r.Received, r.Median.Seconds()
		if r.Err != nil {
			out.Err = r.Err.Error()
		}
	}
	s := &exporter.Snapshot{}
	if err := c.Collect(context.Background(), s); err != nil {
		out.Err = err.Error()
	}
	out.Metrics = flatten(s)
	json.NewEncoder(os.Stdout).Encode(out)
	return 0
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

// netnsPair is two network namespaces joined by a veth pair: the kiosk
// side (10.213.N.1) and the far side (10.213.N.2).
type netnsPair struct {
	kiosk, far string
	ip         string
	farIP      string
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newNetnsPair(t *testing.T) *netnsPair {
	t.Helper()
	ipTool := peertest.Tool(t, "ip", "iproute2", "/usr/sbin", "/sbin")
	peertest.Tool(t, "nft", "nftables", "/usr/sbin", "/sbin")
	suffix := fmt.Sprintf("%d", rand.IntN(1e6))
	p := &netnsPair{kiosk: "kmk" + suffix, far: "kmf" + suffix}
	if out, err := exec.Command(ipTool, "netns", "add", p.kiosk).CombinedOutput(); err != nil {
		peertest.Missing(t, fmt.Sprintf("cannot create a network namespace (root needed): %v: %s", err, out))
	}
	t.Cleanup(func() { exec.Command(ipTool, "netns", "del", p.kiosk).Run() })
	run(t, ipTool, "netns", "add", p.far)
	t.Cleanup(func() { exec.Command(ipTool, "netns", "del", p.far).Run() })
	subnet := rand.IntN(250) + 1
	p.ip, p.farIP = fmt.Sprintf("10.213.%d.1", subnet), fmt.Sprintf("10.213.%d.2", subnet)
	run(t, ipTool, "link", "add", "kveth", "netns", p.kiosk, "type", "veth", "peer", "name", "fveth", "netns", p.far)
	run(t, ipTool, "-n", p.kiosk, "addr", "add", p.ip+"/30", "dev", "kveth")
	run(t, ipTool, "-n", p.far, "addr", "add", p.farIP+"/30", "dev", "fveth")
	for _, ns := range [][2]string{{p.kiosk, "kveth"}, {p.far, "fveth"}} {
		run(t, ipTool, "-n", ns[0], "link", "set", "lo", "up")
		run(t, ipTool, "-n", ns[0], "link", "set", ns[1], "up")
	}
	return p
}

// dropEchoRequests makes the far side drop percent% of the echo requests
// it receives. This kernel has no netem; dropping on the receiving side is
// what the pinger sees as loss (a drop on the sending side is a send error).
func (p *netnsPair) dropEchoRequests(t *testing.T, percent int) {
	t.Helper()
	run(t, "ip", "netns", "exec", p.far, "nft", "add", "table", "inet", "kmtest")
	run(t, "ip", "netns", "exec", p.far, "nft", "add", "chain", "inet", "kmtest", "in", "{ type filter hook input priority 0; }")
	run(t, "ip", "netns", "exec", p.far, "nft", "add", "rule", "inet", "kmtest", "in", "icmp", "type", "echo-request",
		"numgen", "random", "mod", "100", "<", fmt.Sprint(percent), "drop")
}

// inKiosk runs one collector round inside the kiosk namespace.
func (p *netnsPair) inKiosk(t *testing.T, cfg Config) helperResult {
	t.Helper()
	spec, _ := json.Marshal(cfg)
	exe, _ := os.Executable()
	cmd := exec.Command("ip", "netns", "exec", p.kiosk, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(spec))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pinger in namespace %s: %v\n%s", p.kiosk, err, out)
	}
	var r helperResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("pinger output %q: %v", out, err)
	}
	return r
}

func TestPacketLossThroughNetworkNamespaces(t *testing.T) {
	p := newNetnsPair(t)
	const n = 500
	cfg := Config{Ping: Ping{Targets: []string{p.farIP}, Count: n, Interval: yamlfile.Duration(2 * time.Millisecond),
		Timeout: yamlfile.Duration(time.Second)}, Interfaces: []string{"kveth"}}

	clean := p.inKiosk(t, cfg)
	if clean.Err != "" || clean.Sent != n || clean.Received != n || clean.MedianSeconds <= 0 {
		t.Fatalf("without a drop rule: %+v", clean)
	}
	if clean.Metrics[`kiosk_network_packet_loss_ratio{`+p.farIP+`}`] != 0 || clean.Metrics["kiosk_network_link_up{kveth}"] != 1 ||
		clean.Metrics["kiosk_network_address_info{kveth,"+p.ip+"}"] != 1 {
		t.Fatalf("without a drop rule, metrics: %v", clean.Metrics)
	}

	p.dropEchoRequests(t, 20)
	lossy := p.inKiosk(t, cfg)
	loss := lossy.Metrics[`kiosk_network_packet_loss_ratio{`+p.farIP+`}`]
	t.Logf("measured loss %.3f over %d requests with a 20%% drop rule", loss, lossy.Sent)
	// Binomial spread for n=500, p=0.2: sd 0.018; ±0.07 is nearly 4 sd.
	if lossy.Sent != n || loss < 0.13 || loss > 0.27 {
		t.Fatalf("20%% drop measured as %.3f (%+v)", loss, lossy)
	}
	if got := lossy.Metrics[`kiosk_network_probe_received_total{`+p.farIP+`}`]; got != float64(lossy.Received) {
		t.Fatalf("received counter %g, round received %d", got, lossy.Received)
	}

	// The link goes down: no carrier, every request lost.
	run(t, "ip", "-n", p.far, "link", "set", "fveth", "down")
	down := p.inKiosk(t, Config{Ping: Ping{Targets: []string{p.farIP}, Count: 5, Interval: yamlfile.Duration(10 * time.Millisecond),
		Timeout: yamlfile.Duration(200 * time.Millisecond)}, Interfaces: []string{"kveth"}})
	if down.Metrics["kiosk_network_link_up{kveth}"] != 0 || down.Metrics[`kiosk_network_packet_loss_ratio{`+p.farIP+`}`] != 1 {
		t.Fatalf("link down: %v", down.Metrics)
	}
}

func TestLinkStateFromSysfs(t *testing.T) {
	root := t.TempDir()
	write := func(iface, operstate, carrier string) {
		dir := filepath.Join(root, "class", "net", iface)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "operstate"), []byte(operstate+"\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "carrier"), []byte(carrier+"\n"), 0o644)
	}
	write("lo", "unknown", "1")
	write("eth0", "up", "1")
	write("eth1", "down", "0")
	write("wg0", "unknown", "1")
	write("tun0", "unknown", "0")
	c := New(Config{SysRoot: root}, log.NewNopLogger())
	c.addresses = func(string) ([]net.Addr, error) { return nil, nil }
	s := &exporter.Snapshot{}
	if err := c.Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	got := flatten(s)
	want := map[string]float64{"kiosk_network_link_up{eth0}": 1, "kiosk_network_link_up{eth1}": 0,
		"kiosk_network_link_up{wg0}": 1, "kiosk_network_link_up{tun0}": 0}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %g (present %v), want %g", k, g, ok, v)
		}
	}
	if _, ok := got["kiosk_network_link_up{lo}"]; ok {
		t.Error("loopback reported")
	}
}

func TestAddressChanges(t *testing.T) {
	addr := "10.20.1.15/24"
	c := New(Config{Interfaces: []string{"eth0"}, SysRoot: t.TempDir()}, log.NewNopLogger())
	c.addresses = func(string) ([]net.Addr, error) {
		if addr == "" {
			_, ll, _ := net.ParseCIDR("169.254.3.4/16") // DHCP failed: link-local only
			return []net.Addr{ll}, nil
		}
		ip, ipn, _ := net.ParseCIDR(addr)
		ipn.IP = ip
		return []net.Addr{ipn}, nil
	}
	gather := func() map[string]float64 {
		s := &exporter.Snapshot{}
		c.Collect(context.Background(), s)
		return flatten(s)
	}
	f := func(set string, wantChanges float64, wantOK float64) map[string]float64 {
		t.Helper()
		addr = set
		got := gather()
		if got["kiosk_network_address_changes_total{eth0}"] != wantChanges || got["kiosk_network_address_ok{eth0}"] != wantOK {
			t.Fatalf("address %q: %v", set, got)
		}
		return got
	}
	f("10.20.1.15/24", 0, 1)
	f("10.20.1.15/24", 0, 1)
	got := f("10.20.1.99/24", 1, 1)
	if got["kiosk_network_address_info{eth0,10.20.1.99}"] != 1 {
		t.Fatalf("new address not reported: %v", got)
	}
	f("", 2, 0)
	f("10.20.1.99/24", 3, 1)
}

func TestDNS(t *testing.T) {
	c := New(Config{Interfaces: []string{"none"}, SysRoot: t.TempDir(), DNS: DNS{Names: []string{"localhost", "no-such-host.invalid"},
		Timeout: yamlfile.Duration(3 * time.Second)}}, log.NewNopLogger())
	c.addresses = func(string) ([]net.Addr, error) { return nil, nil }
	s := &exporter.Snapshot{}
	c.Collect(context.Background(), s)
	got := flatten(s)
	if got["kiosk_dns_lookup_success{localhost}"] != 1 || got["kiosk_dns_lookup_success{no-such-host.invalid}"] != 0 {
		t.Fatalf("lookups: %v", got)
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
	f(Config{Ping: Ping{Targets: []string{"10.0.0.1", "gw.example", "fe80::1"}}}, "")
	f(Config{Ping: Ping{Targets: []string{"ok", "http://x"}}}, "ping.targets.1")
	f(Config{Ping: Ping{Count: 5000}}, "ping.count")
	f(Config{DNS: DNS{Server: "10.0.0.53"}}, "dns.server")
	f(Config{DNS: DNS{Names: []string{""}}}, "dns.names.0")
}
