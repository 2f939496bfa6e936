package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskmon/kioskmon/alerting/rulebook"
	"github.com/kioskmon/kioskmon/ingest/inventory"
	"github.com/kioskmon/kioskmon/slo/calendar"
)

func load(t *testing.T, name string) *Policy {
	t.Helper()
	p, err := Load(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func sh(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, calendar.Shanghai)
	if err != nil {
		panic(err)
	}
	return t
}

func TestPresetDB12(t *testing.T) {
	p, err := FromPreset(PresetDB12)
	if err != nil {
		t.Fatal(err)
	}
	f := func(kind string, c Case, want time.Duration, clock, source string) {
		t.Helper()
		got := p.Target(kind, c)
		if got.Within != want || got.Clock != clock || got.Source != source || got.Set() != (want > 0) {
			t.Errorf("%s %+v: %+v, want %s on %s from %q", kind, c, got, want, clock, source)
		}
	}
	table1, table2 := "DB12/T 1060—2021 table 1", "DB12/T 1060—2021 table 2"
	f(Response, Case{Severity: "minor"}, 30*time.Minute, Clock7x24, table1)
	// The standard's service time is 7x24 including holidays: no other
	// target on non-working days.
	f(Response, Case{Severity: "minor", NonWorkingDay: true}, 30*time.Minute, Clock7x24, table1)
	f(Arrival, Case{Severity: "urgent", DistanceKm: 99}, 2*time.Hour, Clock7x24, table1)
	f(Arrival, Case{Severity: "urgent", DistanceKm: 100}, 2*time.Hour, Clock7x24, table1) // within 100 km
	f(Arrival, Case{Severity: "urgent", DistanceKm: 101}, 0, Clock7x24, "")               // as the contract says: none here
	f(Repair, Case{Severity: "urgent"}, 2*time.Hour, Clock7x24, table2)
	f(Repair, Case{Severity: "moderate"}, 4*time.Hour, Clock7x24, table2)
	f(Repair, Case{Severity: "minor"}, 8*time.Hour, Clock7x24, table2)
	f(Repair, Case{Severity: "catastrophic"}, 0, Clock7x24, "")
	f("uptime", Case{Severity: "minor"}, 0, "", "")

	// The severities are the rulebook's scale of the same name.
	var want []string
	for _, l := range rulebook.Presets[PresetDB12].Levels {
		want = append(want, l.Name)
	}
	if got := p.Severities(); strings.Join(got, ",") != strings.Join(want, ",") || strings.Join(got, ",") != "urgent,moderate,minor" {
		t.Errorf("severities %v, want %v", got, want)
	}
	if !p.Higher("urgent", "minor") || p.Higher("minor", "moderate") || !p.Higher("minor", "unknown") || p.Higher("unknown", "minor") {
		t.Error("Higher does not follow urgent > moderate > minor > unknown")
	}
	if p.Version() == "" || !strings.HasPrefix(p.Version(), "db12-1060@") {
		t.Errorf("version %q", p.Version())
	}
}

func TestPresetFujian(t *testing.T) {
	if _, err := FromPreset(PresetFujian); err == nil || !strings.Contains(err.Error(), "no response time for severity severe") {
		t.Fatalf("fujian-2022 alone: %v, want an error asking for the contract's times", err)
	}
	p := load(t, "fujian.good.yml")
	if got := p.Severities(); strings.Join(got, ",") != "severe,general" {
		t.Errorf("severities %v", got)
	}
	f := func(kind string, c Case, want time.Duration, clock, source string) {
		t.Helper()
		got := p.Target(kind, c)
		if got.Within != want || got.Clock != clock || got.Source != source {
			t.Errorf("%s %+v: %+v, want %s on %s from %q", kind, c, got, want, clock, source)
		}
	}
	f(Response, Case{Severity: "general"}, time.Hour, ClockSite, "policy fujian-city")
	f(Response, Case{Severity: "general", NonWorkingDay: true}, 3*time.Hour, ClockSite, "common O&M contract (non-working days)")
	f(Repair, Case{Severity: "severe"}, 4*time.Hour, ClockSite, "policy fujian-city")
	f(Repair, Case{Severity: "general"}, 24*time.Hour, ClockSite, "policy fujian-city")
	f(Arrival, Case{Severity: "general", DistanceKm: 150}, 0, ClockSite, "")
}

func TestProviderOverride(t *testing.T) {
	p := load(t, "city.good.yml")
	f := func(kind string, c Case, want time.Duration, clock, source string) {
		t.Helper()
		got := p.Target(kind, c)
		if got.Within != want || got.Clock != clock || got.Source != source {
			t.Errorf("%s %+v: %+v, want %s on %s from %q", kind, c, got, want, clock, source)
		}
	}
	acme := "contract acme (ACME O&M 2026-017)"
	f(Response, Case{Provider: "acme", Severity: "minor"}, 15*time.Minute, Clock7x24, acme)
	// acme's contract says nothing of non-working days: the policy's holds.
	f(Response, Case{Provider: "acme", Severity: "minor", NonWorkingDay: true}, 3*time.Hour, Clock7x24, "policy city-2026")
	f(Repair, Case{Provider: "acme", Severity: "urgent"}, time.Hour, ClockBusiness, acme)
	f(Repair, Case{Provider: "acme", Severity: "minor"}, 6*time.Hour, ClockBusiness, acme)
	f(Arrival, Case{Provider: "acme", Severity: "minor", DistanceKm: 120}, 6*time.Hour, Clock7x24, "policy city-2026")
	// slowco: 24 h for every severity on its sites' hours, far beyond 50 km.
	f(Repair, Case{Provider: "slowco", Severity: "urgent"}, 24*time.Hour, ClockSite, "contract slowco")
	f(Arrival, Case{Provider: "slowco", Severity: "urgent", DistanceKm: 60}, 6*time.Hour, Clock7x24, "policy city-2026")
	// A provider without a contract gets the policy.
	f(Response, Case{Provider: "other", Severity: "minor"}, 30*time.Minute, Clock7x24, "DB12/T 1060—2021 table 1")
	f(Repair, Case{Provider: "other", Severity: "urgent"}, 2*time.Hour, Clock7x24, "DB12/T 1060—2021 table 2")
	f(Arrival, Case{Provider: "other", Severity: "urgent", DistanceKm: 60}, 2*time.Hour, Clock7x24, "DB12/T 1060—2021 table 1")
	if got := strings.Join(p.Providers(), ","); got != "acme,slowco" {
		t.Errorf("providers %s", got)
	}
}

func TestCalendarOfThePolicy(t *testing.T) {
	p := load(t, "city.good.yml")
	f := func(at time.Time, want bool) {
		t.Helper()
		if got := p.NonWorkingDay(at); got != want {
			t.Errorf("%s: non-working %v, want %v", at, got, want)
		}
	}
	f(sh("2026-02-14 10:00"), false) // make-up Saturday
	f(sh("2026-02-16 10:00"), true)  // Spring Festival, a Monday
	f(sh("2026-03-07 10:00"), true)  // Saturday
	f(sh("2026-03-09 10:00"), false) // Monday
	// 2026-03-06T16:30Z is Saturday 00:30 in Shanghai, still Friday in UTC.
	f(time.Date(2026, 3, 6, 16, 30, 0, 0, time.UTC), true)
	f(time.Date(2026, 3, 6, 15, 30, 0, 0, time.UTC), false)
	// Business hours of the file: 09:00-12:00, 13:00-17:00.
	if got := p.Business().Elapsed(sh("2026-03-09 08:00"), sh("2026-03-09 18:00")); got != 7*time.Hour {
		t.Errorf("business day: %s, want 7h", got)
	}
	site := inventory.Site{ID: "airport-t2", OpeningHours: []inventory.OpeningHours{{Days: "mon-sun", Open: "06:00", Close: "22:00"}}}
	open, err := p.SiteClock(site)
	if err != nil {
		t.Fatal(err)
	}
	site.ID = "hall"
	closed, err := p.SiteClock(site)
	if err != nil {
		t.Fatal(err)
	}
	day := func(c *calendar.Hours) time.Duration {
		return c.Elapsed(sh("2026-10-01 00:00"), sh("2026-10-02 00:00"))
	}
	if day(open) != 16*time.Hour || day(closed) != 0 {
		t.Errorf("October 1st: airport %s (want 16h), hall %s (want 0)", day(open), day(closed))
	}
}

func TestInvalidPolicies(t *testing.T) {
	f := func(file, want string) {
		t.Helper()
		_, err := Load(filepath.Join("testdata", file))
		if err == nil || err.Error() != filepath.Join("testdata", file)+want {
			t.Errorf("%s: error\n%v\nwant\n%s%s", file, err, filepath.Join("testdata", file), want)
		}
	}
	f("clock.bad.yml", `:6: targets.response.clock: clock "office" is not one of 7x24, business, site_hours`)
	f("severity.bad.yml", `:9: providers.acme.targets.repair.by_severity.critical: severity "critical" is not one of urgent, moderate, minor`)
	f("fujian.bad.yml", `:6: targets.repair: no repair time for severity general: the fujian-2022 preset sets none (the contract does); set within or by_severity`)
	f("duration.bad.yml", `:5: duration "two hours": want e.g. 30s, 5m, 12h, 90d, 2w or 1y`)
	f("unknown.bad.yml", `:4: field repiar not found in type policy.Targets`)
	f("hours.bad.yml", `:5: business_hours.1: close 08:30 is not after open 17:30`)
	f("preset.bad.yml", `:3: preset: preset "gb-2099" is not one of db12-1060, fujian-2022, none`)
	f("name.bad.yml", `:2: name: name "my policy": give the policy a name without spaces or '@' (it starts the policy version)`)

	g := func(doc, want string) {
		t.Helper()
		_, err := Parse([]byte(doc), "sla.yml")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
	g("", "sla.yml: the file is empty")
	g("version: v1\nname: x\ntimezone: Mars/Olympus\n", "sla.yml:3: timezone: unknown timezone")
	g("version: v1\nname: x\nholidays: nowhere\n", "sla.yml:3: holidays: holidays directory")
	g("version: v1\nname: x\nfar_km: -1\n", "sla.yml:3: far_km: far_km -1 is negative")
	g("version: v1\nname: x\npreset: none\n", "sla.yml: severities: the none preset has no severities")
	g("version: v1\nname: x\npreset: none\nseverities: [p1, p2]\ntargets:\n  response: {within: 1h}\n", "sla.yml:5: targets.repair: no repair time for severity p1")
	g("version: v1\nname: x\nsites_open_on_holidays: [a, a]\n", "sla.yml:3: sites_open_on_holidays.1: site \"a\": empty or listed twice")
}

func TestVersion(t *testing.T) {
	base := "version: v1\nname: city\ntargets:\n  arrival_far: {within: 6h}\n"
	parse := func(doc, file string) *Policy {
		t.Helper()
		p, err := Parse([]byte(doc), file)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	v := parse(base, "sla.yml").Version()
	if !strings.HasPrefix(v, "city@") || len(v) != len("city@")+12 {
		t.Fatalf("version %q, want city@ and 12 hex digits", v)
	}
	if got := parse("# a comment\n"+base, "other.yml").Version(); got != v {
		t.Errorf("a comment changed the version: %s vs %s", got, v)
	}
	if got := parse(base+"preset: db12-1060\n", "sla.yml").Version(); got != v {
		t.Errorf("spelling out the default preset changed the version: %s vs %s", got, v)
	}
	if got := parse(strings.Replace(base, "6h", "5h", 1), "sla.yml").Version(); got == v {
		t.Error("a target's change kept the version")
	}
	if got := parse(strings.Replace(base, "city", "town", 1), "sla.yml").Version(); got[len("town@"):] != v[len("city@"):] {
		t.Errorf("only the name changed, the hash should not: %s vs %s", got, v)
	}
	// A corrected holiday file is a new version.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cn-2026.yml"),
		[]byte("version: v1\nyear: 2026\nholidays:\n  - {name: 元旦, from: 2026-01-01, to: 2026-01-01}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "hol"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "cn-2026.yml"), filepath.Join(dir, "hol", "cn-2026.yml")); err != nil {
		t.Fatal(err)
	}
	p := parse(base+"holidays: hol\n", filepath.Join(dir, "sla.yml"))
	if p.Version() == v {
		t.Error("a corrected holiday calendar kept the version")
	}
	if p.NonWorkingDay(sh("2026-02-16 10:00")) {
		t.Error("the directory's 2026 has no Spring Festival: 2026-02-16 is a Monday at work")
	}
}

// TestTestdata: every *.good.yml loads, every *.bad.yml fails with its
// file and line (TestInvalidPolicies checks the messages).
func TestTestdata(t *testing.T) {
	good, _ := filepath.Glob("testdata/*.good.yml")
	bad, _ := filepath.Glob("testdata/*.bad.yml")
	if len(good) < 3 || len(bad) < 8 {
		t.Fatalf("%d good and %d bad files", len(good), len(bad))
	}
	for _, f := range good {
		if _, err := Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, f := range bad {
		if _, err := Load(f); err == nil || !strings.HasPrefix(err.Error(), f+":") {
			t.Errorf("%s: error %v, want one starting with the file and line", f, err)
		}
	}
}
