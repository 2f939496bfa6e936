// Package ipp reads printers over the Internet Printing Protocol: the
// printer's state and state reasons (media-empty, media-jam, toner-low...),
// its input trays' paper levels and its supplies (PWG 5100.13
// printer-input-tray and printer-supply, or the older marker-levels).
package ipp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/OpenPrinting/goipp"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/exporter/catalog"
	"github.com/kioskmon/kioskmon/yamlfile"
)

// Config configures the collector.
type Config struct {
	Printers []Printer `yaml:"printers"`
	// Timeout of one printer's answer. Default 5s.
	Timeout yamlfile.Duration `yaml:"timeout"`
}

// Printer is one IPP printer of the kiosk.
type Printer struct {
	// Name is the printer label of the metrics, and the peripheral's device name.
	Name string `yaml:"name"`
	// URL such as ipp://127.0.0.1:631/ipp/print (ipps:// for TLS).
	URL string `yaml:"url"`
	// Kind of peripheral: a4_printer (default) or receipt_printer.
	Kind string `yaml:"kind"`
}

// Validate checks the configuration; errors are *yamlfile.FieldError.
func (c *Config) Validate() error {
	names := map[string]bool{}
	for i, p := range c.Printers {
		field := func(f string) string { return fmt.Sprintf("printers.%d.%s", i, f) }
		if p.Name == "" {
			return yamlfile.Fieldf(field("name"), "is required")
		}
		if names[p.Name] {
			return yamlfile.Fieldf(field("name"), "%q is used twice", p.Name)
		}
		names[p.Name] = true
		if _, err := httpURL(p.URL); err != nil {
			return yamlfile.Fieldf(field("url"), "%v", err)
		}
		if p.Kind != "" && p.Kind != catalog.KindA4Printer && p.Kind != catalog.KindReceiptPrinter {
			return yamlfile.Fieldf(field("kind"), "%q is not a4_printer or receipt_printer", p.Kind)
		}
	}
	if len(c.Printers) == 0 {
		return yamlfile.Fieldf("printers", "name at least one printer, e.g. {name: a4, url: ipp://127.0.0.1:631/ipp/print}")
	}
	return nil
}

// httpURL turns an ipp(s):// URL into the http(s):// one IPP is posted to.
func httpURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%q is not a printer URL such as ipp://127.0.0.1:631/ipp/print", raw)
	}
	switch u.Scheme {
	case "ipp", "ipps":
		if u.Port() == "" {
			u.Host += ":631"
		}
		u.Scheme = map[string]string{"ipp": "http", "ipps": "https"}[u.Scheme]
	case "http", "https":
	default:
		return "", fmt.Errorf("%q: scheme %q is not ipp, ipps, http or https", raw, u.Scheme)
	}
	return u.String(), nil
}

// Collector reads the printers.
type Collector struct {
	cfg    Config
	client *http.Client
	logger log.Logger
}

// New returns an IPP collector.
func New(cfg Config, logger log.Logger) *Collector {
	if cfg.Timeout <= 0 {
		cfg.Timeout = yamlfile.Duration(5 * time.Second)
	}
	for i := range cfg.Printers {
		if cfg.Printers[i].Kind == "" {
			cfg.Printers[i].Kind = catalog.KindA4Printer
		}
	}
	return &Collector{cfg: cfg, client: &http.Client{Timeout: time.Duration(cfg.Timeout)}, logger: logger}
}

// Name implements exporter.Collector.
func (c *Collector) Name() string { return "ipp" }

var requested = []string{"printer-state", "printer-state-reasons", "printer-input-tray", "printer-supply",
	"printer-supply-description", "marker-levels", "marker-names", "marker-colors", "marker-types",
	"marker-high-levels", "printer-impressions-completed"}

// Collect implements exporter.Collector. A printer that does not answer is
// a peripheral in state not_responding.
func (c *Collector) Collect(ctx context.Context, s *exporter.Snapshot) error {
	answers := make([]*goipp.Message, len(c.cfg.Printers))
	var wg sync.WaitGroup
	for i, p := range c.cfg.Printers {
		wg.Go(func() {
			msg, err := c.query(ctx, p)
			if err != nil {
				level.Debug(c.logger).Log("msg", "printer does not answer", "printer", p.Name, "err", err)
				return
			}
			answers[i] = msg
		})
	}
	wg.Wait()
	for i, p := range c.cfg.Printers {
		if answers[i] == nil {
			s.AddState("kiosk_peripheral_state", catalog.StateNotResponding, p.Name, p.Kind)
			continue
		}
		Report(s, p.Name, p.Kind, answers[i].Printer)
	}
	return nil
}

func (c *Collector) query(ctx context.Context, p Printer) (*goipp.Message, error) {
	target, _ := httpURL(p.URL)
	req := goipp.NewRequest(goipp.DefaultVersion, goipp.OpGetPrinterAttributes, 1)
	req.Operation.Add(goipp.MakeAttr("attributes-charset", goipp.TagCharset, goipp.String("utf-8")))
	req.Operation.Add(goipp.MakeAttr("attributes-natural-language", goipp.TagLanguage, goipp.String("en")))
	req.Operation.Add(goipp.MakeAttr("printer-uri", goipp.TagURI, goipp.String(p.URL)))
	names := make([]goipp.Value, len(requested))
	for i, r := range requested {
		names[i] = goipp.String(r)
	}
	req.Operation.Add(goipp.MakeAttr("requested-attributes", goipp.TagKeyword, names[0], names[1:]...))
	body, err := req.EncodeBytes()
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", goipp.ContentType)
	resp, err := c.client.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("printer %s answered HTTP %s", p.Name, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	var msg goipp.Message
	if err := msg.DecodeBytes(data); err != nil {
		return nil, fmt.Errorf("printer %s: decode IPP answer: %w", p.Name, err)
	}
	if code := goipp.Status(msg.Code); code >= 0x400 {
		return nil, fmt.Errorf("printer %s: Get-Printer-Attributes failed: %s", p.Name, code)
	}
	return &msg, nil
}

// Report adds the series of one printer from its printer attributes.
func Report(s *exporter.Snapshot, name, kind string, attrs goipp.Attributes) {
	get := func(attr string) goipp.Values {
		for _, a := range attrs {
			if a.Name == attr {
				return a.Values
			}
		}
		return nil
	}
	reasons := map[string]string{} // reason -> severity
	for _, v := range get("printer-state-reasons") {
		r := v.V.String()
		if r == "none" || r == "" {
			continue
		}
		severity := "error" // RFC 8011 5.4.12: no suffix is an error
		for _, sfx := range []string{"report", "warning", "error"} {
			if base, ok := strings.CutSuffix(r, "-"+sfx); ok {
				r, severity = base, sfx
				break
			}
		}
		reasons[r] = severity
	}
	state := ""
	if v := get("printer-state"); len(v) > 0 {
		if n, ok := v[0].V.(goipp.Integer); ok {
			state = map[goipp.Integer]string{3: "idle", 4: "processing", 5: "stopped"}[n]
		}
	}
	if state != "" {
		s.AddState("kiosk_printer_state", state, name)
	}
	peripheral := catalog.StateOK
	for r, sev := range reasons {
		s.Add("kiosk_printer_state_reason", 1, name, r, sev)
		if sev == "error" || state == "stopped" {
			peripheral = catalog.StateFault
		} else if sev == "warning" && peripheral == catalog.StateOK {
			peripheral = catalog.StateDegraded
		}
	}
	s.AddState("kiosk_peripheral_state", peripheral, name, kind)
	_, jam := reasons["media-jam"]
	s.AddBool("kiosk_paper_jam", jam, name)

	_, mediaEmpty := reasons["media-empty"]
	_, mediaLow := reasons["media-low"]
	for _, v := range get("printer-input-tray") {
		tray := parseKV(octets(v.V))
		capacity, level := atoi(tray["maxcapacity"]), atoi(tray["level"])
		if tray["name"] == "" || capacity <= 0 || level < 0 || tray["type"] == "sheetFeedManual" {
			continue // unknown level, or a tray nobody loads (manual feed)
		}
		if tray["name"] == "by-pass-tray" {
			continue
		}
		ratio := min(float64(level)/float64(capacity), 1)
		s.Add("kiosk_paper_level_ratio", ratio, name, tray["name"])
		paper := "ok"
		switch {
		case level == 0 || mediaEmpty:
			paper = "empty"
		case mediaLow || ratio < 0.1:
			paper = "low"
		}
		s.AddState("kiosk_paper_state", paper, name, tray["name"])
	}

	supplies := 0
	descriptions := get("printer-supply-description")
	for i, v := range get("printer-supply") {
		sup := parseKV(octets(v.V))
		if t := sup["type"]; t != "toner" && t != "ink" && t != "tonerCartridge" && t != "inkCartridge" {
			continue
		}
		level, capacity := atoi(sup["level"]), atoi(sup["maxcapacity"])
		if capacity <= 0 && sup["unit"] == "percent" {
			capacity = 100
		}
		if level < 0 || capacity <= 0 {
			continue // -1 other, -2 unknown, -3 "some remaining"
		}
		marker := sup["colorantname"]
		if i < len(descriptions) {
			marker = descriptions[i].V.String()
		}
		s.Add("kiosk_toner_level_ratio", min(float64(level)/float64(capacity), 1), name, marker, sup["colorantname"])
		supplies++
	}
	if supplies == 0 { // printers before PWG 5100.13: marker-levels in percent
		names, colors, highs := get("marker-names"), get("marker-colors"), get("marker-high-levels")
		for i, v := range get("marker-levels") {
			level, ok := v.V.(goipp.Integer)
			if !ok || level < 0 {
				continue
			}
			high := 100
			if i < len(highs) {
				if h, ok := highs[i].V.(goipp.Integer); ok && h > 0 {
					high = int(h)
				}
			}
			marker, color := fmt.Sprint("marker", i+1), ""
			if i < len(names) {
				marker = names[i].V.String()
			}
			if i < len(colors) {
				color = colors[i].V.String()
			}
			s.Add("kiosk_toner_level_ratio", min(float64(level)/float64(high), 1), name, marker, color)
		}
	}
	if v := get("printer-impressions-completed"); len(v) > 0 {
		if n, ok := v[0].V.(goipp.Integer); ok {
			s.Add("kiosk_printed_pages_total", float64(n), name)
		}
	}
}

func octets(v goipp.Value) string {
	if b, ok := v.(goipp.Binary); ok {
		return string(b)
	}
	return v.String()
}

// parseKV reads a PWG 5100.13 "key=value;key=value;" string.
func parseKV(s string) map[string]string {
	m := map[string]string{}
	for _, part := range strings.Split(s, ";") {
		if k, v, ok := strings.Cut(part, "="); ok {
			m[strings.TrimSpace(k)] = v
		}
	}
	return m
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -2 // unknown
	}
	return n
}
