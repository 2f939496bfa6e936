package sim

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/faults"
	"github.com/kioskmon/kioskmon/ingest/inventory"
)

// value returns the value of the series name whose labels include want.
func value(s *exporter.Snapshot, name string, want map[string]string) (float64, bool) {
	var v float64
	found := false
	s.Each(func(n string, labels []exporter.Label, val float64) {
		if n != name || found {
			return
		}
		for k, w := range want {
			ok := false
			for _, l := range labels {
				if l.Name == k && l.Value == w {
					ok = true
				}
			}
			if !ok {
				return
			}
		}
		v, found = val, true
	})
	return v, found
}

// policeKiosk is a kiosk at a site open around the clock (site 3), so
// citizens use it at any simulated hour.
func policeKiosk(t *testing.T) *Kiosk {
	t.Helper()
	const i = 3*kiosksPerSite + 1
	site := siteFor(i / kiosksPerSite)
	if len(site.OpeningHours) != 0 {
		t.Fatalf("site %s is not open around the clock", site.ID)
	}
	return newKiosk(Member{Kiosk: kioskFor(i), Site: site}, i, 7, &openCache{site: &site})
}

// TestEveryFaultIsObservable injects each fault of the catalogue the
// simulator can cause and checks the catalogue metric a rule would use
// shows it, and that the repair clears it where the repair is visible.
func TestEveryFaultIsObservable(t *testing.T) {
	type check func(k *Kiosk, s *exporter.Snapshot, gathered bool) bool
	m := func(name string, labels map[string]string, ok func(float64) bool) check {
		return func(_ *Kiosk, s *exporter.Snapshot, gathered bool) bool {
			v, found := value(s, name, labels)
			return gathered && found && ok(v)
		}
	}
	eq := func(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
	above := func(min float64) func(float64) bool { return func(v float64) bool { return v > min } }
	checks := map[string]check{
		faults.PaperOut:                m("kiosk_paper_state", map[string]string{"state": "empty"}, eq(1)),
		faults.TonerOut:                m("kiosk_toner_level_ratio", nil, eq(0)),
		faults.PaperJam:                m("kiosk_paper_jam", nil, eq(1)),
		faults.PrinterFault:            m("kiosk_peripheral_state", map[string]string{"kind": "a4_printer", "state": "fault"}, eq(1)),
		faults.UPSRuntimeWeak:          m("kiosk_ups_replace_battery", nil, eq(1)),
		faults.BlueWhiteScreen:         m("kiosk_app_heartbeat_age_seconds", nil, above(600)),
		faults.HostSaturated:           m("kiosk_host_cpu_usage_ratio", nil, above(0.9)),
		faults.PeripheralNotResponding: m("kiosk_peripheral_state", map[string]string{"device": "camera", "state": "not_responding"}, eq(1)),
		faults.ScreenBlurred:           m("kiosk_peripheral_state", map[string]string{"kind": "display", "state": "degraded"}, eq(1)),
		faults.IDReaderFault:           m("kiosk_peripheral_state", map[string]string{"kind": "id_card_reader", "state": "fault"}, eq(1)),
		faults.LightsDim:               m("kiosk_peripheral_state", map[string]string{"kind": "lighting", "state": "degraded"}, eq(1)),
		faults.WrongOrNoData: func(k *Kiosk, s *exporter.Snapshot, gathered bool) bool {
			sum := 0.0
			for p := range pageNames {
				sum += k.errors[p][3] + k.errors[p][4]
			}
			return gathered && sum > 0
		},
		faults.PageSlow:            m("kiosk_app_page_probe_duration_seconds", nil, above(5)),
		faults.ServiceUnresponsive: m("kiosk_app_up", nil, eq(0)),
		faults.ClientLag:           m("kiosk_app_heartbeat_age_seconds", nil, above(4)),
		faults.PageTampered:        m("kiosk_app_page_integrity_ok", nil, eq(0)),
		faults.PageUnreachable:     m("kiosk_app_page_probe_success", nil, eq(0)),
		faults.HighLatency:         m("kiosk_network_rtt_median_seconds", nil, above(0.3)),
		faults.PacketLoss: func(k *Kiosk, _ *exporter.Snapshot, gathered bool) bool {
			return gathered && k.probeSent > 0 && 1-k.probeReceived/k.probeSent > 0.1
		},
		faults.LinkDown: func(k *Kiosk, s *exporter.Snapshot, gathered bool) bool {
			v, _ := value(s, "kiosk_network_link_up", nil)
			return gathered && v == 0 && k.linkDown.Load()
		},
		faults.IPChanged:    m("kiosk_network_address_ok", nil, eq(0)),
		faults.MainsLost:    m("kiosk_ups_on_battery", nil, eq(1)),
		faults.KioskOffline: func(_ *Kiosk, _ *exporter.Snapshot, gathered bool) bool { return !gathered },
		faults.ClockWrong:   m("kiosk_host_clock_offset_seconds", nil, func(v float64) bool { return v < -120 }),
	}
	for _, id := range injectableIDs() {
		if checks[id] == nil {
			t.Errorf("fault %s has no observability check here: add one", id)
		}
	}
	// 10:00 in Shanghai, a Tuesday: citizens are using the kiosk.
	start := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	for id, ok := range checks {
		t.Run(id, func(t *testing.T) {
			k := policeKiosk(t)
			device := ""
			if id == faults.PeripheralNotResponding {
				device = "camera"
			}
			k.engine = newEngine(start, 0, []ScriptEntry{{At: 0, Kiosk: k.Kiosk.ID, Fault: id, For: 3600e9, Device: device}}, &truthWriter{})
			k.engine.forKiosk(k)
			s := &exporter.Snapshot{}
			var gathered bool
			at := start
			for ; at.Before(start.Add(30 * time.Minute)); at = at.Add(15 * time.Second) {
				if gathered = k.Step(at); gathered {
					k.Gather(at, s)
				}
			}
			if !ok(k, s, gathered) {
				t.Fatalf("30 minutes into %s the catalogue metrics do not show it", id)
			}
			if k.engine.active.Load() != 1 || k.active[id] == nil {
				t.Fatalf("%s is not active", id)
			}
			for ; at.Before(start.Add(2 * time.Hour)); at = at.Add(15 * time.Second) {
				if gathered = k.Step(at); gathered {
					k.Gather(at, s)
				}
			}
			if k.active[id] != nil || k.engine.active.Load() != 0 {
				t.Fatalf("%s was not repaired at its end", id)
			}
			if id != faults.WrongOrNoData && id != faults.PacketLoss && ok(k, s, gathered) {
				t.Fatalf("an hour after its repair %s still shows", id)
			}
		})
	}
}

func TestUsageDepletesConsumablesAndStaffRefill(t *testing.T) {
	k := policeKiosk(t)
	k.paper, k.toner = 120, 2000
	start := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC) // 08:00 in Shanghai
	s := &exporter.Snapshot{}
	lowSeen, printed := false, 0.0
	before := k.printedA4
	for at := start; at.Before(start.Add(48 * time.Hour)); at = at.Add(15 * time.Second) {
		if k.Step(at) {
			k.Gather(at, s)
		}
		if k.paper < 0.15*paperCapacity {
			lowSeen = true
		}
	}
	printed = k.printedA4 - before
	if printed < 50 {
		t.Fatalf("two days of citizens printed only %g pages", printed)
	}
	if !lowSeen {
		t.Fatalf("paper never ran low from 120 sheets after %g printed pages", printed)
	}
	if k.paper < 1 {
		t.Fatalf("paper ran out without an injected fault: staff should refill a low tray")
	}
	if k.toner >= 2000 {
		t.Fatalf("toner did not deplete: %g", k.toner)
	}
	v, _ := value(s, "kiosk_printed_pages_total", map[string]string{"printer": "a4printer"})
	if v != k.printedA4 {
		t.Fatalf("kiosk_printed_pages_total %g, printed %g", v, k.printedA4)
	}
}

func TestHallKioskIsOffWhileClosed(t *testing.T) {
	const i = 0 // site 0: a hall that switches its kiosks off at closing
	site := siteFor(0)
	k := newKiosk(Member{Kiosk: kioskFor(i), Site: site}, i, 1, &openCache{site: &site})
	if !k.poweredOffWhenClosed {
		t.Fatal("site 0 should switch its kiosks off")
	}
	night := time.Date(2026, 11, 24, 15, 0, 0, 0, time.UTC) // 23:00 in Shanghai
	if k.Step(night) {
		t.Fatal("a hall kiosk gathers at 23:00 local time")
	}
	day := time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC) // Wednesday 10:00
	if !k.Step(day) {
		t.Fatal("a hall kiosk is off at 10:00 on a Wednesday")
	}
	s := &exporter.Snapshot{}
	k.Gather(day, s)
	if up, _ := value(s, "kiosk_host_uptime_seconds", nil); up != 0 {
		t.Fatalf("uptime %g right after the morning boot", up)
	}
}

func TestEnsureFleet(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.yml")
	members, added, err := EnsureFleet(inv, TokensPath(inv), 12)
	if err != nil {
		t.Fatal(err)
	}
	if added != 12 || len(members) != 12 {
		t.Fatalf("added %d, members %d", added, len(members))
	}
	st, err := os.Stat(TokensPath(inv))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("tokens file: %v, mode %v", err, st.Mode())
	}
	loaded, err := inventory.Load(inv)
	if err != nil {
		t.Fatal(err)
	}
	ix := inventory.NewIndex(loaded)
	for _, m := range members {
		if _, ok := ix.AuthenticateBasic(m.Kiosk.ID, m.Token); !ok {
			t.Fatalf("kiosk %s: its token is not accepted by the inventory", m.Kiosk.ID)
		}
	}
	data, _ := os.ReadFile(inv)
	if strings.Contains(string(data), members[0].Token) {
		t.Fatal("the inventory holds a plain token")
	}

	// An operator renames a kiosk; a rerun keeps the edit and the tokens,
	// a bigger fleet adds only the new kiosks.
	loaded.Kiosks[0].Name = "renamed by the operator"
	if err := loaded.Save(inv); err != nil {
		t.Fatal(err)
	}
	again, added, err := EnsureFleet(inv, TokensPath(inv), 12)
	if err != nil || added != 0 {
		t.Fatalf("rerun added %d: %v", added, err)
	}
	if again[3].Token != members[3].Token {
		t.Fatal("a rerun changed a token")
	}
	bigger, added, err := EnsureFleet(inv, TokensPath(inv), 20)
	if err != nil || added != 8 {
		t.Fatalf("growing to 20 added %d: %v", added, err)
	}
	if bigger[0].Kiosk.Name != "renamed by the operator" {
		t.Fatalf("the operator's edit was lost: %q", bigger[0].Kiosk.Name)
	}
	// Lost tokens: the simulator issues new ones instead of failing.
	os.Remove(TokensPath(inv))
	if _, added, err := EnsureFleet(inv, TokensPath(inv), 20); err != nil || added != 20 {
		t.Fatalf("after losing the tokens file: added %d, %v", added, err)
	}
}

func TestParseScript(t *testing.T) {
	kiosks := map[string]bool{KioskID(0): true, KioskID(1): true}
	good := "- {at: 90s, kiosk: " + KioskID(1) + ", fault: hw.paper_out, for: 20m}\n" +
		"- {at: 30s, kiosk: " + KioskID(0) + ", fault: hw.peripheral_not_responding, for: 1h, device: camera, onsite: 40m}\n"
	entries, err := ParseScript([]byte(good), "f.yml", kiosks)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Kiosk != KioskID(0) || time.Duration(entries[1].For) != 20*time.Minute {
		t.Fatalf("entries not parsed or not sorted by time: %+v", entries)
	}
	f := func(script, want string) {
		t.Helper()
		_, err := ParseScript([]byte(script), "f.yml", kiosks)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%q: error %v, want it to contain %q", script, err, want)
		}
	}
	k0 := KioskID(0)
	f("- {at: 1m, kiosk: "+k0+", fault: hw.nope, for: 1m}", `f.yml:1: entry 1: fault: "hw.nope" is not a fault id`)
	f("- {at: 1m, kiosk: "+k0+", fault: hw.paper_out, for: 1m}\n- {at: 1m, kiosk: zz-1, fault: hw.paper_out, for: 1m}", `f.yml:2: entry 2: kiosk: "zz-1" is not one of the simulated kiosks`)
	f("- at: 1m\n  kiosk: "+k0+"\n  fault: hw.paper_out\n", "f.yml:1: entry 1: for: is required")
	f("- {at: 1m, kiosk: "+k0+", fault: consumables.paper_forecast, for: 1m}", "cannot be injected")
	f("- {at: 1m, kiosk: "+k0+", fault: hw.paper_out, for: 1m, device: camera}", "device: applies to hw.peripheral_not_responding only")
	f("- {at: 1m, kiosk: "+k0+", fault: hw.paper_out, for: 1m, colour: red}", "f.yml:1")
	f("- {at: 1m, kiosk: "+k0+", fault: hw.paper_out, for: 10m, onsite: 20m}", "onsite: 20m0s is not within")
	f("- {at: soon, kiosk: "+k0+", fault: hw.paper_out, for: 10m}", "f.yml:1")
}

func TestConfigValidateEnd(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	base := Config{Kiosks: 1, InventoryPath: "inv.yml", PushURL: "http://127.0.0.1:8428", Speed: 100,
		Duration: time.Hour, Interval: 15 * time.Second, now: func() time.Time { return now }}
	for _, tc := range []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{"past end", func(c *Config) { c.End = now.Add(-48 * time.Hour) }, ""},
		{"no end", func(c *Config) {}, ""},
		{"future end", func(c *Config) { c.End = now.Add(time.Hour) }, "in the future"},
		{"end in real time", func(c *Config) { c.End, c.Speed = now.Add(-time.Hour), 1 }, "needs --speed above 1"},
		{"a shard", func(c *Config) { c.Kiosks, c.Shard, c.Shards = 4, 1, 2 }, ""},
		{"shard past the last", func(c *Config) { c.Kiosks, c.Shard, c.Shards = 4, 2, 2 }, "give K/N"},
		{"more shards than kiosks", func(c *Config) { c.Shard, c.Shards = 0, 2 }, "more shards than"},
		{"catch up", func(c *Config) { c.CatchUp, c.Duration = time.Hour, 0 }, ""},
		{"catch up with a duration", func(c *Config) { c.CatchUp = time.Hour }, "leave out --duration and --end"},
		{"catch up to an end", func(c *Config) { c.CatchUp, c.Duration, c.End = time.Hour, 0, now.Add(-time.Hour) }, "leave out --duration and --end"},
		{"catch up in real time", func(c *Config) { c.CatchUp, c.Duration, c.Speed = time.Hour, 0, 1 }, "needs --speed above 1"},
		{"negative catch up", func(c *Config) { c.CatchUp, c.Duration = -time.Hour, 0 }, "is negative"},
		{"catch up a truth", func(c *Config) { c.CatchUp, c.TruthOnly, c.TruthPath = time.Hour, true, "t.jsonl" }, "--catch-up is for runs that push"},
	} {
		c := base
		tc.change(&c)
		err := c.Validate()
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.wantErr)
		}
	}
}

// TestTruthOnlyIsDeterministicAndKeepsOpeningHours: a truth-only month is
// the same month every time (the SLA end-to-end test compares a report
// with it), and random faults start only while the kiosk's site is open.
func TestTruthOnlyIsDeterministicAndKeepsOpeningHours(t *testing.T) {
	dir := t.TempDir()
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.FixedZone("CST", 8*3600))
	run := func(name string) []byte {
		t.Helper()
		cfg := Config{Kiosks: 12, InventoryPath: filepath.Join(dir, "inv.yml"), TruthOnly: true, Duration: 7 * 24 * time.Hour,
			End: end, Interval: time.Minute, FaultRate: 1, TruthPath: filepath.Join(dir, name), Seed: 7}
		if _, err := Run(context.Background(), cfg, log.NewNopLogger()); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(cfg.TruthPath)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	a, b := run("a.jsonl"), run("b.jsonl")
	lines := func(d []byte) []string {
		l := strings.Split(strings.TrimSpace(string(d)), "\n")
		sort.Strings(l)
		return l
	}
	la, lb := lines(a), lines(b)
	if strings.Join(la, "\n") != strings.Join(lb, "\n") {
		t.Fatal("two truth-only runs of the same seed differ")
	}
	// One a day, but only those that start while the site is open and the
	// kiosk is on are injected: about a third.
	if len(la) < 12 {
		t.Fatalf("%d faults in 12 kiosk-weeks at 1 a day", len(la))
	}
	inv, err := inventory.Load(filepath.Join(dir, "inv.yml"))
	if err != nil {
		t.Fatal(err)
	}
	ix := inventory.NewIndex(inv)
	for _, line := range la {
		var in struct {
			Kiosk      string
			Fault      string
			Start, End time.Time
		}
		if err := json.Unmarshal([]byte(line), &in); err != nil {
			t.Fatal(err)
		}
		k, _ := ix.Kiosk(in.Kiosk)
		site, _ := ix.Site(k.Site)
		if open, err := site.IsOpen(in.Start); err != nil || !open {
			t.Errorf("%s on %s started at %s, while %s was closed", in.Fault, in.Kiosk, in.Start, site.ID)
		}
		if in.End.Before(in.Start) || in.End.After(end) || in.Start.Before(end.Add(-7*24*time.Hour)) {
			t.Errorf("%s on %s from %s to %s: outside the week", in.Fault, in.Kiosk, in.Start, in.End)
		}
	}
}
