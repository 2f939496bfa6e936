package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
)

// stepMs is the simulated scrape interval of a kiosk exporter.
const stepMs = 15000

// seriesPerKiosk is the size of a kiosk's sample set.
var seriesPerKiosk = len(seriesTemplate())

type seriesKind uint8

const (
	slowGauge  seriesKind = iota // changes now and then by a small step
	constant                     // never changes (peripheral up, link up)
	counter                      // grows by small integers
	noisyGauge                   // changes every sample (RTT, CPU)
)

type seriesDef struct {
	name   string
	labels []string
	kind   seriesKind
}

// seriesTemplate is one kiosk's series, shaped like the kiosk exporter's.
func seriesTemplate() []seriesDef {
	var defs []seriesDef
	add := func(kind seriesKind, name string, labels ...string) {
		defs = append(defs, seriesDef{name: name, labels: labels, kind: kind})
	}
	add(constant, "up")
	for _, tray := range []string{"1", "2"} {
		add(slowGauge, "kiosk_paper_level_ratio", "printer", "a4", "tray", tray)
	}
	add(slowGauge, "kiosk_paper_level_ratio", "printer", "receipt", "tray", "1")
	add(slowGauge, "kiosk_toner_level_ratio", "printer", "a4", "marker", "black")
	for _, d := range []string{"id_card_reader", "camera", "fingerprint_reader", "document_scanner", "qr_scanner", "a4_printer", "receipt_printer", "touch_screen", "signature_pad", "ups"} {
		add(constant, "kiosk_peripheral_up", "device", d)
	}
	for _, target := range []string{"gateway", "platform", "dns"} {
		add(noisyGauge, "kiosk_network_rtt_seconds", "target", target)
		add(slowGauge, "kiosk_network_packet_loss_ratio", "target", target)
	}
	for _, page := range []string{"home", "id_verify"} {
		for _, le := range []string{"0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"} {
			add(counter, "kiosk_app_page_load_seconds_bucket", "page", page, "le", le)
		}
		add(counter, "kiosk_app_page_load_seconds_sum", "page", page)
		add(counter, "kiosk_app_page_load_seconds_count", "page", page)
		for _, code := range []string{"200", "500", "502"} {
			add(counter, "kiosk_app_requests_total", "page", page, "code", code)
		}
	}
	add(constant, "kiosk_ups_on_battery")
	add(slowGauge, "kiosk_ups_battery_charge_ratio")
	add(slowGauge, "kiosk_ups_runtime_seconds")
	add(slowGauge, "kiosk_ups_load_ratio")
	add(slowGauge, "kiosk_ups_input_voltage_volts")
	add(noisyGauge, "kiosk_host_cpu_usage_ratio")
	add(slowGauge, "kiosk_host_memory_usage_ratio")
	add(slowGauge, "kiosk_host_disk_usage_ratio", "mount", "C:")
	add(counter, "kiosk_host_uptime_seconds")
	add(slowGauge, "kiosk_host_clock_offset_seconds")
	add(constant, "kiosk_network_link_up", "interface", "eth0")
	add(counter, "kiosk_network_ip_changes_total")
	add(constant, "kiosk_service_mode")
	return defs
}

type simSeries struct {
	labels       []prompb.Label
	influxPrefix []byte // "name,tag=v,... value="
	samples      []prompb.Sample
	kind         seriesKind
	value        float64
}

type simKiosk struct {
	mu     sync.Mutex
	id     string
	token  string
	cursor int64 // timestamp of the next point, ms
	series []simSeries
	rng    *rand.Rand
	vals   []float64 // [point*len(series)+series] of the current request
}

type fleet struct{ kiosks []*simKiosk }

// newFleet makes n kiosks. With stampLabels the series carry the labels
// kioskmon adds from its inventory, so that a peer without an inventory
// stores the same series as kioskmon does.
func newFleet(n int, seed uint64, start time.Time, stampLabels bool) *fleet {
	defs := seriesTemplate()
	f := &fleet{}
	for i := range n {
		id := kioskID(i)
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		// Kiosks scrape on the same 15 s grid, each at its own phase.
		k := &simKiosk{id: id, token: tokenFor(id), rng: rng,
			cursor: start.UnixMilli()/stepMs*stepMs + int64(rng.IntN(stepMs))}
		for _, d := range defs {
			labels := []prompb.Label{{Name: "__name__", Value: d.name}, {Name: "instance", Value: id + ":9182"}, {Name: "job", Value: "kiosk"}}
			for j := 0; j+1 < len(d.labels); j += 2 {
				labels = append(labels, prompb.Label{Name: d.labels[j], Value: d.labels[j+1]})
			}
			if stampLabels {
				labels = append(labels, prompb.Label{Name: "kiosk", Value: id}, prompb.Label{Name: "site", Value: "bench-site"},
					prompb.Label{Name: "district", Value: "bench"}, prompb.Label{Name: "provider", Value: "bench-om"})
			}
			s := simSeries{labels: labels, kind: d.kind, influxPrefix: influxPrefix(labels)}
			switch d.kind {
			case constant:
				s.value = 1
			case slowGauge:
				s.value = math.Round(rng.Float64()*100) / 100
			}
			k.series = append(k.series, s)
		}
		f.kiosks = append(f.kiosks, k)
	}
	return f
}

// influxPrefix is the line up to the field value: the measurement, the tags
// sorted as Telegraf sends them, and the field "value".
func influxPrefix(labels []prompb.Label) []byte {
	tags := append([]prompb.Label{}, labels[1:]...)
	sort.Slice(tags, func(i, j int) bool { return tags[i].Name < tags[j].Name })
	b := []byte(labels[0].Value)
	for _, t := range tags {
		b = fmt.Appendf(b, ",%s=%s", t.Name, escapeTag(t.Value))
	}
	return append(b, " value="...)
}

func escapeTag(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' || s[i] == ',' || s[i] == '=' {
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// fill computes the values of the next points of every series.
func (k *simKiosk) fill(points int) {
	k.vals = k.vals[:0]
	for range points {
		for s := range k.series {
			ss := &k.series[s]
			switch ss.kind {
			case slowGauge:
				if k.rng.IntN(20) == 0 {
					ss.value = math.Max(0, math.Round((ss.value+float64(k.rng.IntN(3)-1)*0.01)*100)/100)
				}
			case counter:
				ss.value += float64(k.rng.IntN(4))
			case noisyGauge:
				ss.value = math.Round(k.rng.ExpFloat64()*20) / 1000
			}
			k.vals = append(k.vals, ss.value)
		}
	}
}

func (k *simKiosk) value(series, point int) float64 { return k.vals[point*len(k.series)+series] }

func (k *simKiosk) advance(points int) { k.cursor += int64(points) * stepMs }
