package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/exporter/catalog"
	"github.com/kioskmon/kioskmon/faults"
	"github.com/kioskmon/kioskmon/ingest/inventory"
)

// A kiosk's simulated devices and application. The numbers are plausible
// for a hall kiosk: a 500-sheet A4 tray, a 3000-page toner cartridge, a
// receipt roll of 400 slips, a UPS good for 40 minutes when new.
const (
	paperCapacity   = 500
	tonerCapacity   = 3000
	receiptCapacity = 400
	upsRuntimeNew   = 2400 // s at full charge and health
	pingsPerRound   = 10
)

type device struct{ name, kind string }

// Every kiosk has these; the optional ones depend on the model.
var (
	baseDevices = []device{
		{"idreader", catalog.KindIDCardReader}, {"camera", catalog.KindCamera}, {"codescanner", catalog.KindCodeScanner},
		{"a4printer", catalog.KindA4Printer}, {"receiptprinter", catalog.KindReceiptPrinter},
		{"touchscreen", catalog.KindTouchScreen}, {"display", catalog.KindDisplay}, {"lighting", catalog.KindLighting},
	}
	optionalDevices = []device{
		{"fingerprint", catalog.KindFingerprintReader}, {"docscanner", catalog.KindDocumentScanner}, {"signaturepad", catalog.KindSignaturePad},
	}
	// notRespondingCandidates are the devices hw.peripheral_not_responding
	// picks from when a script names none (the printer and the ID card
	// reader have faults of their own).
	notRespondingCandidates = []string{"camera", "codescanner", "touchscreen", "fingerprint", "docscanner", "signaturepad"}
)

// A citizen's visit walks these pages; medians are the page load time.
var pages = []struct {
	name   string
	median float64
}{{"home", 0.35}, {"login", 0.8}, {"service_select", 0.45}, {"form", 0.6}, {"print", 1.2}, {"done", 0.3}}

// service is a transaction a citizen comes for.
type service struct {
	name        string
	weight      float64
	a4Pages     int // printed per transaction, on average
	needsReader bool
}

var services = []service{
	{"social_security_certificate", 0.3, 2, true},
	{"household_register_extract", 0.2, 1, true},
	{"tax_payment_certificate", 0.15, 2, true},
	{"traffic_violation_payment", 0.2, 0, false},
	{"appointment_booking", 0.15, 0, false},
}

var errorKinds = [...]string{"http_4xx", "http_5xx", "timeout", "no_data", "wrong_data", "client"}

var restartReasons = []string{"crash", "hang", "update", "manual"}

// netProfile is a site's network quality.
type netProfile struct {
	rtt  float64 // median, s
	loss float64 // per echo request
}

// Kiosk is one simulated kiosk. Step moves it through simulated time;
// Gather reports it through the catalogue as the exporter's collectors
// would. A Kiosk is used by one goroutine at a time; linkDown and clockSkew
// are also read by its push client.
type Kiosk struct {
	Member
	index                int
	rng                  *rand.Rand
	devices              []device
	net                  netProfile
	poweredOffWhenClosed bool
	open                 *openCache
	osName, arch         string

	last      time.Time // of the last Step
	on        bool
	bootedAt  time.Time
	everOn    bool
	upsEmpty  bool // the battery ran flat during a mains outage
	heartbeat time.Time

	paper, toner, receipt   float64 // sheets, pages, slips left
	printedA4, printedSlips float64
	upsHealth, upsCharge    float64
	cpu, memory, disk       float64

	requests     [len(pageNames)]float64
	loadBuckets  [len(pageNames)][]uint64
	loadCount    [len(pageNames)]uint64
	loadSum      [len(pageNames)]float64
	errors       [len(pageNames)][len(errorKinds)]float64
	transactions []float64
	restarts     [4]float64
	lastCrash    time.Time

	probeSent, probeReceived float64
	rtt, rttMax, loss        float64
	address                  string
	addressChanges           float64

	// Faults active now, by fault id, and the ones to come.
	active map[string]*Injection
	faults kioskFaults
	engine *engine

	linkDown  atomic.Bool
	clockSkew atomic.Int64 // ns the kiosk's clock is behind
}

var pageNames = [6]string{"home", "login", "service_select", "form", "print", "done"}

// openCache answers "is the site open" once per simulated minute: the
// inventory's answer parses opening hours on every call.
type openCache struct {
	site   *inventory.Site
	minute int64
	open   bool
}

func (c *openCache) isOpen(t time.Time) bool {
	m := t.Unix() / 60
	if m != c.minute || c.minute == 0 {
		open, err := c.site.IsOpen(t)
		c.minute, c.open = m, err != nil || open // a bad timezone: assume open
	}
	return c.open
}

func newKiosk(m Member, index int, seed uint64, open *openCache) *Kiosk {
	rng := rand.New(rand.NewPCG(seed, uint64(index)*0x9e3779b97f4a7c15+1))
	k := &Kiosk{Member: m, index: index, rng: rng, open: open, active: map[string]*Injection{}}
	k.devices = append(k.devices, baseDevices...)
	for _, d := range optionalDevices {
		if rng.IntN(3) > 0 {
			k.devices = append(k.devices, d)
		}
	}
	s := index / kiosksPerSite
	// Halls of even number switch their kiosks off at closing time.
	k.poweredOffWhenClosed = len(m.Site.OpeningHours) > 0 && s%2 == 0
	switch s % 3 { // city centre, suburb, county town
	case 0:
		k.net = netProfile{rtt: 0.008 + rng.Float64()*0.01, loss: 0.0005}
	case 1:
		k.net = netProfile{rtt: 0.02 + rng.Float64()*0.02, loss: 0.003}
	default:
		k.net = netProfile{rtt: 0.045 + rng.Float64()*0.04, loss: 0.01}
	}
	switch r := rng.IntN(20); {
	case r < 13:
		k.osName, k.arch = "windows", "amd64"
	case r < 16:
		k.osName, k.arch = "linux", "amd64"
	case r < 18:
		k.osName, k.arch = "linux", "arm64"
	default:
		k.osName, k.arch = "linux", "loong64"
	}
	k.paper = paperCapacity * (0.3 + 0.7*rng.Float64())
	k.toner = tonerCapacity * (0.2 + 0.8*rng.Float64())
	k.receipt = receiptCapacity * (0.3 + 0.7*rng.Float64())
	k.printedA4 = float64(rng.IntN(200000))
	k.printedSlips = float64(rng.IntN(50000))
	k.upsHealth = 0.6 + 0.4*rng.Float64() // batteries of mixed age
	k.upsCharge = 1
	k.disk = 0.3 + 0.3*rng.Float64()
	k.address = fmt.Sprintf("10.%d.%d.%d", 20+s%len(districts), s%250, 10+index%kiosksPerSite)
	k.transactions = make([]float64, len(services))
	for i := range k.loadBuckets {
		k.loadBuckets[i] = make([]uint64, len(catalog.PageLoadBuckets))
	}
	return k
}

// has reports whether fault id is active.
func (k *Kiosk) has(id string) bool { return k.active[id] != nil }

// deviceFault returns the injection that concerns device name, if any.
func (k *Kiosk) deviceFault(id, name string) bool {
	in := k.active[id]
	return in != nil && (in.Device == "" || in.Device == name)
}

// poweredAt reports whether the kiosk runs at t.
func (k *Kiosk) poweredAt(t time.Time) bool {
	if k.has(faults.KioskOffline) || k.upsEmpty {
		return false
	}
	if k.poweredOffWhenClosed && !k.open.isOpen(t) && !k.has(faults.BlueWhiteScreen) {
		return false
	}
	return true
}

// Step advances the kiosk to t and reports whether it is on (and gathers).
func (k *Kiosk) Step(t time.Time) bool {
	dt := 15.0
	if !k.last.IsZero() {
		dt = t.Sub(k.last).Seconds()
	}
	k.last = t
	if k.engine != nil {
		k.engine.apply(k, t)
	}
	k.stepPower(t, dt)
	if !k.poweredAt(t) {
		k.on = false
		return false
	}
	if !k.on {
		k.boot(t)
	}
	open := k.open.isOpen(t)
	k.stepUsage(t, dt, open)
	k.stepStaff(dt, open)
	k.stepHost(dt)
	k.stepNetwork(t)
	k.stepApp(t)
	return true
}

// boot starts the kiosk: the exporter and the application start afresh,
// so their counters start from zero, as a real reboot makes them.
func (k *Kiosk) boot(t time.Time) {
	k.on, k.bootedAt, k.heartbeat = true, t, t
	if k.everOn {
		k.requests = [len(pageNames)]float64{}
		k.errors = [len(pageNames)][len(errorKinds)]float64{}
		for i := range k.loadBuckets {
			clear(k.loadBuckets[i])
			k.loadCount[i], k.loadSum[i] = 0, 0
		}
		clear(k.transactions)
		k.restarts = [4]float64{}
		k.probeSent, k.probeReceived, k.addressChanges = 0, 0, 0
	}
	k.everOn = true
}

func (k *Kiosk) stepPower(t time.Time, dt float64) {
	// Batteries lose about 1.5% of their capacity a month; at 55% the
	// yearly maintenance replaces them.
	k.upsHealth -= dt / (30 * 86400) * 0.015
	if k.upsHealth < 0.55 {
		k.upsHealth = 1
	}
	if k.has(faults.MainsLost) {
		runtime := k.upsRuntimeFull()
		k.upsCharge -= dt / runtime
		if k.upsCharge <= 0.03 {
			k.upsCharge, k.upsEmpty = 0.03, true // the UPS shuts the kiosk down
		}
		return
	}
	k.upsEmpty = false
	k.upsCharge = math.Min(1, k.upsCharge+dt/7200)
}

func (k *Kiosk) effectiveUPSHealth() float64 {
	if k.has(faults.UPSRuntimeWeak) {
		return 0.1
	}
	return k.upsHealth
}

// upsRuntimeFull is the runtime at full charge at the present load.
func (k *Kiosk) upsRuntimeFull() float64 {
	return upsRuntimeNew * k.effectiveUPSHealth() * 0.3 / k.upsLoad()
}

func (k *Kiosk) upsLoad() float64 { return 0.22 + 0.12*k.cpu }

// trafficRate is citizen transactions per hour at local time t: a morning
// and an afternoon peak in halls; police stations are quieter at night.
func (k *Kiosk) trafficRate(t time.Time, open bool) float64 {
	if !open {
		return 0
	}
	loc, err := k.Site.Location()
	if err != nil {
		loc = time.UTC
	}
	h := float64(t.In(loc).Hour()) + float64(t.In(loc).Minute())/60
	rate := 1.5 + 6*math.Exp(-(h-10)*(h-10)/2) + 5*math.Exp(-(h-15)*(h-15)/2)
	if len(k.Site.OpeningHours) == 0 && (h < 7 || h > 21) {
		rate = 0.3
	}
	return rate
}

func (k *Kiosk) appWorks() bool {
	return !k.has(faults.ServiceUnresponsive) && !k.has(faults.BlueWhiteScreen)
}

func (k *Kiosk) printerWorks() bool {
	return k.paper >= 1 && k.toner >= 1 && !k.has(faults.PaperJam) && !k.has(faults.PrinterFault) &&
		!k.has(faults.PaperOut) && !k.has(faults.TonerOut)
}

// stepUsage plays the citizens' transactions of the last dt seconds.
func (k *Kiosk) stepUsage(t time.Time, dt float64, open bool) {
	if !k.appWorks() {
		return
	}
	n := poisson(k.rng, k.trafficRate(t, open)*dt/3600)
	slow := 1.0
	switch {
	case k.has(faults.PageSlow):
		slow = 12
	case k.has(faults.ClientLag):
		slow = 5
	case k.has(faults.HostSaturated):
		slow = 3
	}
	for range n {
		si, svc := k.pickService()
		for p := range pageNames {
			if svc.a4Pages == 0 && pageNames[p] == "print" {
				continue
			}
			k.requests[p]++
			seconds := pages[p].median * slow * math.Exp(0.45*k.rng.NormFloat64())
			k.observeLoad(p, seconds)
			switch {
			case k.has(faults.WrongOrNoData) && pageNames[p] != "home" && k.rng.Float64() < 0.35:
				k.errors[p][3+k.rng.IntN(2)]++ // no_data or wrong_data
			case k.has(faults.PageSlow) && seconds > 10:
				k.errors[p][2]++ // timeout
			case k.rng.Float64() < 0.003:
				k.errors[p][k.rng.IntN(3)]++
			}
		}
		if svc.needsReader && k.deviceFault(faults.IDReaderFault, "idreader") {
			k.errors[1][0]++ // login refused: the card was not read
			continue
		}
		if svc.a4Pages > 0 {
			if !k.printerWorks() {
				k.errors[4][5]++
				continue
			}
			sheets := float64(1 + k.rng.IntN(2*svc.a4Pages))
			sheets = math.Min(sheets, math.Floor(k.paper))
			k.paper -= sheets
			k.toner = math.Max(0, k.toner-sheets)
			k.printedA4 += sheets
		}
		if k.receipt >= 1 {
			k.receipt--
			k.printedSlips++
		}
		k.transactions[si]++
	}
}

func (k *Kiosk) pickService() (int, *service) {
	r := k.rng.Float64()
	for i := range services {
		r -= services[i].weight
		if r < 0 {
			return i, &services[i]
		}
	}
	return len(services) - 1, &services[len(services)-1]
}

func (k *Kiosk) observeLoad(p int, seconds float64) {
	for i, le := range catalog.PageLoadBuckets {
		if seconds <= le {
			k.loadBuckets[p][i]++
		}
	}
	k.loadCount[p]++
	k.loadSum[p] += seconds
}

// stepStaff: hall staff refill paper and receipt rolls when the kiosk says
// low, within an hour or so while the site is open; the provider replaces
// toner within half a day. Injected faults hold their consumable empty
// until their repair (see Engine).
func (k *Kiosk) stepStaff(dt float64, open bool) {
	if !open {
		return
	}
	if k.paper < 0.15*paperCapacity && !k.has(faults.PaperOut) && k.rng.Float64() < 1-math.Exp(-dt/3600) {
		k.paper = paperCapacity
	}
	if k.receipt < 0.1*receiptCapacity && k.rng.Float64() < 1-math.Exp(-dt/3600) {
		k.receipt = receiptCapacity
	}
	if k.toner < 0.05*tonerCapacity && !k.has(faults.TonerOut) && k.rng.Float64() < 1-math.Exp(-dt/(6*3600)) {
		k.toner = tonerCapacity
	}
}

func (k *Kiosk) stepHost(dt float64) {
	base := 0.06 + 0.03*k.rng.Float64()
	k.memory = 0.42 + 0.08*k.rng.Float64()
	if k.has(faults.HostSaturated) {
		base, k.memory = 0.95+0.05*k.rng.Float64(), 0.93+0.05*k.rng.Float64()
	}
	k.cpu = math.Min(1, base)
	k.disk = math.Min(0.95, k.disk+dt*2e-9)
}

func (k *Kiosk) stepNetwork(t time.Time) {
	if k.has(faults.LinkDown) {
		k.probeSent += pingsPerRound
		k.loss, k.rtt, k.rttMax = 1, 0, 0
		return
	}
	lossP, rtt := k.net.loss, k.net.rtt
	if k.has(faults.PacketLoss) {
		lossP = 0.25
	}
	if k.has(faults.HighLatency) {
		rtt = 0.35 + rtt*10
	}
	received := 0
	var rtts [pingsPerRound]float64
	for range pingsPerRound {
		if k.rng.Float64() >= lossP {
			rtts[received] = rtt * math.Exp(0.2*k.rng.NormFloat64())
			received++
		}
	}
	k.probeSent += pingsPerRound
	k.probeReceived += float64(received)
	k.loss = 1 - float64(received)/pingsPerRound
	k.rtt, k.rttMax = 0, 0
	if received > 0 {
		r := rtts[:received]
		slices.Sort(r)
		k.rtt, k.rttMax = r[len(r)/2], r[len(r)-1]
	}
}

func (k *Kiosk) stepApp(t time.Time) {
	switch {
	case k.has(faults.BlueWhiteScreen):
		// The screen is frozen: no heartbeat, the process still there.
	case k.has(faults.ServiceUnresponsive):
		// The application crashes and its watchdog restarts it, again and again.
		if t.Sub(k.lastCrash) >= 5*time.Minute {
			k.restarts[0]++
			k.lastCrash = t
		}
	case k.has(faults.ClientLag):
		k.heartbeat = t.Add(-time.Duration(5+k.rng.IntN(20)) * time.Second)
	default:
		k.heartbeat = t.Add(-time.Duration(k.rng.IntN(5)) * time.Second)
	}
}

// Gather writes the kiosk's state at t as its exporter would report it.
func (k *Kiosk) Gather(t time.Time, s *exporter.Snapshot) {
	s.Reset(t)
	k.gatherPrinters(s)
	k.gatherPeripherals(s)
	k.gatherApp(t, s)
	k.gatherNetwork(s)
	k.gatherUPS(s)
	k.gatherHost(t, s)
	k.gatherService(t, s)
	s.Add("kiosk_exporter_build_info", 1, exporter.Version, k.osName, k.arch)
	for _, c := range simulatedCollectors {
		s.Add("kiosk_exporter_collector_success", 1, c)
		s.Add("kiosk_exporter_collector_duration_seconds", 0.002+0.01*k.rng.Float64(), c)
	}
}

var simulatedCollectors = []string{"app", "host", "ipp", "network", "probe", "ups", "usb"}

func (k *Kiosk) gatherPrinters(s *exporter.Snapshot) {
	paper := k.paper
	if k.has(faults.PaperOut) {
		paper = 0
	}
	toner := k.toner
	if k.has(faults.TonerOut) {
		toner = 0
	}
	s.Add("kiosk_paper_level_ratio", paper/paperCapacity, "a4printer", "tray1")
	paperState := "ok"
	switch {
	case paper < 1:
		paperState = "empty"
	case paper < 0.1*paperCapacity:
		paperState = "low"
	}
	s.AddState("kiosk_paper_state", paperState, "a4printer", "tray1")
	s.Add("kiosk_toner_level_ratio", toner/tonerCapacity, "a4printer", "black", "black")
	receiptState := "ok"
	switch {
	case k.receipt < 1:
		receiptState = "empty"
	case k.receipt < 0.1*receiptCapacity:
		receiptState = "near_end"
	}
	s.AddState("kiosk_receipt_paper_state", receiptState, "receiptprinter")
	s.AddBool("kiosk_paper_jam", k.has(faults.PaperJam), "a4printer")
	var reasons [][2]string
	if paperState == "empty" {
		reasons = append(reasons, [2]string{"media-empty", "error"})
	} else if paperState == "low" {
		reasons = append(reasons, [2]string{"media-low", "warning"})
	}
	if toner < 1 {
		reasons = append(reasons, [2]string{"toner-empty", "error"})
	} else if toner < 0.1*tonerCapacity {
		reasons = append(reasons, [2]string{"toner-low", "warning"})
	}
	if k.has(faults.PaperJam) {
		reasons = append(reasons, [2]string{"media-jam", "error"})
	}
	if k.has(faults.PrinterFault) {
		reasons = append(reasons, [2]string{"other", "error"})
	}
	state := "idle"
	for _, r := range reasons {
		s.Add("kiosk_printer_state_reason", 1, "a4printer", r[0], r[1])
		if r[1] == "error" {
			state = "stopped"
		}
	}
	s.AddState("kiosk_printer_state", state, "a4printer")
	s.Add("kiosk_printed_pages_total", k.printedA4, "a4printer")
	s.Add("kiosk_printed_pages_total", k.printedSlips, "receiptprinter")
}

func (k *Kiosk) gatherPeripherals(s *exporter.Snapshot) {
	for _, d := range k.devices {
		state, code := catalog.StateOK, ""
		switch {
		case d.kind == catalog.KindA4Printer && k.has(faults.PrinterFault):
			state, code = catalog.StateFault, "E-0301"
		case d.kind == catalog.KindA4Printer && (k.has(faults.PaperJam) || k.has(faults.PaperOut) || k.has(faults.TonerOut)):
			state = catalog.StateFault
		case d.kind == catalog.KindIDCardReader && k.has(faults.IDReaderFault):
			state, code = catalog.StateFault, "0x41"
		case d.kind == catalog.KindDisplay && k.has(faults.ScreenBlurred):
			state = catalog.StateDegraded
		case d.kind == catalog.KindLighting && k.has(faults.LightsDim):
			state = catalog.StateDegraded
		case k.deviceFault(faults.PeripheralNotResponding, d.name):
			state = catalog.StateNotResponding
		}
		s.AddState("kiosk_peripheral_state", state, d.name, d.kind)
		if code != "" {
			s.Add("kiosk_peripheral_error", 1, d.name, d.kind, code)
		}
	}
}

func (k *Kiosk) gatherApp(t time.Time, s *exporter.Snapshot) {
	for p, page := range pageNames {
		s.AddHistogram("kiosk_app_page_load_seconds", k.loadBuckets[p], k.loadCount[p], k.loadSum[p], page)
		s.Add("kiosk_app_requests_total", k.requests[p], page)
		for e, kind := range errorKinds {
			if v := k.errors[p][e]; v > 0 {
				s.Add("kiosk_app_errors_total", v, page, kind)
			}
		}
	}
	for i, svc := range services {
		s.Add("kiosk_app_transactions_total", k.transactions[i], svc.name)
	}
	for i, r := range restartReasons {
		s.Add("kiosk_app_restarts_total", k.restarts[i], r)
	}
	s.AddBool("kiosk_app_up", !k.has(faults.ServiceUnresponsive))
	s.Add("kiosk_app_heartbeat_age_seconds", t.Sub(k.heartbeat).Seconds())

	probeOK, status, duration := true, 200.0, 0.05+0.1*k.rng.Float64()
	switch {
	case k.has(faults.LinkDown), k.has(faults.PageUnreachable):
		probeOK, status, duration = false, 503, 0.02
		if k.has(faults.LinkDown) {
			status, duration = 0, 10
		}
	case k.has(faults.PageSlow):
		duration = 6 + 6*k.rng.Float64()
	}
	s.AddBool("kiosk_app_page_probe_success", probeOK, "home")
	s.Add("kiosk_app_page_probe_duration_seconds", duration, "home")
	s.Add("kiosk_app_page_probe_status_code", status, "home")
	if probeOK {
		s.AddBool("kiosk_app_page_integrity_ok", !k.has(faults.PageTampered), "home")
	}
	apiUp := !k.has(faults.LinkDown) && !k.has(faults.IPChanged)
	s.AddBool("kiosk_platform_api_up", apiUp, "platform")
	if apiUp {
		s.Add("kiosk_platform_api_latency_seconds", 0.04+4*k.rtt+0.05*k.rng.Float64(), "platform")
	}
}

func (k *Kiosk) gatherNetwork(s *exporter.Snapshot) {
	const target = "gateway"
	s.Add("kiosk_network_packet_loss_ratio", k.loss, target)
	if k.loss < 1 {
		s.Add("kiosk_network_rtt_median_seconds", k.rtt, target)
		s.Add("kiosk_network_rtt_max_seconds", k.rttMax, target)
	}
	s.Add("kiosk_network_probe_sent_total", k.probeSent, target)
	s.Add("kiosk_network_probe_received_total", k.probeReceived, target)
	s.AddBool("kiosk_network_link_up", !k.has(faults.LinkDown), "eth0")
	address, ok := k.address, true
	if k.has(faults.IPChanged) {
		address, ok = fmt.Sprintf("169.254.%d.%d", 1+k.index/250%250, 1+k.index%250), false
	}
	s.Add("kiosk_network_address_info", 1, "eth0", address)
	s.AddBool("kiosk_network_address_ok", ok, "eth0")
	s.Add("kiosk_network_address_changes_total", k.addressChanges, "eth0")
	dnsOK := !k.has(faults.LinkDown) && !k.has(faults.IPChanged)
	s.AddBool("kiosk_dns_lookup_success", dnsOK, "platform")
	s.Add("kiosk_dns_lookup_seconds", 0.002+2*k.rtt, "platform")
}

func (k *Kiosk) gatherUPS(s *exporter.Snapshot) {
	const ups = "ups"
	onBattery := k.has(faults.MainsLost)
	runtime := k.upsCharge * k.upsRuntimeFull()
	s.AddBool("kiosk_ups_up", true, ups)
	s.AddBool("kiosk_ups_on_battery", onBattery, ups)
	s.AddBool("kiosk_ups_low_battery", onBattery && (runtime < 300 || k.upsCharge < 0.2), ups)
	s.AddBool("kiosk_ups_replace_battery", k.effectiveUPSHealth() < 0.3, ups)
	s.Add("kiosk_ups_battery_charge_ratio", math.Round(k.upsCharge*100)/100, ups)
	s.Add("kiosk_ups_battery_runtime_seconds", math.Round(runtime), ups)
	s.Add("kiosk_ups_load_ratio", math.Round(k.upsLoad()*100)/100, ups)
	volts := 0.0
	if !onBattery {
		volts = 220 + 12*k.rng.Float64()
	}
	s.Add("kiosk_ups_input_voltage_volts", math.Round(volts*10)/10, ups)
}

func (k *Kiosk) gatherHost(t time.Time, s *exporter.Snapshot) {
	s.Add("kiosk_host_cpu_usage_ratio", k.cpu)
	s.Add("kiosk_host_memory_usage_ratio", k.memory)
	s.Add("kiosk_host_memory_total_bytes", 8<<30)
	s.Add("kiosk_host_disk_usage_ratio", k.disk, map[bool]string{true: `C:\`, false: "/"}[k.osName == "windows"])
	s.Add("kiosk_host_uptime_seconds", math.Round(t.Sub(k.bootedAt).Seconds()))
	// Kiosk minus server, as the push client measures it; a wrong clock is behind.
	s.Add("kiosk_host_clock_offset_seconds", -time.Duration(k.clockSkew.Load()).Seconds()+0.05*k.rng.NormFloat64())
}

func (k *Kiosk) gatherService(t time.Time, s *exporter.Snapshot) {
	since := time.Time{}
	for _, in := range k.active {
		if !in.Onsite.IsZero() && !t.Before(in.Onsite) && (since.IsZero() || in.Onsite.Before(since)) {
			since = in.Onsite
		}
	}
	s.AddBool("kiosk_service_mode", !since.IsZero())
	if !since.IsZero() {
		s.Add("kiosk_service_mode_since_timestamp_seconds", float64(since.Unix()))
	}
}

// poisson draws from a Poisson distribution of small mean.
func poisson(rng *rand.Rand, mean float64) int {
	if mean <= 0 {
		return 0
	}
	if mean > 30 {
		return max(0, int(math.Round(mean+math.Sqrt(mean)*rng.NormFloat64())))
	}
	l, n, p := math.Exp(-mean), 0, rng.Float64()
	for p > l {
		n++
		p *= rng.Float64()
	}
	return n
}
