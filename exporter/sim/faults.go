package sim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kioskmon/kioskmon/faults"
	"github.com/kioskmon/kioskmon/yamlfile"
)

// Injection is one fault the simulator caused: a line of the ground truth.
type Injection struct {
	Kiosk string    `json:"kiosk"`
	Fault string    `json:"fault"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Device is the peripheral concerned, for faults of one device.
	Device string `json:"device,omitempty"`
	// Onsite is when the engineer arrived and put the kiosk in service mode,
	// for faults repaired on site; the repair ends at End.
	Onsite time.Time `json:"onsite,omitzero"`
}

// ScriptEntry is one fault of a --faults file.
type ScriptEntry struct {
	// At is the start, from the beginning of the run, in simulated time.
	At    yamlfile.Duration `yaml:"at"`
	Kiosk string            `yaml:"kiosk"`
	Fault string            `yaml:"fault"`
	For   yamlfile.Duration `yaml:"for"`
	// Device picks the peripheral of hw.peripheral_not_responding.
	Device string `yaml:"device"`
	// Onsite, if set, is when the engineer arrives, from the fault's start;
	// without it, hardware faults get an arrival at 60% of their duration.
	Onsite *yamlfile.Duration `yaml:"onsite"`
}

// LoadScript reads a --faults file: a YAML list of ScriptEntry. Every error
// names the file and line. kiosks are the ids the run simulates.
func LoadScript(path string, kiosks map[string]bool) ([]ScriptEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read faults script: %w", err)
	}
	return ParseScript(data, path, kiosks)
}

// ParseScript parses a faults script (see LoadScript).
func ParseScript(data []byte, file string, kiosks map[string]bool) ([]ScriptEntry, error) {
	var entries []ScriptEntry
	lines, err := yamlfile.Decode(data, file, &entries)
	if err != nil {
		return nil, err
	}
	fail := func(i int, field, format string, args ...any) error {
		line := lines.Line(fmt.Sprintf("%d.%s", i, field))
		if line == 0 {
			line = lines.Line(fmt.Sprint(i))
		}
		return fmt.Errorf("%s:%d: entry %d: %s: %s", file, line, i+1, field, fmt.Sprintf(format, args...))
	}
	for i, e := range entries {
		f := faults.Lookup(e.Fault)
		switch {
		case e.Fault == "":
			return nil, fail(i, "fault", "is required (one of %s)", strings.Join(injectableIDs(), ", "))
		case f == nil:
			return nil, fail(i, "fault", "%q is not a fault id (one of %s)", e.Fault, strings.Join(injectableIDs(), ", "))
		case !f.Injectable:
			return nil, fail(i, "fault", "%s cannot be injected: it follows from the simulated behaviour", e.Fault)
		case e.Kiosk == "":
			return nil, fail(i, "kiosk", "is required")
		case !kiosks[e.Kiosk]:
			return nil, fail(i, "kiosk", "%q is not one of the simulated kiosks (%s)", e.Kiosk, kioskRange(kiosks))
		case e.At < 0:
			return nil, fail(i, "at", "%s is negative", e.At)
		case e.For <= 0:
			return nil, fail(i, "for", "is required and must be positive, e.g. 20m")
		case e.Device != "" && e.Fault != faults.PeripheralNotResponding:
			return nil, fail(i, "device", "applies to %s only", faults.PeripheralNotResponding)
		case e.Device != "" && !slices.Contains(notRespondingCandidates, e.Device):
			return nil, fail(i, "device", "%q is not one of %s", e.Device, strings.Join(notRespondingCandidates, ", "))
		case e.Onsite != nil && (*e.Onsite < 0 || *e.Onsite > e.For):
			return nil, fail(i, "onsite", "%s is not within the fault's duration %s", *e.Onsite, e.For)
		}
	}
	slices.SortStableFunc(entries, func(a, b ScriptEntry) int { return int(a.At - b.At) })
	return entries, nil
}

func injectableIDs() []string {
	var ids []string
	for _, f := range faults.All {
		if f.Injectable {
			ids = append(ids, f.ID)
		}
	}
	return ids
}

func kioskRange(kiosks map[string]bool) string {
	ids := make([]string, 0, len(kiosks))
	for id := range kiosks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if len(ids) <= 3 {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s, %s ... %s", ids[0], ids[1], ids[len(ids)-1])
}

// faultWeights make random faults follow field experience: consumables and
// printers fail most, tampering is rare.
var faultWeights = map[string]float64{
	faults.PaperOut: 3, faults.TonerOut: 1, faults.PaperJam: 2, faults.PrinterFault: 1,
	faults.UPSRuntimeWeak: 0.5, faults.BlueWhiteScreen: 1, faults.HostSaturated: 1,
	faults.PeripheralNotResponding: 2, faults.ScreenBlurred: 0.5, faults.IDReaderFault: 1, faults.LightsDim: 0.5,
	faults.WrongOrNoData: 1, faults.PageSlow: 1, faults.ServiceUnresponsive: 1, faults.ClientLag: 1,
	faults.PageTampered: 0.2, faults.PageUnreachable: 0.5,
	faults.HighLatency: 1, faults.PacketLoss: 1, faults.LinkDown: 1, faults.IPChanged: 0.5,
	faults.MainsLost: 0.7, faults.KioskOffline: 1, faults.ClockWrong: 0.3,
}

// repairedOnSite: an engineer travels to the kiosk and switches service
// mode on while repairing. The others are handled remotely.
func repairedOnSite(id string) bool {
	switch faults.Lookup(id).Category {
	case faults.Hardware, faults.Consumables:
		return true
	}
	return id == faults.LinkDown
}

// engine injects and repairs faults and writes the truth.
type engine struct {
	start    time.Time
	rate     float64 // random faults per kiosk per day; 0 with a script
	script   map[string][]ScriptEntry
	weights  []string
	cum      []float64
	truth    *truthWriter
	injected atomic.Int64
	active   atomic.Int64
}

func newEngine(start time.Time, rate float64, script []ScriptEntry, truth *truthWriter) *engine {
	e := &engine{start: start, rate: rate, truth: truth}
	if script != nil {
		e.rate = 0
		e.script = map[string][]ScriptEntry{}
		for _, s := range script {
			e.script[s.Kiosk] = append(e.script[s.Kiosk], s)
		}
	}
	total := 0.0
	for _, id := range injectableIDs() {
		total += faultWeights[id]
		e.weights = append(e.weights, id)
		e.cum = append(e.cum, total)
	}
	return e
}

// kioskFaults is a kiosk's part of the engine.
type kioskFaults struct {
	script     []ScriptEntry
	nextRandom time.Time
}

func (e *engine) forKiosk(k *Kiosk) {
	k.faults.script = e.script[k.Kiosk.ID]
	if e.rate > 0 {
		k.faults.nextRandom = e.start.Add(e.randomGap(k.rng))
	}
}

func (e *engine) randomGap(rng *rand.Rand) time.Duration {
	return time.Duration(rng.ExpFloat64() / e.rate * float64(24*time.Hour))
}

// apply repairs k's faults that end by t and injects the ones that start.
func (e *engine) apply(k *Kiosk, t time.Time) {
	for id, in := range k.active {
		if !in.End.After(t) {
			e.repair(k, id, in, in.End)
		}
	}
	for len(k.faults.script) > 0 {
		s := k.faults.script[0]
		at := e.start.Add(time.Duration(s.At))
		if at.After(t) {
			break
		}
		k.faults.script = k.faults.script[1:]
		in := &Injection{Kiosk: k.Kiosk.ID, Fault: s.Fault, Start: at, End: at.Add(time.Duration(s.For)), Device: s.Device}
		if s.Onsite != nil {
			in.Onsite = at.Add(time.Duration(*s.Onsite))
		} else if repairedOnSite(s.Fault) {
			in.Onsite = at.Add(time.Duration(s.For) * 6 / 10)
		}
		e.inject(k, in)
	}
	for e.rate > 0 && !k.faults.nextRandom.After(t) {
		at := k.faults.nextRandom
		k.faults.nextRandom = at.Add(e.randomGap(k.rng))
		// A fault nobody could see (the kiosk is off), or that is not one
		// (outside opening hours, Fujian 2022 §7.1), is not injected.
		if !k.poweredAt(at) || !k.open.isOpen(at) {
			continue
		}
		id := e.pick(k.rng)
		f := faults.Lookup(id)
		median := 2 * time.Hour
		if f.Class == faults.Severe {
			median = 90 * time.Minute
		}
		d := time.Duration(float64(median) * math.Exp(0.6*k.rng.NormFloat64()))
		d = min(max(d, 15*time.Minute), 10*time.Hour).Round(time.Second)
		in := &Injection{Kiosk: k.Kiosk.ID, Fault: id, Start: at, End: at.Add(d)}
		if repairedOnSite(id) {
			in.Onsite = at.Add(time.Duration(float64(d) * (0.4 + 0.4*k.rng.Float64()))).Round(time.Second)
		}
		e.inject(k, in)
	}
}

func (e *engine) pick(rng *rand.Rand) string {
	r := rng.Float64() * e.cum[len(e.cum)-1]
	i, _ := slices.BinarySearch(e.cum, r)
	return e.weights[min(i, len(e.weights)-1)]
}

func (e *engine) inject(k *Kiosk, in *Injection) {
	if k.active[in.Fault] != nil {
		return // already there: one fault of a kind at a time
	}
	switch in.Fault {
	case faults.PeripheralNotResponding:
		if in.Device == "" {
			var candidates []string
			for _, d := range k.devices {
				if slices.Contains(notRespondingCandidates, d.name) {
					candidates = append(candidates, d.name)
				}
			}
			in.Device = candidates[k.rng.IntN(len(candidates))]
		}
	case faults.IPChanged:
		k.addressChanges++
	case faults.ClockWrong:
		k.clockSkew.Store(int64(time.Duration(3+k.rng.IntN(12)) * time.Minute))
	case faults.LinkDown:
		k.linkDown.Store(true)
	}
	k.active[in.Fault] = in
	e.injected.Add(1)
	e.active.Add(1)
}

// repair ends a fault at t; the engineer leaves the kiosk as new.
func (e *engine) repair(k *Kiosk, id string, in *Injection, t time.Time) {
	delete(k.active, id)
	in.End = t
	if !in.Onsite.IsZero() && in.Onsite.After(t) {
		in.Onsite = time.Time{} // the run ended before the engineer arrived
	}
	switch id {
	case faults.PaperOut:
		k.paper = paperCapacity
	case faults.TonerOut:
		k.toner = tonerCapacity
	case faults.UPSRuntimeWeak:
		k.upsHealth = 1
	case faults.IPChanged:
		k.address = fmt.Sprintf("%s%d", k.address[:strings.LastIndexByte(k.address, '.')+1], 100+k.rng.IntN(150))
		k.addressChanges++
	case faults.ClockWrong:
		k.clockSkew.Store(0)
	case faults.LinkDown:
		k.linkDown.Store(false)
	}
	e.active.Add(-1)
	e.truth.write(in)
}

// finish ends every fault still active at t (the end of the run).
func (e *engine) finish(k *Kiosk, t time.Time) {
	for id, in := range k.active {
		e.repair(k, id, in, t)
	}
}

// truthWriter writes Injections as JSON lines, each on its own line as
// soon as the fault is repaired.
type truthWriter struct {
	mu  sync.Mutex
	w   *bufio.Writer
	c   io.Closer
	err error
}

func newTruthWriter(path string) (*truthWriter, error) {
	if path == "" {
		return &truthWriter{}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create truth file: %w", err)
	}
	return &truthWriter{w: bufio.NewWriter(f), c: f}, nil
}

func (t *truthWriter) write(in *Injection) {
	if t.w == nil {
		return
	}
	line, err := json.Marshal(struct {
		Kiosk  string `json:"kiosk"`
		Fault  string `json:"fault"`
		Start  string `json:"start"`
		End    string `json:"end"`
		Device string `json:"device,omitempty"`
		Onsite string `json:"onsite,omitempty"`
	}{in.Kiosk, in.Fault, rfc3339(in.Start), rfc3339(in.End), in.Device, rfc3339(in.Onsite)})
	t.mu.Lock()
	defer t.mu.Unlock()
	if err == nil {
		_, err = t.w.Write(append(line, '\n'))
	}
	if err == nil {
		err = t.w.Flush()
	}
	if err != nil && t.err == nil {
		t.err = fmt.Errorf("write truth file: %w", err)
	}
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func (t *truthWriter) Close() error {
	if t.c == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.c.Close(); err != nil && t.err == nil {
		t.err = err
	}
	return t.err
}
