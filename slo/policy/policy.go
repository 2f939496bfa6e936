// Package policy is the SLA policy: which targets an incident is held to
// (remote response, on-site arrival, repair), how long each allows by
// severity, which clock each runs on, the calendar (timezone, holidays,
// business hours) and per-provider contract overrides. It is a YAML file,
// strict and validated with line numbers, built on named presets of the
// standards:
//
//   - db12-1060 (the default): DB12/T 1060—2021. Remote response 0.5 h and
//     on-site arrival 2 h within far_km (100 km; beyond it the contract's
//     arrival_far), table 1; repair 2/4/8 h for urgent/moderate/minor, table
//     2; all on the 7x24 clock (the note to table 1: service time is 7x24
//     including holidays). It sets no separate non-working-day response:
//     the standard's 0.5 h holds every day; a contract with the common
//     "3 h on non-working days" clause sets non_working_day_response.
//   - fujian-2022: Fujian 2022, two severities (severe, general) whose
//     times the contract sets: the policy must give response and repair
//     times. Its clocks are the site's opening hours (§7.1: a kiosk's
//     service hours are its site's), and it carries the common O&M
//     contract's non-working-day response of 3 h.
//   - none: severities and every target from the file.
//
// A file sets only what differs from its preset:
//
//	version: v1
//	name: city-2026                # with a content hash, the policy's Version
//	preset: db12-1060              # db12-1060 (default) | fujian-2022 | none
//	timezone: Asia/Shanghai        # of the business clock and of "non-working day"
//	holidays: holidays/            # cn-YYYY.yml files replacing the embedded years
//	business_hours:                # default 08:30-12:00, 13:30-17:30 mon-fri
//	  - {days: mon-fri, open: "09:00", close: "17:00"}
//	sites_open_on_holidays: [airport-t2]   # other sites are closed on holidays
//	far_km: 100                    # beyond it, arrival_far applies
//	targets:                       # response, non_working_day_response, arrival, arrival_far, repair
//	  non_working_day_response: {within: 3h}
//	  arrival_far: {within: 6h}
//	  repair:
//	    by_severity: {urgent: 2h, moderate: 4h, minor: 8h}   # or within: for all
//	    clock: 7x24                # 7x24 | business | site_hours
//	providers:                     # contracts, by the inventory's provider name
//	  acme:
//	    name: "ACME O&M 2026-017"
//	    targets:
//	      response: {within: 15m}
//
// A contract's target replaces the policy's durations when it sets within
// or by_severity, and its clock when it sets clock; targets it leaves out
// are the policy's.
//
// The policy's Version (its name and a hash of its effective content and
// holiday calendar) is what a report prints, so figures can be traced to
// the exact rules that produced them.
package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kioskmon/kioskmon/alerting/rulebook"
	"github.com/kioskmon/kioskmon/ingest/inventory"
	"github.com/kioskmon/kioskmon/slo/calendar"
	"github.com/kioskmon/kioskmon/yamlfile"
)

// Clocks a target runs on.
const (
	Clock7x24     = "7x24"       // wall time
	ClockBusiness = "business"   // the policy's business hours, holidays off, make-up days on
	ClockSite     = "site_hours" // the kiosk's site's opening hours
)

// Clocks lists the clock names.
var Clocks = []string{Clock7x24, ClockBusiness, ClockSite}

// Target kinds.
const (
	Response = "response" // detection to acknowledgement (remote response begins)
	Arrival  = "arrival"  // detection to the engineer on site
	Repair   = "repair"   // detection to resolution
)

// Presets.
const (
	PresetDB12    = "db12-1060"
	PresetFujian  = "fujian-2022"
	PresetNone    = "none"
	DefaultPreset = PresetDB12
)

// Presets lists the preset names.
var Presets = []string{PresetDB12, PresetFujian, PresetNone}

// DefaultFarKm is the distance beyond which on-site arrival is the
// contract's (DB12/T 1060—2021 table 1).
const DefaultFarKm = 100

// Target is one target as a file writes it. A duration of a severity is
// its by_severity entry, else within.
type Target struct {
	Within     yamlfile.Duration            `yaml:"within,omitempty" json:"within,omitempty"`
	BySeverity map[string]yamlfile.Duration `yaml:"by_severity,omitempty" json:"by_severity,omitempty"`
	Clock      string                       `yaml:"clock,omitempty" json:"clock,omitempty"`
}

func (t *Target) hasDurations() bool { return t != nil && (t.Within > 0 || len(t.BySeverity) > 0) }

// Targets are the targets a policy or contract sets; unset ones come from
// the layer below (contract → policy → preset).
type Targets struct {
	Response *Target `yaml:"response,omitempty" json:"response,omitempty"`
	// NonWorkingDayResponse replaces Response for incidents detected on a
	// non-working day (weekend or holiday, not a make-up day) in the
	// policy's timezone.
	NonWorkingDayResponse *Target `yaml:"non_working_day_response,omitempty" json:"non_working_day_response,omitempty"`
	Arrival               *Target `yaml:"arrival,omitempty" json:"arrival,omitempty"`
	// ArrivalFar replaces Arrival for kiosks farther than far_km from the
	// provider's service point.
	ArrivalFar *Target `yaml:"arrival_far,omitempty" json:"arrival_far,omitempty"`
	Repair     *Target `yaml:"repair,omitempty" json:"repair,omitempty"`
}

func (t *Targets) each(fn func(field string, tg *Target)) {
	fn("response", t.Response)
	fn("non_working_day_response", t.NonWorkingDayResponse)
	fn("arrival", t.Arrival)
	fn("arrival_far", t.ArrivalFar)
	fn("repair", t.Repair)
}

// Contract is one provider's contract: what it changes of the policy.
type Contract struct {
	// Name is the contract's reference, printed in reports.
	Name    string  `yaml:"name,omitempty" json:"name,omitempty"`
	FarKm   float64 `yaml:"far_km,omitempty" json:"far_km,omitempty"`
	Targets Targets `yaml:"targets" json:"targets"`
}

// File is the policy file as written.
type File struct {
	Version string `yaml:"version" json:"version"`
	// Name of the policy; with the content hash it makes the Version.
	Name   string `yaml:"name" json:"name"`
	Preset string `yaml:"preset,omitempty" json:"preset"`
	// Severities from the most to the least severe; default the preset's
	// (the rulebook's scale of the same name).
	Severities []string `yaml:"severities,omitempty" json:"severities"`
	// Timezone of the business clock and of "non-working day"; default
	// Asia/Shanghai.
	Timezone string `yaml:"timezone,omitempty" json:"timezone"`
	// Holidays is a directory of cn-YYYY.yml files replacing the embedded
	// years, relative to the policy file.
	Holidays string `yaml:"holidays,omitempty" json:"-"`
	// BusinessHours in the inventory's opening-hours form; default 08:30-12:00
	// and 13:30-17:30, Monday to Friday.
	BusinessHours []inventory.OpeningHours `yaml:"business_hours,omitempty" json:"business_hours"`
	// SitesOpenOnHolidays are sites whose opening hours also hold on
	// statutory holidays; every other site is closed on them.
	SitesOpenOnHolidays []string `yaml:"sites_open_on_holidays,omitempty" json:"sites_open_on_holidays,omitempty"`
	FarKm               float64  `yaml:"far_km,omitempty" json:"far_km"`
	Targets             Targets  `yaml:"targets,omitempty" json:"targets"`
	// Providers' contracts, by the inventory's provider name.
	Providers map[string]Contract `yaml:"providers,omitempty" json:"providers,omitempty"`
}

// Resolved is the target one incident is held to.
type Resolved struct {
	Kind string // Response, Arrival or Repair
	// Within is the time allowed; 0 when no target is set (a far kiosk's
	// arrival without a contract value, a severity the policy does not know).
	Within time.Duration
	Clock  string
	// Source says where Within comes from: the standard's table, the
	// policy, or a provider's contract.
	Source string
}

// Set reports whether there is a target.
func (r Resolved) Set() bool { return r.Within > 0 }

// Case is what selects an incident's targets.
type Case struct {
	Provider string
	Severity string
	// DistanceKm from the provider's service point to the kiosk.
	DistanceKm float64
	// NonWorkingDay: the incident was detected on a non-working day.
	NonWorkingDay bool
}

// Policy is a validated SLA policy. It is read-only and safe for
// concurrent use.
type Policy struct {
	file       File
	loc        *time.Location
	holidays   *calendar.Holidays
	business   *calendar.Hours
	rank       map[string]int
	openOnHol  map[string]bool
	base       layered
	byProvider map[string]layered
	version    string
}

// layered is the effective targets of one provider (or of the policy).
type layered struct {
	farKm   float64
	targets [5]effective // response, non-working-day response, arrival, arrival far, repair
}

const (
	tResponse = iota
	tNonWorking
	tArrival
	tArrivalFar
	tRepair
)

type effective struct {
	within     time.Duration
	bySeverity map[string]time.Duration
	clock      string
	source     string
}

func (e *effective) duration(severity string) time.Duration {
	if d, ok := e.bySeverity[severity]; ok {
		return d
	}
	return e.within
}

// Parse reads a policy; file names it in errors ("sla.yml:12: ...") and
// is the base of a relative holidays directory.
func Parse(data []byte, file string) (*Policy, error) {
	var f File
	lines, err := yamlfile.Decode(data, file, &f)
	if err != nil {
		return nil, err
	}
	if lines.Root() == nil || len(lines.Root().Content) == 0 {
		return nil, fmt.Errorf("%s: the file is empty; it needs at least `version: v1` and `name`", file)
	}
	if f.Holidays != "" && !filepath.IsAbs(f.Holidays) {
		f.Holidays = filepath.Join(filepath.Dir(file), f.Holidays)
	}
	p, err := build(f)
	if err != nil {
		if fe, ok := err.(*yamlfile.FieldError); ok {
			return nil, fmt.Errorf("%s: %s", where(lines, file, fe.Field), fe)
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return p, nil
}

// where is file:line of the nearest field of path the file sets.
func where(lines *yamlfile.Lines, file, path string) string {
	for path != "" {
		if line := lines.Line(path); line > 0 {
			return fmt.Sprintf("%s:%d", file, line)
		}
		i := strings.LastIndexByte(path, '.')
		path = path[:max(i, 0)]
	}
	return file
}

// Load reads and validates the policy file at path.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read SLA policy: %w", err)
	}
	return Parse(data, path)
}

// FromPreset returns the policy that is only a preset, named after it
// (db12-1060 works as is; fujian-2022 has no times, see the package doc).
func FromPreset(name string) (*Policy, error) {
	return build(File{Version: "v1", Name: name, Preset: name})
}

// New validates f and returns its policy (what Parse does after decoding;
// errors name the field, without a line).
func New(f File) (*Policy, error) { return build(f) }

func presetFile(name string) (File, error) {
	levels := func(preset string) []string {
		var out []string
		for _, l := range rulebook.Presets[preset].Levels {
			out = append(out, l.Name)
		}
		return out
	}
	d := func(v time.Duration) yamlfile.Duration { return yamlfile.Duration(v) }
	switch name {
	case PresetDB12:
		repair := map[string]yamlfile.Duration{}
		for _, l := range rulebook.Presets[PresetDB12].Levels {
			repair[l.Name] = d(l.Repair) // table 2: 2, 4 and 8 h
		}
		return File{Severities: levels(PresetDB12), Targets: Targets{
			Response: &Target{Within: d(30 * time.Minute), Clock: Clock7x24},
			Arrival:  &Target{Within: d(2 * time.Hour), Clock: Clock7x24},
			// Beyond far_km: "as the contract says".
			ArrivalFar: &Target{Clock: Clock7x24},
			Repair:     &Target{BySeverity: repair, Clock: Clock7x24},
		}}, nil
	case PresetFujian:
		return File{Severities: levels(PresetFujian), Targets: Targets{
			Response:              &Target{Clock: ClockSite},
			NonWorkingDayResponse: &Target{Within: d(3 * time.Hour), Clock: ClockSite},
			Arrival:               &Target{Clock: ClockSite},
			ArrivalFar:            &Target{Clock: ClockSite},
			Repair:                &Target{Clock: ClockSite},
		}}, nil
	case PresetNone:
		all := &Target{Clock: Clock7x24}
		return File{Targets: Targets{Response: all, NonWorkingDayResponse: all, Arrival: all, ArrivalFar: all, Repair: all}}, nil
	}
	return File{}, yamlfile.Fieldf("preset", "preset %q is not one of %s", name, strings.Join(Presets, ", "))
}

var presetSources = map[string][5]string{
	PresetDB12:   {"DB12/T 1060—2021 table 1", "", "DB12/T 1060—2021 table 1", "", "DB12/T 1060—2021 table 2"},
	PresetFujian: {"", "common O&M contract (non-working days)", "", "", ""},
}

func build(f File) (*Policy, error) {
	fail := yamlfile.Fieldf
	if f.Version != "v1" {
		return nil, fail("version", "version %q: want v1", f.Version)
	}
	if f.Name == "" || strings.ContainsAny(f.Name, " \t\n@") {
		return nil, fail("name", "name %q: give the policy a name without spaces or '@' (it starts the policy version)", f.Name)
	}
	if f.Preset == "" {
		f.Preset = DefaultPreset
	}
	preset, err := presetFile(f.Preset)
	if err != nil {
		return nil, err
	}
	if len(f.Severities) == 0 {
		f.Severities = preset.Severities
	}
	if len(f.Severities) == 0 {
		return nil, fail("severities", "the %s preset has no severities: list them, the most severe first", f.Preset)
	}
	p := &Policy{rank: map[string]int{}, openOnHol: map[string]bool{}}
	for i, s := range f.Severities {
		if s == "" {
			return nil, fail(fmt.Sprintf("severities.%d", i), "empty severity")
		}
		if _, dup := p.rank[s]; dup {
			return nil, fail(fmt.Sprintf("severities.%d", i), "severity %q is listed twice", s)
		}
		p.rank[s] = i
	}
	if f.Timezone == "" {
		f.Timezone = calendar.DefaultTimezone
	}
	if p.loc, err = time.LoadLocation(f.Timezone); err != nil {
		return nil, fail("timezone", "unknown timezone %q (want e.g. Asia/Shanghai)", f.Timezone)
	}
	if f.Holidays == "" {
		p.holidays = calendar.DefaultHolidays()
	} else if p.holidays, err = calendar.LoadHolidays(f.Holidays); err != nil {
		return nil, fail("holidays", "%v", err)
	}
	if len(f.BusinessHours) == 0 {
		f.BusinessHours = calendar.DefaultBusinessHours
	}
	for i, oh := range f.BusinessHours {
		if _, err := calendar.NewHours(calendar.HoursConfig{Weekly: []inventory.OpeningHours{oh}}); err != nil {
			return nil, fail(fmt.Sprintf("business_hours.%d", i), "%v", err)
		}
	}
	if p.business, err = calendar.Business(f.BusinessHours, p.loc, p.holidays); err != nil {
		return nil, fail("business_hours", "%v", err)
	}
	for i, s := range f.SitesOpenOnHolidays {
		if s == "" || p.openOnHol[s] {
			return nil, fail(fmt.Sprintf("sites_open_on_holidays.%d", i), "site %q: empty or listed twice", s)
		}
		p.openOnHol[s] = true
	}
	if f.FarKm < 0 {
		return nil, fail("far_km", "far_km %g is negative", f.FarKm)
	}
	if f.FarKm == 0 {
		f.FarKm = DefaultFarKm
	}
	if err := p.checkTargets("targets", &f.Targets); err != nil {
		return nil, err
	}
	src := presetSources[f.Preset]
	p.base = layered{farKm: f.FarKm}
	p.base.apply(&preset.Targets, func(i int) string { return src[i] })
	p.base.apply(&f.Targets, func(int) string { return "policy " + f.Name })
	for _, what := range [...]struct {
		idx   int
		field string
	}{{tResponse, "response"}, {tRepair, "repair"}} {
		e := &p.base.targets[what.idx]
		for _, s := range f.Severities {
			if e.duration(s) <= 0 {
				return nil, fail("targets."+what.field, "no %s time for severity %s: the %s preset sets none (the contract does); set within or by_severity",
					what.field, s, f.Preset)
			}
		}
	}
	p.byProvider = map[string]layered{}
	for _, name := range slices.Sorted(maps.Keys(f.Providers)) {
		c := f.Providers[name]
		field := "providers." + name
		if name == "" {
			return nil, fail("providers", "a provider without a name")
		}
		if c.FarKm < 0 {
			return nil, fail(field+".far_km", "far_km %g is negative", c.FarKm)
		}
		if err := p.checkTargets(field+".targets", &c.Targets); err != nil {
			return nil, err
		}
		l := p.base // the array of targets copies; their maps are replaced, never written
		if c.FarKm > 0 {
			l.farKm = c.FarKm
		}
		label := "contract " + name
		if c.Name != "" {
			label += " (" + c.Name + ")"
		}
		l.apply(&c.Targets, func(int) string { return label })
		p.byProvider[name] = l
	}
	p.file = f
	p.version = f.Name + "@" + p.hash()
	return p, nil
}

func (p *Policy) checkTargets(field string, t *Targets) error {
	var err error
	t.each(func(name string, tg *Target) {
		if err != nil || tg == nil {
			return
		}
		f := field + "." + name
		if tg.Clock != "" && !slices.Contains(Clocks, tg.Clock) {
			err = yamlfile.Fieldf(f+".clock", "clock %q is not one of %s", tg.Clock, strings.Join(Clocks, ", "))
			return
		}
		if tg.Within < 0 {
			err = yamlfile.Fieldf(f+".within", "within %s is negative", tg.Within)
			return
		}
		for _, s := range slices.Sorted(maps.Keys(tg.BySeverity)) {
			if _, ok := p.rank[s]; !ok {
				err = yamlfile.Fieldf(f+".by_severity."+s, "severity %q is not one of %s", s, strings.Join(p.severities(), ", "))
				return
			}
			if tg.BySeverity[s] <= 0 {
				err = yamlfile.Fieldf(f+".by_severity."+s, "the time of %s must be positive", s)
				return
			}
		}
	})
	return err
}

func (p *Policy) severities() []string {
	out := make([]string, len(p.rank))
	for s, i := range p.rank {
		out[i] = s
	}
	return out
}

// apply lays t over l: a target that sets durations replaces the durations
// below (within and by_severity together), one that sets a clock replaces
// the clock.
func (l *layered) apply(t *Targets, source func(int) string) {
	for i, tg := range [...]*Target{t.Response, t.NonWorkingDayResponse, t.Arrival, t.ArrivalFar, t.Repair} {
		if tg == nil {
			continue
		}
		e := &l.targets[i]
		if tg.hasDurations() {
			e.within, e.bySeverity, e.source = time.Duration(tg.Within), nil, source(i)
			if len(tg.BySeverity) > 0 {
				e.bySeverity = map[string]time.Duration{}
				for s, d := range tg.BySeverity {
					e.bySeverity[s] = time.Duration(d)
				}
			}
		}
		if tg.Clock != "" {
			e.clock = tg.Clock
		}
		if e.clock == "" {
			e.clock = Clock7x24
		}
	}
}

func (p *Policy) hash() string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	// The effective content: the file with its defaults and the presets'
	// targets (code can change them), then the holiday calendar in force.
	// The name is not hashed: it stands beside the hash.
	f := p.file
	f.Name = ""
	_ = enc.Encode(f)
	type eff struct {
		Within     time.Duration
		BySeverity map[string]time.Duration
		Clock      string
	}
	dump := func(l layered) any {
		var out [5]eff
		for i, e := range l.targets {
			out[i] = eff{e.within, e.bySeverity, e.clock}
		}
		return struct {
			FarKm   float64
			Targets [5]eff
		}{l.farKm, out}
	}
	_ = enc.Encode(dump(p.base))
	for _, name := range slices.Sorted(maps.Keys(p.byProvider)) {
		_ = enc.Encode(name)
		_ = enc.Encode(dump(p.byProvider[name]))
	}
	for _, y := range p.holidays.Years() {
		_ = enc.Encode(p.holidays.Year(y))
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Version is the policy's name and a hash of its effective content and
// holiday calendar ("tianjin-2026@3f2a9c01b7de"): a report prints it, and
// any change to a target, clock, preset or holiday changes it.
func (p *Policy) Version() string { return p.version }

// Name is the policy's name.
func (p *Policy) Name() string { return p.file.Name }

// Preset is the preset the policy builds on.
func (p *Policy) Preset() string { return p.file.Preset }

// File returns the policy as written, with its defaults filled in.
func (p *Policy) File() File { return p.file }

// Location is the policy's timezone.
func (p *Policy) Location() *time.Location { return p.loc }

// Holidays is the holiday calendar in force.
func (p *Policy) Holidays() *calendar.Holidays { return p.holidays }

// Business is the business-hours clock.
func (p *Policy) Business() *calendar.Hours { return p.business }

// SiteClock returns the clock of a site's opening hours, closed on
// holidays unless the policy lists the site as open on them.
func (p *Policy) SiteClock(site inventory.Site) (*calendar.Hours, error) {
	rule := calendar.FollowHolidays
	if p.openOnHol[site.ID] {
		rule = calendar.IgnoreHolidays
	}
	return calendar.SiteHours(site, p.holidays, rule)
}

// Severities lists the severities, the most severe first.
func (p *Policy) Severities() []string { return slices.Clone(p.file.Severities) }

// Rank is a severity's place in Severities (0 is the most severe), or -1
// for a severity the policy does not know.
func (p *Policy) Rank(severity string) int {
	if r, ok := p.rank[severity]; ok {
		return r
	}
	return -1
}

// Higher reports whether severity a is more severe than b; a known
// severity is higher than an unknown one.
func (p *Policy) Higher(a, b string) bool {
	ra, rb := p.Rank(a), p.Rank(b)
	return ra >= 0 && (rb < 0 || ra < rb)
}

// NonWorkingDay reports whether t falls on a non-working day in the
// policy's timezone: a weekend day that is no make-up day, or a holiday.
func (p *Policy) NonWorkingDay(t time.Time) bool {
	return !p.holidays.WorkingDay(calendar.DateOf(t, p.loc))
}

// Target returns the target of kind (Response, Arrival or Repair) for c.
func (p *Policy) Target(kind string, c Case) Resolved {
	l, ok := p.byProvider[c.Provider]
	if !ok {
		l = p.base
	}
	var e *effective
	switch kind {
	case Response:
		e = &l.targets[tResponse]
		if nw := &l.targets[tNonWorking]; c.NonWorkingDay && nw.duration(c.Severity) > 0 {
			e = nw
		}
	case Arrival:
		e = &l.targets[tArrival]
		if c.DistanceKm > l.farKm {
			e = &l.targets[tArrivalFar]
		}
	case Repair:
		e = &l.targets[tRepair]
	default:
		return Resolved{Kind: kind}
	}
	r := Resolved{Kind: kind, Clock: e.clock}
	if p.Rank(c.Severity) >= 0 {
		r.Within = e.duration(c.Severity)
	}
	if r.Within > 0 {
		r.Source = e.source
	}
	return r
}

// Providers lists the providers with a contract.
func (p *Policy) Providers() []string { return slices.Sorted(maps.Keys(p.byProvider)) }
