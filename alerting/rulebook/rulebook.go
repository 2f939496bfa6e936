// Package rulebook is the grading rulebook: one entry per fault of the
// catalogue (../../faults), with the PromQL expression that detects it over
// the exporter's metrics, its severity in each preset, the standard's
// remedy and the inspection checklist item it covers. It compiles to
// standard Prometheus rule files that Prometheus and vmalert load unchanged.
package rulebook

import (
	_ "embed"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/kioskmon/kioskmon/faults"
	"github.com/kioskmon/kioskmon/yamlfile"
)

// Rulebook is the content of a rulebook file.
type Rulebook struct {
	Version string `yaml:"version"`
	// Preset names the severity scale used when none is chosen.
	Preset string `yaml:"preset"`
	// Interval of evaluation. Default 30s.
	Interval  yamlfile.Duration `yaml:"interval"`
	Faults    []Fault           `yaml:"faults"`
	Overrides []Override        `yaml:"overrides"`

	lines *yamlfile.Lines
	file  string
}

// Fault is one graded fault.
type Fault struct {
	ID       string `yaml:"id"`
	Category string `yaml:"category"`
	NameZH   string `yaml:"name_zh"`
	NameEN   string `yaml:"name_en"`
	// Expr is PromQL over the catalogue's metrics; each series it returns
	// is one alert, labelled at least by kiosk.
	Expr          string            `yaml:"expr"`
	For           yamlfile.Duration `yaml:"for"`
	KeepFiringFor yamlfile.Duration `yaml:"keep_firing_for"`
	// Severity in each preset, by preset name.
	Severity map[string]string `yaml:"severity"`
	// Remedy is the standard's remedy, step by step.
	Remedy []string `yaml:"remedy"`
	// Inspection is the 2-weekly checklist item (Fujian 2022 §8.2) this
	// fault fails, if any.
	Inspection string `yaml:"inspection"`
	// Scope says what suppresses the fault: "peripheral" faults are held
	// back while the kiosk is offline or its link is down, "service"
	// faults only matter while the site is open. See the evaluator.
	Scope []string `yaml:"scope"`
}

// Override changes a fault's severity for one provider's contract.
type Override struct {
	Provider string            `yaml:"provider"`
	Fault    string            `yaml:"fault"`
	Severity map[string]string `yaml:"severity"`
}

// Preset is a severity scale.
type Preset struct {
	Name   string
	Source string
	// Levels from the most to the least severe, with their repair targets.
	Levels []Level
}

// Level is one grade of a preset.
type Level struct {
	Name   string
	Repair time.Duration // mean repair time target; 0 if the source sets none
}

// Presets are the severity scales of the standards.
var Presets = map[string]Preset{
	"db12-1060": {Name: "db12-1060", Source: "DB12/T 1060—2021 table 2",
		Levels: []Level{{"urgent", 2 * time.Hour}, {"moderate", 4 * time.Hour}, {"minor", 8 * time.Hour}}},
	"fujian-2022": {Name: "fujian-2022", Source: "Fujian 2022 table A.1",
		Levels: []Level{{"severe", 0}, {"general", 0}}},
}

// DefaultPreset is used when neither the command line nor the rulebook chooses.
const DefaultPreset = "db12-1060"

// Categories of faults.
var Categories = []string{"hardware", "software", "network", "power", "consumables"}

// InspectionItems is the remote inspection checklist of Fujian 2022 §8.2.
var InspectionItems = []string{"signage", "display", "scanner", "camera", "fingerprint_reader", "card_reader",
	"printer", "consumables", "client_pages", "network"}

// Scopes of suppression.
var Scopes = []string{"peripheral", "service_hours"}

//go:embed default.yml
var defaultRulebook []byte

// Default returns the built-in rulebook.
func Default() *Rulebook {
	rb, err := Parse(defaultRulebook, "default rulebook")
	if err != nil {
		panic(err) // the tests parse it
	}
	return rb
}

// Load reads and validates a rulebook file; "" is the built-in one.
func Load(path string) (*Rulebook, error) {
	if path == "" {
		return Default(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rulebook: %w", err)
	}
	return Parse(data, path)
}

// Parse reads a rulebook (file names it in errors) and validates it.
func Parse(data []byte, file string) (*Rulebook, error) {
	rb := &Rulebook{}
	lines, err := yamlfile.Decode(data, file, rb)
	if err != nil {
		return nil, err
	}
	rb.lines, rb.file = lines, file
	if rb.Interval == 0 {
		rb.Interval = yamlfile.Duration(30 * time.Second)
	}
	if rb.Preset == "" {
		rb.Preset = DefaultPreset
	}
	return rb, rb.validate()
}

var idRe = regexp.MustCompile(`^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$`)

func (rb *Rulebook) fail(field, format string, args ...any) error {
	where := rb.file
	for path := field; path != ""; {
		if line := rb.lines.Line(path); line > 0 {
			where = fmt.Sprintf("%s:%d", rb.file, line)
			break
		}
		i := strings.LastIndexByte(path, '.')
		path = path[:max(i, 0)]
	}
	return fmt.Errorf("%s: %s: %s", where, field, fmt.Sprintf(format, args...))
}

func presetNames() string {
	names := make([]string, 0, len(Presets))
	for n := range Presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func (rb *Rulebook) validate() error {
	if rb.Version != "v1" {
		return rb.fail("version", "%q is not a known version (want v1)", rb.Version)
	}
	if _, ok := Presets[rb.Preset]; !ok {
		return rb.fail("preset", "%q is not one of %s", rb.Preset, presetNames())
	}
	if d := time.Duration(rb.Interval); d < time.Second || d > 10*time.Minute {
		return rb.fail("interval", "%s is not between 1s and 10m", rb.Interval)
	}
	if len(rb.Faults) == 0 {
		return rb.fail("faults", "the rulebook grades no fault")
	}
	p := parser.NewParser(parser.Options{})
	seen := map[string]bool{}
	for i, f := range rb.Faults {
		field := func(name string) string { return fmt.Sprintf("faults.%d.%s", i, name) }
		switch {
		case !idRe.MatchString(f.ID):
			return rb.fail(field("id"), "%q is not a fault id such as hw.paper_out", f.ID)
		case seen[f.ID]:
			return rb.fail(field("id"), "%s is graded twice", f.ID)
		case !slices.Contains(Categories, f.Category):
			return rb.fail(field("category"), "%q is not one of %s", f.Category, strings.Join(Categories, ", "))
		case f.NameZH == "" || f.NameEN == "":
			return rb.fail(field("name_en"), "name_zh and name_en are required: reports and alerts show them")
		case strings.TrimSpace(f.Expr) == "":
			return rb.fail(field("expr"), "is required")
		case f.For < 0 || f.KeepFiringFor < 0:
			return rb.fail(field("for"), "is negative")
		case len(f.Remedy) == 0:
			return rb.fail(field("remedy"), "give the standard's remedy steps")
		case f.Inspection != "" && !slices.Contains(InspectionItems, f.Inspection):
			return rb.fail(field("inspection"), "%q is not a checklist item (%s)", f.Inspection, strings.Join(InspectionItems, ", "))
		}
		seen[f.ID] = true
		if known := faults.Lookup(f.ID); known != nil && string(known.Category) != f.Category {
			return rb.fail(field("category"), "%s is in category %s in the fault catalogue, not %s", f.ID, known.Category, f.Category)
		}
		for j, s := range f.Scope {
			if !slices.Contains(Scopes, s) {
				return rb.fail(fmt.Sprintf("faults.%d.scope.%d", i, j), "%q is not one of %s", s, strings.Join(Scopes, ", "))
			}
		}
		expr, err := p.ParseExpr(f.Expr)
		if err != nil {
			return rb.fail(field("expr"), "not PromQL that Prometheus and vmalert load: %v", err)
		}
		if expr.Type() != parser.ValueTypeVector {
			return rb.fail(field("expr"), "gives a %s; an alert needs an instant vector", expr.Type())
		}
		if err := checkSeverity(f.Severity, true); err != nil {
			return rb.fail(field("severity"), "%v", err)
		}
	}
	for i, o := range rb.Overrides {
		field := func(name string) string { return fmt.Sprintf("overrides.%d.%s", i, name) }
		if o.Provider == "" {
			return rb.fail(field("provider"), "is required")
		}
		if !seen[o.Fault] {
			return rb.fail(field("fault"), "%q is not a fault of this rulebook", o.Fault)
		}
		if err := checkSeverity(o.Severity, false); err != nil {
			return rb.fail(field("severity"), "%v", err)
		}
	}
	return nil
}

// checkSeverity checks a preset -> level map; complete asks for every preset.
func checkSeverity(sev map[string]string, complete bool) error {
	for name, level := range sev {
		p, ok := Presets[name]
		if !ok {
			return fmt.Errorf("%q is not a preset (%s)", name, presetNames())
		}
		if !slices.ContainsFunc(p.Levels, func(l Level) bool { return l.Name == level }) {
			var names []string
			for _, l := range p.Levels {
				names = append(names, l.Name)
			}
			return fmt.Errorf("%s: %q is not one of %s", name, level, strings.Join(names, ", "))
		}
	}
	if complete {
		for name := range Presets {
			if sev[name] == "" {
				return fmt.Errorf("no grade for preset %s", name)
			}
		}
	}
	if len(sev) == 0 {
		return fmt.Errorf("is required")
	}
	return nil
}

// Fault returns the entry of id, or nil.
func (rb *Rulebook) Fault(id string) *Fault {
	for i := range rb.Faults {
		if rb.Faults[i].ID == id {
			return &rb.Faults[i]
		}
	}
	return nil
}

// Severity is the severity of fault id for a kiosk of provider under preset,
// with the provider's contract override applied, as the compiled rules
// label its alerts; "" if there is no such fault.
func (rb *Rulebook) Severity(id, preset, provider string) string {
	if preset == "" {
		preset = rb.Preset
	}
	f := rb.Fault(id)
	if f == nil {
		return ""
	}
	for _, o := range rb.Overrides {
		if o.Fault == id && o.Provider == provider && o.Severity[preset] != "" {
			return o.Severity[preset]
		}
	}
	return f.Severity[preset]
}
