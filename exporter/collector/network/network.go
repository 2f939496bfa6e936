// Package network reports the kiosk's network: ICMP packet loss and RTT to
// configured targets, link state and IP address of its interfaces, and DNS
// resolution.
package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	probing "github.com/prometheus-community/pro-bing"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/yamlfile"
)

// Config configures the collector.
type Config struct {
	Ping Ping `yaml:"ping"`
	// Interfaces whose link and address are reported; empty: every
	// interface but loopback.
	Interfaces []string `yaml:"interfaces"`
	DNS        DNS      `yaml:"dns"`
	// SysRoot is where /sys is mounted (tests point it at a fixture).
	SysRoot string `yaml:"-"`
}

// Ping configures the ICMP echo rounds.
type Ping struct {
	// Targets are host names or addresses: the gateway, the platform.
	Targets []string `yaml:"targets"`
	// Count of echo requests per round. Default 10.
	Count int `yaml:"count"`
	// Interval between requests. Default 1s.
	Interval yamlfile.Duration `yaml:"interval"`
	// Timeout waits for the last reply. Default 2s.
	Timeout yamlfile.Duration `yaml:"timeout"`
	// Every is the time from one round's start to the next's. Default 15s
	// (the gather interval); a round longer than that starts the next at once.
	Every yamlfile.Duration `yaml:"every"`
	// Privileged uses raw ICMP sockets (root, or CAP_NET_RAW). By default the
	// unprivileged ICMP datagram sockets are tried first (Linux with
	// net.ipv4.ping_group_range covering the user; Windows), then raw ones.
	Privileged bool `yaml:"privileged"`
}

// DNS configures the lookups.
type DNS struct {
	Names []string `yaml:"names"`
	// Server host:port to ask instead of the system's resolver.
	Server  string            `yaml:"server"`
	Timeout yamlfile.Duration `yaml:"timeout"`
}

func (c *Config) defaults() {
	if c.Ping.Count <= 0 {
		c.Ping.Count = 10
	}
	if c.Ping.Interval <= 0 {
		c.Ping.Interval = yamlfile.Duration(time.Second)
	}
	if c.Ping.Timeout <= 0 {
		c.Ping.Timeout = yamlfile.Duration(2 * time.Second)
	}
	if c.Ping.Every <= 0 {
		c.Ping.Every = yamlfile.Duration(15 * time.Second)
	}
	if c.DNS.Timeout <= 0 {
		c.DNS.Timeout = yamlfile.Duration(5 * time.Second)
	}
	if c.SysRoot == "" {
		c.SysRoot = "/sys"
	}
}

// Validate checks the configuration; errors are *yamlfile.FieldError.
func (c *Config) Validate() error {
	for i, t := range c.Ping.Targets {
		if t == "" || strings.ContainsAny(t, " /:") && net.ParseIP(t) == nil {
			return yamlfile.Fieldf(fmt.Sprintf("ping.targets.%d", i), "%q is not a host name or IP address", t)
		}
	}
	if c.Ping.Count < 0 || c.Ping.Count > 1000 {
		return yamlfile.Fieldf("ping.count", "%d is not between 1 and 1000", c.Ping.Count)
	}
	if c.Ping.Interval != 0 && time.Duration(c.Ping.Interval) < time.Millisecond {
		return yamlfile.Fieldf("ping.interval", "%s is below 1ms", c.Ping.Interval)
	}
	if c.DNS.Server != "" {
		if _, _, err := net.SplitHostPort(c.DNS.Server); err != nil {
			return yamlfile.Fieldf("dns.server", "%q is not host:port, e.g. 10.0.0.53:53", c.DNS.Server)
		}
	}
	for i, n := range c.DNS.Names {
		if n == "" || strings.ContainsAny(n, " /") {
			return yamlfile.Fieldf(fmt.Sprintf("dns.names.%d", i), "%q is not a host name", n)
		}
	}
	return nil
}

// Round is one ICMP probe round's result for a target.
type Round struct {
	Sent, Received int
	Median, Max    time.Duration
	Err            error
}

// Collector reports the network.
type Collector struct {
	cfg       Config
	logger    log.Logger
	addresses func(iface string) ([]net.Addr, error)
	resolver  *net.Resolver

	mu       sync.Mutex
	rounds   map[string]Round
	sent     map[string]float64
	received map[string]float64
	lastAddr map[string]string
	changes  map[string]float64
	raw      bool // unprivileged ICMP was refused; use raw sockets
}

// New returns a network collector.
func New(cfg Config, logger log.Logger) *Collector {
	cfg.defaults()
	c := &Collector{cfg: cfg, logger: logger, rounds: map[string]Round{}, sent: map[string]float64{},
		received: map[string]float64{}, lastAddr: map[string]string{}, changes: map[string]float64{},
		raw: cfg.Ping.Privileged, resolver: net.DefaultResolver}
	c.addresses = func(iface string) ([]net.Addr, error) {
		ifc, err := net.InterfaceByName(iface)
		if err != nil {
			return nil, err
		}
		return ifc.Addrs()
	}
	if cfg.DNS.Server != "" {
		c.resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, cfg.DNS.Server)
		}}
	}
	return c
}

// Name implements exporter.Collector.
func (c *Collector) Name() string { return "network" }

// Run implements exporter.Runner: a probe round every Ping.Every, so a
// gather reports the last complete round without waiting for one.
func (c *Collector) Run(ctx context.Context) error {
	if len(c.cfg.Ping.Targets) == 0 {
		return nil
	}
	for ctx.Err() == nil {
		started := time.Now()
		c.ProbeRound(ctx)
		if wait := time.Duration(c.cfg.Ping.Every) - time.Since(started); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
	}
	return nil
}

// ProbeRound pings every target once (Count requests each, in parallel) and
// records the results for the next gathers.
func (c *Collector) ProbeRound(ctx context.Context) map[string]Round {
	results := make(map[string]Round, len(c.cfg.Ping.Targets))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, target := range c.cfg.Ping.Targets {
		wg.Go(func() {
			r := c.ping(ctx, target)
			mu.Lock()
			results[target] = r
			mu.Unlock()
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return results // a round cut short is not a measurement
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for target, r := range results {
		if r.Err != nil {
			level.Debug(c.logger).Log("msg", "ping round failed", "target", target, "err", r.Err)
		}
		c.rounds[target] = r
		c.sent[target] += float64(r.Sent)
		c.received[target] += float64(r.Received)
	}
	return results
}

func (c *Collector) ping(ctx context.Context, target string) Round {
	c.mu.Lock()
	raw := c.raw
	c.mu.Unlock()
	stats, err := c.pingOnce(ctx, target, raw)
	if err != nil && !raw && (errors.Is(err, os.ErrPermission) || strings.Contains(err.Error(), "permission denied") ||
		strings.Contains(err.Error(), "operation not permitted")) {
		c.mu.Lock()
		c.raw = true
		c.mu.Unlock()
		level.Info(c.logger).Log("msg", "unprivileged ICMP is not allowed here; using raw sockets", "err", err)
		stats, err = c.pingOnce(ctx, target, true)
	}
	if err != nil {
		// No reply could come: every request of the round is lost.
		return Round{Sent: c.cfg.Ping.Count, Err: err}
	}
	r := Round{Sent: stats.PacketsSent, Received: stats.PacketsRecv}
	if len(stats.Rtts) > 0 {
		rtts := slices.Clone(stats.Rtts)
		slices.Sort(rtts)
		r.Median, r.Max = rtts[len(rtts)/2], rtts[len(rtts)-1]
	}
	return r
}

func (c *Collector) pingOnce(ctx context.Context, target string, raw bool) (*probing.Statistics, error) {
	p, err := probing.NewPinger(target)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", target, err)
	}
	p.SetPrivileged(raw)
	p.SetLogger(probing.NoopLogger{})
	p.Count = c.cfg.Ping.Count
	p.Interval = time.Duration(c.cfg.Ping.Interval)
	p.Timeout = time.Duration(c.cfg.Ping.Interval)*time.Duration(c.cfg.Ping.Count) + time.Duration(c.cfg.Ping.Timeout)
	if err := p.RunWithContext(ctx); err != nil {
		return nil, err
	}
	return p.Statistics(), nil
}

// Collect implements exporter.Collector.
func (c *Collector) Collect(ctx context.Context, s *exporter.Snapshot) error {
	c.mu.Lock()
	for _, target := range c.cfg.Ping.Targets {
		r, ok := c.rounds[target]
		if !ok {
			continue // no round finished yet
		}
		if r.Sent > 0 {
			s.Add("kiosk_network_packet_loss_ratio", 1-float64(r.Received)/float64(r.Sent), target)
		}
		if r.Received > 0 {
			s.Add("kiosk_network_rtt_median_seconds", r.Median.Seconds(), target)
			s.Add("kiosk_network_rtt_max_seconds", r.Max.Seconds(), target)
		}
		s.Add("kiosk_network_probe_sent_total", c.sent[target], target)
		s.Add("kiosk_network_probe_received_total", c.received[target], target)
	}
	c.mu.Unlock()

	ifaces, err := c.interfaces()
	if err != nil {
		return err
	}
	for _, iface := range ifaces {
		s.AddBool("kiosk_network_link_up", c.linkUp(iface), iface)
		c.reportAddress(s, iface)
	}
	c.lookups(ctx, s)
	return nil
}

func (c *Collector) interfaces() ([]string, error) {
	if len(c.cfg.Interfaces) > 0 {
		return c.cfg.Interfaces, nil
	}
	entries, err := os.ReadDir(filepath.Join(c.cfg.SysRoot, "class", "net"))
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() != "lo" {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// linkUp: the interface is up and has carrier. Virtual links report their
// operstate as "unknown"; their carrier decides.
func (c *Collector) linkUp(iface string) bool {
	read := func(file string) string {
		b, err := os.ReadFile(filepath.Join(c.cfg.SysRoot, "class", "net", iface, file))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	switch read("operstate") {
	case "up":
		return true
	case "unknown":
		return read("carrier") == "1"
	}
	return false
}

func (c *Collector) reportAddress(s *exporter.Snapshot, iface string) {
	addrs, _ := c.addresses(iface)
	var chosen net.IP
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || !ipn.IP.IsGlobalUnicast() {
			continue
		}
		if chosen == nil || (chosen.To4() == nil && ipn.IP.To4() != nil) {
			chosen = ipn.IP // IPv4 first: that is what kiosk networks are planned in
		}
	}
	address := ""
	if chosen != nil {
		address = chosen.String()
		s.Add("kiosk_network_address_info", 1, iface, address)
	}
	s.AddBool("kiosk_network_address_ok", chosen != nil, iface)
	c.mu.Lock()
	if last, seen := c.lastAddr[iface]; seen && last != address {
		c.changes[iface]++
	}
	c.lastAddr[iface] = address
	s.Add("kiosk_network_address_changes_total", c.changes[iface], iface)
	c.mu.Unlock()
}

func (c *Collector) lookups(ctx context.Context, s *exporter.Snapshot) {
	type result struct {
		ok bool
		d  time.Duration
	}
	results := make([]result, len(c.cfg.DNS.Names))
	var wg sync.WaitGroup
	for i, name := range c.cfg.DNS.Names {
		wg.Go(func() {
			lctx, cancel := context.WithTimeout(ctx, time.Duration(c.cfg.DNS.Timeout))
			defer cancel()
			start := time.Now()
			addrs, err := c.resolver.LookupHost(lctx, name)
			results[i] = result{ok: err == nil && len(addrs) > 0, d: time.Since(start)}
		})
	}
	wg.Wait()
	for i, name := range c.cfg.DNS.Names {
		s.AddBool("kiosk_dns_lookup_success", results[i].ok, name)
		s.Add("kiosk_dns_lookup_seconds", results[i].d.Seconds(), name)
	}
}
