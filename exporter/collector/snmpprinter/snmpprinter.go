// Package snmpprinter reads network printers over SNMP v2c: the Printer MIB
// (RFC 3805) for trays and supplies, and the Host Resources MIB (RFC 2790)
// hrPrinterStatus and hrPrinterDetectedErrorState for state and errors.
package snmpprinter

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/gosnmp/gosnmp"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/exporter/catalog"
	"github.com/kioskmon/kioskmon/yamlfile"
)

// Config configures the collector.
type Config struct {
	Printers []Printer `yaml:"printers"`
	// Timeout of one SNMP request. Default 3s.
	Timeout yamlfile.Duration `yaml:"timeout"`
	// Retries of a request. Default 1.
	Retries int `yaml:"retries"`
}

// Printer is one network printer.
type Printer struct {
	Name string `yaml:"name"`
	// Address host or host:port (default port 161).
	Address   string `yaml:"address"`
	Community string `yaml:"community"`
	// Kind of peripheral: a4_printer (default) or receipt_printer.
	Kind string `yaml:"kind"`
}

// Validate checks the configuration; errors are *yamlfile.FieldError.
func (c *Config) Validate() error {
	if len(c.Printers) == 0 {
		return yamlfile.Fieldf("printers", "name at least one printer, e.g. {name: a4, address: 10.0.0.20}")
	}
	seen := map[string]bool{}
	for i, p := range c.Printers {
		field := func(f string) string { return fmt.Sprintf("printers.%d.%s", i, f) }
		if p.Name == "" || seen[p.Name] {
			return yamlfile.Fieldf(field("name"), "%q is missing or used twice", p.Name)
		}
		seen[p.Name] = true
		if _, _, err := splitAddress(p.Address); err != nil {
			return yamlfile.Fieldf(field("address"), "%v", err)
		}
		if p.Kind != "" && p.Kind != catalog.KindA4Printer && p.Kind != catalog.KindReceiptPrinter {
			return yamlfile.Fieldf(field("kind"), "%q is not a4_printer or receipt_printer", p.Kind)
		}
	}
	if c.Retries < 0 || c.Retries > 5 {
		return yamlfile.Fieldf("retries", "%d is not between 0 and 5", c.Retries)
	}
	return nil
}

func splitAddress(a string) (string, uint16, error) {
	if a == "" {
		return "", 0, fmt.Errorf("is required")
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return a, 161, nil
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("%q: port %q is not a number", a, port)
	}
	return host, uint16(n), nil
}

// Collector reads the printers.
type Collector struct {
	cfg    Config
	logger log.Logger
}

// New returns an SNMP printer collector.
func New(cfg Config, logger log.Logger) *Collector {
	if cfg.Timeout <= 0 {
		cfg.Timeout = yamlfile.Duration(3 * time.Second)
	}
	if cfg.Retries == 0 {
		cfg.Retries = 1
	}
	for i := range cfg.Printers {
		if cfg.Printers[i].Kind == "" {
			cfg.Printers[i].Kind = catalog.KindA4Printer
		}
		if cfg.Printers[i].Community == "" {
			cfg.Printers[i].Community = "public"
		}
	}
	return &Collector{cfg: cfg, logger: logger}
}

// Name implements exporter.Collector.
func (c *Collector) Name() string { return "snmp_printer" }

// OIDs read, without their leading dot.
const (
	oidInputMaxCapacity  = "1.3.6.1.2.1.43.8.2.1.9"
	oidInputCurrentLevel = "1.3.6.1.2.1.43.8.2.1.10"
	oidInputName         = "1.3.6.1.2.1.43.8.2.1.13"
	oidMarkerLifeCount   = "1.3.6.1.2.1.43.10.2.1.4"
	oidSuppliesDesc      = "1.3.6.1.2.1.43.11.1.1.6"
	oidSuppliesMax       = "1.3.6.1.2.1.43.11.1.1.8"
	oidSuppliesLevel     = "1.3.6.1.2.1.43.11.1.1.9"
	oidSuppliesType      = "1.3.6.1.2.1.43.11.1.1.5"
	oidPrinterStatus     = "1.3.6.1.2.1.25.3.5.1.1"
	oidPrinterErrorState = "1.3.6.1.2.1.25.3.5.1.2"
	printerMIB           = "1.3.6.1.2.1.43"
	hrPrinterTable       = "1.3.6.1.2.1.25.3.5"
	// PrtMarkerSuppliesTypeTC values of what prints (RFC 3805).
	suppliesToner          = 3
	suppliesInk            = 5
	suppliesInkCartridge   = 6
	suppliesTonerCartridge = 21
)

// Collect implements exporter.Collector. A printer that does not answer is
// a peripheral in state not_responding.
func (c *Collector) Collect(ctx context.Context, s *exporter.Snapshot) error {
	tables := make([]map[string]gosnmp.SnmpPDU, len(c.cfg.Printers))
	var wg sync.WaitGroup
	for i, p := range c.cfg.Printers {
		wg.Go(func() {
			t, err := c.walk(ctx, p)
			if err != nil {
				level.Debug(c.logger).Log("msg", "printer does not answer SNMP", "printer", p.Name, "err", err)
				return
			}
			tables[i] = t
		})
	}
	wg.Wait()
	for i, p := range c.cfg.Printers {
		if tables[i] == nil {
			s.AddState("kiosk_peripheral_state", catalog.StateNotResponding, p.Name, p.Kind)
			continue
		}
		Report(s, p.Name, p.Kind, tables[i])
	}
	return nil
}

func (c *Collector) walk(ctx context.Context, p Printer) (map[string]gosnmp.SnmpPDU, error) {
	host, port, _ := splitAddress(p.Address)
	g := &gosnmp.GoSNMP{Target: host, Port: port, Community: p.Community, Version: gosnmp.Version2c,
		Timeout: time.Duration(c.cfg.Timeout), Retries: c.cfg.Retries, Context: ctx, MaxRepetitions: 20}
	if err := g.Connect(); err != nil {
		return nil, err
	}
	defer g.Conn.Close()
	table := map[string]gosnmp.SnmpPDU{}
	for _, root := range []string{hrPrinterTable, printerMIB} {
		pdus, err := g.BulkWalkAll(root)
		if err != nil {
			return nil, fmt.Errorf("walk %s: %w", root, err)
		}
		for _, pdu := range pdus {
			table[strings.TrimPrefix(pdu.Name, ".")] = pdu
		}
	}
	if len(table) == 0 {
		return nil, fmt.Errorf("no Printer MIB at %s: is it a printer?", p.Address)
	}
	return table, nil
}

// Error bits of hrPrinterDetectedErrorState (RFC 2790): bit 0 is the most
// significant bit of the first octet.
var errorBits = []string{"lowPaper", "noPaper", "lowToner", "noToner", "doorOpen", "jammed", "offline", "serviceRequested",
	"inputTrayMissing", "outputTrayMissing", "markerSupplyMissing", "outputNearFull", "outputFull", "inputTrayEmpty", "overduePreventMaint"}

// DecodeErrorState returns the names of the bits set.
func DecodeErrorState(b []byte) map[string]bool {
	set := map[string]bool{}
	for i, name := range errorBits {
		if i/8 < len(b) && b[i/8]&(0x80>>(i%8)) != 0 {
			set[name] = true
		}
	}
	return set
}

// Report adds one printer's series from its walked OIDs.
func Report(s *exporter.Snapshot, name, kind string, t map[string]gosnmp.SnmpPDU) {
	column := func(prefix string) map[string]gosnmp.SnmpPDU {
		m := map[string]gosnmp.SnmpPDU{}
		for oid, pdu := range t {
			if idx, ok := strings.CutPrefix(oid, prefix+"."); ok {
				m[idx] = pdu
			}
		}
		return m
	}
	var errs map[string]bool
	for _, pdu := range column(oidPrinterErrorState) {
		if b, ok := pdu.Value.([]byte); ok {
			errs = DecodeErrorState(b)
		}
		break
	}
	for _, pdu := range column(oidPrinterStatus) {
		// hrPrinterStatus: other(1), unknown(2), idle(3), printing(4), warmup(5)
		switch gosnmp.ToBigInt(pdu.Value).Int64() {
		case 3:
			s.AddState("kiosk_printer_state", "idle", name)
		case 4, 5:
			s.AddState("kiosk_printer_state", "processing", name)
		default:
			s.AddState("kiosk_printer_state", "stopped", name)
		}
		break
	}
	peripheral := catalog.StateOK
	for _, bit := range errorBits {
		if !errs[bit] {
			continue
		}
		severity := "error"
		if bit == "lowPaper" || bit == "lowToner" || bit == "outputNearFull" || bit == "overduePreventMaint" {
			severity = "warning"
		}
		s.Add("kiosk_printer_state_reason", 1, name, bit, severity)
		if severity == "error" {
			peripheral = catalog.StateFault
		} else if peripheral == catalog.StateOK {
			peripheral = catalog.StateDegraded
		}
	}
	s.AddState("kiosk_peripheral_state", peripheral, name, kind)
	s.AddBool("kiosk_paper_jam", errs["jammed"], name)

	capacities, names := column(oidInputMaxCapacity), column(oidInputName)
	for idx, pdu := range column(oidInputCurrentLevel) {
		level, capacity := gosnmp.ToBigInt(pdu.Value).Int64(), gosnmp.ToBigInt(capacities[idx].Value).Int64()
		tray := "tray" + idx[strings.LastIndexByte(idx, '.')+1:]
		if n, ok := names[idx].Value.([]byte); ok && len(n) > 0 {
			tray = string(n)
		}
		state := "ok"
		switch {
		case level == 0 || errs["noPaper"] || errs["inputTrayEmpty"]:
			state = "empty"
		case errs["lowPaper"]:
			state = "low"
		}
		// -1 other, -2 unknown, -3 "at least one sheet": no ratio to report.
		if level >= 0 && capacity > 0 {
			ratio := min(float64(level)/float64(capacity), 1)
			s.Add("kiosk_paper_level_ratio", ratio, name, tray)
			if state == "ok" && ratio < 0.1 {
				state = "low"
			}
		}
		s.AddState("kiosk_paper_state", state, name, tray)
	}

	maxes, descs, types := column(oidSuppliesMax), column(oidSuppliesDesc), column(oidSuppliesType)
	for idx, pdu := range column(oidSuppliesLevel) {
		switch gosnmp.ToBigInt(types[idx].Value).Int64() {
		case 0, suppliesToner, suppliesInk, suppliesInkCartridge, suppliesTonerCartridge: // 0: type not given
		default:
			continue // waste toner, fuser, drum...
		}
		level, capacity := gosnmp.ToBigInt(pdu.Value).Int64(), gosnmp.ToBigInt(maxes[idx].Value).Int64()
		if level < 0 || capacity <= 0 {
			continue
		}
		marker := "marker" + idx[strings.LastIndexByte(idx, '.')+1:]
		if d, ok := descs[idx].Value.([]byte); ok && len(d) > 0 {
			marker = string(d)
		}
		s.Add("kiosk_toner_level_ratio", min(float64(level)/float64(capacity), 1), name, marker, "")
	}
	for _, pdu := range column(oidMarkerLifeCount) {
		s.Add("kiosk_printed_pages_total", float64(gosnmp.ToBigInt(pdu.Value).Int64()), name)
		break
	}
}
