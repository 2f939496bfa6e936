package inventory

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/kioskmon/kioskmon/internal/atomicfile"
)

func TestGoodFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.yml")
	if len(files) == 0 {
		t.Fatal("no good files")
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%s: %s", f, err)
		}
	}
}

func TestBadFiles(t *testing.T) {
	want := map[string]string{
		"unknown-field":   "unknown-field.bad.yml:7: field colour not found",
		"missing-site":    `missing-site.bad.yml:6: kiosk "k1": site "s2" is not listed under sites`,
		"duplicate-kiosk": `duplicate-kiosk.bad.yml:9: kiosk "k1": listed twice`,
		"bad-hash":        `bad-hash.bad.yml:9: kiosk "k1": token_sha256 must be 64 lowercase hex characters`,
		"bad-hours":       `bad-hours.bad.yml:4: site "s1": opening_hours[0]: close 08:00 is not after open 18:00`,
		"bad-day":         `bad-day.bad.yml:4: site "s1": opening_hours[0]: day "monday" is not one of mon tue wed thu fri sat sun`,
		"bad-version":     `bad-version.bad.yml:1: version "v2" is not supported`,
		"no-provider":     `no-provider.bad.yml:5: kiosk "k1": provider is missing`,
		"bad-timezone":    `bad-timezone.bad.yml:4: site "s1": unknown timezone "Mars/Olympus"`,
		"bad-id":          `bad-id.bad.yml:3: site "has space": id must be`,
		"syntax":          "syntax.bad.yml:2: did not find expected",
	}
	files, _ := filepath.Glob("testdata/*.bad.yml")
	if len(files) != len(want) {
		t.Fatalf("%d bad files, %d expectations", len(files), len(want))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".bad.yml")
		_, err := Load(f)
		if err == nil {
			t.Errorf("%s: accepted", f)
			continue
		}
		if !strings.Contains(err.Error(), want[name]) {
			t.Errorf("%s:\n got %q\nwant %q", f, err, want[name])
		}
	}
}

func TestIsOpen(t *testing.T) {
	inv, err := Load("testdata/full.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	ix := NewIndex(inv)
	f := func(site, when string, want bool) {
		t.Helper()
		s, _ := ix.Site(site)
		at, err := time.Parse(time.RFC3339, when)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.IsOpen(at)
		if err != nil || got != want {
			t.Errorf("%s open at %s: %v %v, want %v", site, when, got, err, want)
		}
	}
	f("gulou-hall", "2026-11-23T08:30:00+08:00", true)  // Monday opening
	f("gulou-hall", "2026-11-23T08:29:00+08:00", false) // a minute early
	f("gulou-hall", "2026-11-23T09:29:00Z", true)       // 17:29 in Shanghai
	f("gulou-hall", "2026-11-23T09:31:00Z", false)      // 17:31 Shanghai: closed
	f("gulou-hall", "2026-11-28T10:00:00+08:00", true)  // Saturday morning
	f("gulou-hall", "2026-11-29T10:00:00+08:00", false) // Sunday
	f("night-station", "2026-11-29T23:59:00+08:00", true)
	f("night-station", "2026-11-25T20:00:00+08:00", false) // Wednesday is outside fri-mon
}

func TestAuthenticate(t *testing.T) {
	inv := &Inventory{Version: "v1", Sites: []Site{{ID: "s"}}, Kiosks: []Kiosk{
		{ID: "k1", Site: "s", District: "d", Provider: "p", TokenSHA256: HashToken("t1")},
		{ID: "k2", Site: "s", District: "d", Provider: "p"},
	}}
	ix := NewIndex(inv)
	if k, ok := ix.AuthenticateBearer("t1"); !ok || k.ID != "k1" {
		t.Errorf("bearer t1: %v %v", k, ok)
	}
	for _, c := range []struct{ id, token string }{{"", "t1"}, {"k1", "t2"}, {"k2", ""}, {"k9", "t1"}, {"k2", "t1"}} {
		if c.id == "" {
			if _, ok := ix.AuthenticateBearer(c.token + "x"); ok {
				t.Errorf("bearer %q accepted", c.token+"x")
			}
			continue
		}
		if _, ok := ix.AuthenticateBasic(c.id, c.token); ok {
			t.Errorf("basic %s/%s accepted", c.id, c.token)
		}
	}
	if k, ok := ix.AuthenticateBasic("k1", "t1"); !ok || k.ID != "k1" {
		t.Errorf("basic k1/t1: %v %v", k, ok)
	}
	if _, ok := ix.AuthenticateBearer(""); ok {
		t.Error("empty bearer accepted")
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	inv, err := Load("testdata/full.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "inv.yml")
	if err := inv.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(inv, back) {
		t.Fatalf("round trip changed the inventory:\n%+v\n%+v", inv, back)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	bad := *inv
	bad.Kiosks = append([]Kiosk{}, inv.Kiosks...)
	bad.Kiosks[0].Site = "nowhere"
	if err := bad.Save(path); err == nil {
		t.Fatal("saved an invalid inventory")
	}
}

func TestWatcherReloadsAndKeepsOldOnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inv.yml")
	inv := &Inventory{Version: "v1", Sites: []Site{{ID: "s"}}, Kiosks: []Kiosk{{ID: "k1", Site: "s", District: "d", Provider: "p"}}}
	if err := inv.Save(path); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	w, err := NewWatcher(path, log.NewLogfmtLogger(log.NewSyncWriter(&logs)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithCancel()
	defer cancel()
	go w.Run(ctx, 20*time.Millisecond)

	inv.Kiosks = append(inv.Kiosks, Kiosk{ID: "k2", Site: "s", District: "d", Provider: "p"})
	inv.Save(path)
	waitFor(t, func() bool { _, ok := w.Index().Kiosk("k2"); return ok })

	// Replaced by rename, so the watcher can only see one broken version: a
	// file written in place may, on a loaded machine, be seen half written
	// across two polls, and each half is a version of its own.
	if err := atomicfile.Write(path, []byte("version: v1\nkiosks:\n  - id: k1\n    site: gone\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, failed := w.ReloadsTotal(); return failed == 1 })
	if _, ok := w.Index().Kiosk("k2"); !ok || w.LastReloadSuccess() {
		t.Fatal("a broken file replaced the index")
	}
	if !strings.Contains(logs.String(), "keeping the previous one") {
		t.Errorf("no error logged: %s", logs.String())
	}
	// The broken version is reported once, not at every poll.
	time.Sleep(100 * time.Millisecond)
	if _, failed := w.ReloadsTotal(); failed != 1 {
		t.Errorf("%d failed reloads of one broken version", failed)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/full.good.yml", "testdata/minimal.good.yml", "testdata/missing-site.bad.yml"} {
		data, _ := os.ReadFile(p)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := Parse(data, "fuzz.yml")
		if err != nil {
			return
		}
		// What Save would write (without the fsync, to fuzz fast).
		saved, err := inv.marshal()
		if err != nil {
			t.Fatalf("accepted inventory does not save: %s", err)
		}
		back, err := Parse(saved, "saved.yml")
		if err != nil {
			t.Fatalf("saved inventory does not load: %s\n%s", err, saved)
		}
		if !reflect.DeepEqual(normalise(inv), normalise(back)) {
			t.Fatalf("round trip changed the inventory:\n%+v\n%+v", inv, back)
		}
	})
}

// normalise treats nil and empty lists alike, as YAML does.
func normalise(inv *Inventory) Inventory {
	c := *inv
	if len(c.Sites) == 0 {
		c.Sites = nil
	}
	if len(c.Kiosks) == 0 {
		c.Kiosks = nil
	}
	for i := range c.Sites {
		if len(c.Sites[i].OpeningHours) == 0 {
			c.Sites[i].OpeningHours = nil
		}
	}
	return c
}

func BenchmarkAuthenticateBasic(b *testing.B) {
	inv := &Inventory{Version: "v1"}
	for i := range 10000 {
		inv.Kiosks = append(inv.Kiosks, Kiosk{ID: "k" + strings.Repeat("0", 5-len(itoa(i))) + itoa(i), TokenSHA256: HashToken("token-" + itoa(i))})
	}
	ix := NewIndex(inv)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := ix.AuthenticateBasic("k04242", "token-4242"); !ok {
			b.Fatal("not authenticated")
		}
	}
}
