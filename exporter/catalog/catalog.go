// Package catalog is the kiosk exporter's metric catalogue: every metric a
// kiosk reports, with its type, unit, labels and meaning. Rules, dashboards and
// reports use only names from here; METRICS.md is generated from it
// (go generate ./exporter/catalog).
//
// Naming follows Prometheus: a kiosk_ prefix, base units (seconds, bytes,
// volts, ratios 0-1), _total for counters. A metric with a "state" label is an
// enumeration: one series per possible state, 1 for the current one and 0 for
// the others, so a state change never leaves a stale series behind and
// `kiosk_x_state{state="fault"} == 1` is a complete rule.
package catalog

//go:generate go run ./gen -out ../METRICS.md

import "sort"

// Type is a metric type as Prometheus exposes it.
type Type string

// Metric types.
const (
	Gauge     Type = "gauge"
	Counter   Type = "counter"
	Histogram Type = "histogram"
)

// Group is the part of the kiosk a metric is about.
type Group string

// Groups, in the order METRICS.md lists them.
const (
	Consumables Group = "consumables"
	Peripherals Group = "peripherals"
	Application Group = "application"
	Network     Group = "network"
	Power       Group = "power"
	Host        Group = "host"
	Service     Group = "service"
	Exporter    Group = "exporter"
)

// Groups lists every group in catalogue order.
var Groups = []Group{Consumables, Peripherals, Application, Network, Power, Host, Service, Exporter}

// Metric describes one metric of the catalogue.
type Metric struct {
	Name   string
	Type   Type
	Group  Group
	Unit   string   // base unit, or "" for counts and flags
	Labels []string // in the order collectors pass label values
	// States are the values of the "state" label of an enumeration.
	States []string
	// Buckets are a histogram's upper bounds.
	Buckets []float64
	Help    string
	// Faults names the fault ids (package faults) this metric makes observable.
	Faults []string
}

// Peripheral kinds, the values of the "kind" label.
const (
	KindIDCardReader      = "id_card_reader"
	KindCamera            = "camera"
	KindFingerprintReader = "fingerprint_reader"
	KindDocumentScanner   = "document_scanner"
	KindCodeScanner       = "code_scanner"
	KindA4Printer         = "a4_printer"
	KindReceiptPrinter    = "receipt_printer"
	KindTouchScreen       = "touch_screen"
	KindDisplay           = "display"
	KindSignaturePad      = "signature_pad"
	KindLighting          = "lighting"
)

// PeripheralKinds lists the peripheral kinds a kiosk may have.
var PeripheralKinds = []string{KindIDCardReader, KindCamera, KindFingerprintReader, KindDocumentScanner,
	KindCodeScanner, KindA4Printer, KindReceiptPrinter, KindTouchScreen, KindDisplay, KindSignaturePad, KindLighting}

// Peripheral states. NotResponding (the driver or middleware does not answer)
// is distinct from Absent (the device is not there: unplugged, not enumerated).
const (
	StateOK            = "ok"
	StateDegraded      = "degraded"
	StateFault         = "fault"
	StateNotResponding = "not_responding"
	StateAbsent        = "absent"
)

// PeripheralStates lists the states of kiosk_peripheral_state.
var PeripheralStates = []string{StateOK, StateDegraded, StateFault, StateNotResponding, StateAbsent}

// Paper and receipt states.
var (
	PaperStates   = []string{"ok", "low", "empty"}
	ReceiptStates = []string{"ok", "near_end", "empty"}
	PrinterStates = []string{"idle", "processing", "stopped"}
)

// PageLoadBuckets are the bounds of kiosk_app_page_load_seconds: a kiosk page
// should load within a second; beyond 5 s citizens give up.
var PageLoadBuckets = []float64{0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30}

// Metrics is the catalogue, grouped, in the order METRICS.md lists it.
var Metrics = []Metric{
	// Consumables.
	{Name: "kiosk_paper_level_ratio", Type: Gauge, Group: Consumables, Unit: "ratio", Labels: []string{"printer", "tray"},
		Help: "Paper left in a tray, 0 (empty) to 1 (full), as the printer reports it (IPP media-col-ready / Printer MIB prtInputCurrentLevel over prtInputMaxCapacity).", Faults: []string{"hw.paper_out"}},
	{Name: "kiosk_paper_state", Type: Gauge, Group: Consumables, Labels: []string{"printer", "tray", "state"}, States: PaperStates,
		Help: "Paper state of a tray: ok, low or empty (IPP media-low / media-empty, Printer MIB prtInputStatus).", Faults: []string{"hw.paper_out"}},
	{Name: "kiosk_toner_level_ratio", Type: Gauge, Group: Consumables, Unit: "ratio", Labels: []string{"printer", "marker", "color"},
		Help: "Toner or ink left in a marker (cartridge), 0 to 1 (IPP marker-levels, Printer MIB prtMarkerSuppliesLevel).", Faults: []string{"hw.toner_out"}},
	{Name: "kiosk_receipt_paper_state", Type: Gauge, Group: Consumables, Labels: []string{"printer", "state"}, States: ReceiptStates,
		Help: "Receipt paper roll: ok, near_end (the near-end sensor) or empty.", Faults: []string{"hw.paper_out"}},
	{Name: "kiosk_paper_jam", Type: Gauge, Group: Consumables, Labels: []string{"printer"},
		Help: "1 while a printer reports a paper jam (IPP media-jam, Printer MIB hrPrinterDetectedErrorState jammed).", Faults: []string{"hw.paper_jam"}},
	{Name: "kiosk_printer_state", Type: Gauge, Group: Consumables, Labels: []string{"printer", "state"}, States: PrinterStates,
		Help: "IPP printer-state of a printer: idle, processing or stopped.", Faults: []string{"hw.printer_fault"}},
	{Name: "kiosk_printer_state_reason", Type: Gauge, Group: Consumables, Labels: []string{"printer", "reason", "severity"},
		Help: "1 for each printer-state-reason the printer reports (IPP keywords such as media-empty, media-jam, toner-low, door-open), with its severity (report, warning, error).", Faults: []string{"hw.printer_fault"}},
	{Name: "kiosk_printed_pages_total", Type: Counter, Group: Consumables, Labels: []string{"printer"},
		Help: "Pages (or receipts) printed, from the printer's own counter: how much the kiosk is used."},

	// Peripherals.
	{Name: "kiosk_peripheral_state", Type: Gauge, Group: Peripherals, Labels: []string{"device", "kind", "state"}, States: PeripheralStates,
		Help:   "State of a peripheral: ok, degraded (works with a problem: blurred screen, dim lights), fault (reports an error), not_responding (its driver or the vendor middleware does not answer) or absent (not connected or not enumerated).",
		Faults: []string{"hw.peripheral_not_responding", "hw.id_reader_fault", "hw.printer_fault", "hw.screen_blurred", "hw.lights_dim"}},
	{Name: "kiosk_peripheral_error", Type: Gauge, Group: Peripherals, Labels: []string{"device", "kind", "code"},
		Help: "1 while a peripheral reports a vendor error code (the code label); absent when there is none."},
	{Name: "kiosk_peripheral_usb_present", Type: Gauge, Group: Peripherals, Labels: []string{"device", "kind", "usb_id"},
		Help: "1 if the USB device (vendor:product, from sysfs) configured for a peripheral is enumerated, 0 if not (Linux)."},

	// Application.
	{Name: "kiosk_app_page_load_seconds", Type: Histogram, Group: Application, Unit: "seconds", Labels: []string{"page"}, Buckets: PageLoadBuckets,
		Help: "Page load and navigation time as the kiosk application measures it, per page.", Faults: []string{"sw.page_slow", "sw.client_lag"}},
	{Name: "kiosk_app_errors_total", Type: Counter, Group: Application, Labels: []string{"page", "kind"},
		Help: "Errors the application shows or receives, by kind: http_4xx, http_5xx, timeout, no_data (the service returned nothing), wrong_data, client (script error).", Faults: []string{"sw.wrong_or_no_data"}},
	{Name: "kiosk_app_requests_total", Type: Counter, Group: Application, Labels: []string{"page"},
		Help: "Page views and service calls, the denominator of error ratios."},
	{Name: "kiosk_app_transactions_total", Type: Counter, Group: Application, Labels: []string{"service"},
		Help: "Completed citizen transactions by service (print a certificate, renew an ID card...): the kiosk's usage."},
	{Name: "kiosk_app_restarts_total", Type: Counter, Group: Application, Labels: []string{"reason"},
		Help: "Application starts after the first, by reason: crash, hang (killed by its watchdog), update, manual.", Faults: []string{"sw.service_unresponsive"}},
	{Name: "kiosk_app_up", Type: Gauge, Group: Application,
		Help: "1 while the kiosk application's process runs and answers its local health check.", Faults: []string{"sw.service_unresponsive"}},
	{Name: "kiosk_app_heartbeat_age_seconds", Type: Gauge, Group: Application, Unit: "seconds",
		Help: "Seconds since the application's UI thread last sent a heartbeat: grows while the screen is frozen, blue or white although the host is up.", Faults: []string{"hw.blue_white_screen", "sw.client_lag"}},
	{Name: "kiosk_app_page_probe_success", Type: Gauge, Group: Application, Labels: []string{"page"},
		Help: "1 if the last probe of a configured kiosk page answered 2xx within its timeout.", Faults: []string{"sw.page_unreachable"}},
	{Name: "kiosk_app_page_probe_duration_seconds", Type: Gauge, Group: Application, Unit: "seconds", Labels: []string{"page"},
		Help: "Duration of the last probe of a kiosk page, redirects included.", Faults: []string{"sw.page_slow"}},
	{Name: "kiosk_app_page_probe_status_code", Type: Gauge, Group: Application, Labels: []string{"page"},
		Help: "HTTP status of the last probe of a kiosk page (0: no answer)."},
	{Name: "kiosk_app_page_integrity_ok", Type: Gauge, Group: Application, Labels: []string{"page"},
		Help: "1 if the served page's SHA-256 matches the expected one, 0 if it differs (tampering, or an unannounced release).", Faults: []string{"sw.page_tampered"}},
	{Name: "kiosk_platform_api_up", Type: Gauge, Group: Application, Labels: []string{"target"},
		Help: "1 if the government service platform's API answered the last probe.", Faults: []string{"sw.service_unresponsive"}},
	{Name: "kiosk_platform_api_latency_seconds", Type: Gauge, Group: Application, Unit: "seconds", Labels: []string{"target"},
		Help: "Latency of the last probe of the platform's API."},

	// Network.
	{Name: "kiosk_network_packet_loss_ratio", Type: Gauge, Group: Network, Unit: "ratio", Labels: []string{"target"},
		Help: "Share of ICMP echo requests without a reply in the last probe round, 0 to 1.", Faults: []string{"net.packet_loss"}},
	{Name: "kiosk_network_rtt_median_seconds", Type: Gauge, Group: Network, Unit: "seconds", Labels: []string{"target"},
		Help: "Median round-trip time of the replies in the last probe round.", Faults: []string{"net.high_latency"}},
	{Name: "kiosk_network_rtt_max_seconds", Type: Gauge, Group: Network, Unit: "seconds", Labels: []string{"target"},
		Help: "Largest round-trip time in the last probe round."},
	{Name: "kiosk_network_probe_sent_total", Type: Counter, Group: Network, Labels: []string{"target"},
		Help: "ICMP echo requests sent: with _received_total, loss over any window."},
	{Name: "kiosk_network_probe_received_total", Type: Counter, Group: Network, Labels: []string{"target"},
		Help: "ICMP echo replies received."},
	{Name: "kiosk_network_link_up", Type: Gauge, Group: Network, Labels: []string{"interface"},
		Help: "1 if the network interface has carrier and is up.", Faults: []string{"net.link_down"}},
	{Name: "kiosk_network_address_info", Type: Gauge, Group: Network, Labels: []string{"interface", "address"},
		Help: "Always 1, with the interface's current IP address as a label."},
	{Name: "kiosk_network_address_ok", Type: Gauge, Group: Network, Labels: []string{"interface"},
		Help: "1 if the interface holds a usable (not link-local) IP address, 0 if it could not get one.", Faults: []string{"net.ip_changed"}},
	{Name: "kiosk_network_address_changes_total", Type: Counter, Group: Network, Labels: []string{"interface"},
		Help: "Times the interface's IP address changed since the exporter started.", Faults: []string{"net.ip_changed"}},
	{Name: "kiosk_dns_lookup_success", Type: Gauge, Group: Network, Labels: []string{"name"},
		Help: "1 if the last lookup of a configured name succeeded.", Faults: []string{"net.ip_changed"}},
	{Name: "kiosk_dns_lookup_seconds", Type: Gauge, Group: Network, Unit: "seconds", Labels: []string{"name"},
		Help: "Duration of the last lookup of a configured name."},

	// Power.
	{Name: "kiosk_ups_up", Type: Gauge, Group: Power, Labels: []string{"ups"},
		Help: "1 if the UPS answered through upsd (Network UPS Tools) at the last read."},
	{Name: "kiosk_ups_on_battery", Type: Gauge, Group: Power, Labels: []string{"ups"},
		Help: "1 while the UPS runs on battery (ups.status OB).", Faults: []string{"power.mains_lost"}},
	{Name: "kiosk_ups_low_battery", Type: Gauge, Group: Power, Labels: []string{"ups"},
		Help: "1 while the UPS signals low battery (ups.status LB).", Faults: []string{"hw.ups_runtime_weak"}},
	{Name: "kiosk_ups_replace_battery", Type: Gauge, Group: Power, Labels: []string{"ups"},
		Help: "1 while the UPS asks for its battery to be replaced (ups.status RB).", Faults: []string{"hw.ups_runtime_weak"}},
	{Name: "kiosk_ups_battery_charge_ratio", Type: Gauge, Group: Power, Unit: "ratio", Labels: []string{"ups"},
		Help: "Battery charge, 0 to 1 (battery.charge)."},
	{Name: "kiosk_ups_battery_runtime_seconds", Type: Gauge, Group: Power, Unit: "seconds", Labels: []string{"ups"},
		Help: "Runtime left on battery at the current load (battery.runtime).", Faults: []string{"hw.ups_runtime_weak"}},
	{Name: "kiosk_ups_load_ratio", Type: Gauge, Group: Power, Unit: "ratio", Labels: []string{"ups"},
		Help: "UPS load, 0 to 1 of its rating (ups.load)."},
	{Name: "kiosk_ups_input_voltage_volts", Type: Gauge, Group: Power, Unit: "volts", Labels: []string{"ups"},
		Help: "Mains input voltage (input.voltage)."},

	// Host.
	{Name: "kiosk_host_cpu_usage_ratio", Type: Gauge, Group: Host, Unit: "ratio",
		Help: "Share of CPU time busy since the previous read, over all cores, 0 to 1.", Faults: []string{"hw.host_saturated"}},
	{Name: "kiosk_host_memory_usage_ratio", Type: Gauge, Group: Host, Unit: "ratio",
		Help: "Share of physical memory in use (not available), 0 to 1.", Faults: []string{"hw.host_saturated"}},
	{Name: "kiosk_host_memory_total_bytes", Type: Gauge, Group: Host, Unit: "bytes",
		Help: "Physical memory."},
	{Name: "kiosk_host_disk_usage_ratio", Type: Gauge, Group: Host, Unit: "ratio", Labels: []string{"mountpoint"},
		Help: "Share of a file system's space in use, 0 to 1.", Faults: []string{"hw.host_saturated"}},
	{Name: "kiosk_host_uptime_seconds", Type: Gauge, Group: Host, Unit: "seconds",
		Help: "Seconds since the operating system booted."},
	{Name: "kiosk_host_clock_offset_seconds", Type: Gauge, Group: Host, Unit: "seconds",
		Help: "Kiosk clock minus the kioskmon server's clock (from the Date header of push replies); positive when the kiosk is ahead.", Faults: []string{"host.clock_wrong"}},

	// Service mode.
	{Name: "kiosk_service_mode", Type: Gauge, Group: Service,
		Help: "1 while an engineer has put the kiosk in service (maintenance) mode on site: faults are not graded and the arrival on site is recorded."},
	{Name: "kiosk_service_mode_since_timestamp_seconds", Type: Gauge, Group: Service, Unit: "seconds",
		Help: "Unix time service mode was last switched on (0: never)."},

	// The exporter itself.
	{Name: "kiosk_exporter_build_info", Type: Gauge, Group: Exporter, Labels: []string{"version", "goos", "goarch"},
		Help: "Always 1: the exporter's version and platform. Its absence means the kiosk is not reporting.", Faults: []string{"kiosk.offline"}},
	{Name: "kiosk_exporter_collector_success", Type: Gauge, Group: Exporter, Labels: []string{"collector"},
		Help: "1 if the collector's last run succeeded."},
	{Name: "kiosk_exporter_collector_duration_seconds", Type: Gauge, Group: Exporter, Unit: "seconds", Labels: []string{"collector"},
		Help: "Duration of the collector's last run."},
	{Name: "kiosk_exporter_queue_bytes", Type: Gauge, Group: Exporter, Unit: "bytes",
		Help: "Bytes of samples in the push queue on disk, not yet acknowledged by kioskmon."},
	{Name: "kiosk_exporter_queue_oldest_timestamp_seconds", Type: Gauge, Group: Exporter, Unit: "seconds",
		Help: "Unix time of the oldest sample still in the push queue (0: empty): how far behind delivery is."},
	{Name: "kiosk_exporter_queue_dropped_samples_total", Type: Counter, Group: Exporter,
		Help: "Samples dropped from the push queue because it reached its disk limit (oldest first)."},
	{Name: "kiosk_exporter_push_samples_total", Type: Counter, Group: Exporter,
		Help: "Samples kioskmon acknowledged."},
	{Name: "kiosk_exporter_push_failures_total", Type: Counter, Group: Exporter, Labels: []string{"reason"},
		Help: "Failed push requests by reason: network, http_5xx, http_429 (retried), http_4xx (not retried: the batch is dropped)."},
	{Name: "kiosk_exporter_app_events_total", Type: Counter, Group: Exporter,
		Help: "Events the kiosk application and the device middleware posted to the exporter's local endpoint and it accepted."},
	{Name: "kiosk_exporter_app_posts_rejected_total", Type: Counter, Group: Exporter, Labels: []string{"reason"},
		Help: "Posts to the local endpoint refused, by reason: invalid (400), unauthorized (401), too_large (413), method (405), content_type (415), too_many_series (a page, service or device over the label limit); nothing of a refused post is applied."},
}

var byName = func() map[string]*Metric {
	m := make(map[string]*Metric, len(Metrics))
	for i := range Metrics {
		m[Metrics[i].Name] = &Metrics[i]
	}
	return m
}()

// Lookup returns the catalogue entry of a metric name, or nil.
func Lookup(name string) *Metric { return byName[name] }

// MustLookup returns the catalogue entry of name and panics if there is none:
// collectors name their metrics in code, so a miss is a programming error.
func MustLookup(name string) *Metric {
	m := byName[name]
	if m == nil {
		panic("catalog: no metric " + name)
	}
	return m
}

// Names returns every metric name, sorted.
func Names() []string {
	names := make([]string, 0, len(Metrics))
	for _, m := range Metrics {
		names = append(names, m.Name)
	}
	sort.Strings(names)
	return names
}
