package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/kioskmon/kioskmon/alerting/inspection"
	"github.com/kioskmon/kioskmon/ingest/inventory"
	"github.com/kioskmon/kioskmon/slo/calendar"
	"github.com/kioskmon/kioskmon/slo/compliance"
	"github.com/kioskmon/kioskmon/slo/ledger"
	"github.com/kioskmon/kioskmon/slo/policy"
	"github.com/kioskmon/kioskmon/slo/report"
)

const slaUsage = `usage: kioskmon sla report --month YYYY-MM [--format html|pdf|csv] [--lang zh|en] [--out FILE]
  from a server:        --server URL --token TOKEN
  from the files:       --data DIR | --ledger DSN, --inventory FILE [--policy FILE]
                        (a PostgreSQL replica, or a copy of the data directory)
       kioskmon sla verify --data DIR | --ledger DSN
                        every event's stored hash and link, and every incident's
                        lifecycle replayed against the incidents table`

func runSLA(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "verify" {
		return runSLAVerify(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "report" {
		fmt.Fprintln(stderr, slaUsage)
		if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
			return flag.ErrHelp
		}
		return errors.New("sla: give a command")
	}
	fs := flag.NewFlagSet("kioskmon sla report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := clientFlags(fs)
	month := fs.String("month", compliance.PreviousMonth(time.Now(), calendar.Shanghai), "the month, YYYY-MM (default: last month in Beijing time)")
	format := fs.String("format", "html", "html, pdf or csv")
	lang := fs.String("lang", "zh", "zh or en")
	out := fs.String("out", "", "write the report to this file (default: standard output)")
	data := fs.String("data", "", "report from this data directory's files instead of a server")
	dsn := fs.String("ledger", "", "report from this ledger (postgres://... or a .db file) instead of a server")
	invPath := fs.String("inventory", "inventory.yml", "with --data or --ledger: the kiosk inventory")
	policyPath := fs.String("policy", "", "with --data or --ledger: the SLA policy file (default: the DB12/T 1060 preset)")
	chromium := fs.String("chromium", "", "Chromium binary that prints PDFs (default: found on PATH)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	ctx := context.Background()
	if *data == "" && *dsn == "" {
		q := url.Values{"month": {*month}, "format": {*format}, "lang": {*lang}}
		body, _, err := c.raw("GET", "/api/v1/sla/report?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		if _, err := w.Write(body); err != nil {
			return err
		}
	} else {
		l, err := ledger.Open(ctx, *dsn, filepath.Join(*data, "sla"))
		if err != nil {
			return err
		}
		defer l.Close()
		var p *policy.Policy
		if *policyPath == "" {
			p, err = policy.FromPreset(policy.PresetDB12)
		} else {
			p, err = policy.Load(*policyPath)
		}
		if err != nil {
			return err
		}
		inv, err := inventory.Load(*invPath)
		if err != nil {
			return err
		}
		engine, err := compliance.New(compliance.Config{Policy: p, Inventory: inv})
		if err != nil {
			return err
		}
		src := report.Sources{Ledger: l, Engine: engine, Inventory: inv}
		if *data != "" {
			if src.Inspections, err = inspection.OpenLedger(filepath.Join(*data, "inspections")); err != nil {
				return err
			}
		}
		start := time.Now()
		m, err := report.Build(ctx, src, *month, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "kioskmon: %d incidents of %s measured in %s\n", m.Compliance.Total.Incidents, *month, time.Since(start).Round(time.Millisecond))
		if _, err := report.Write(ctx, w, m, *format, *lang, *chromium); err != nil {
			return err
		}
	}
	if *out != "" {
		fmt.Fprintf(stderr, "kioskmon: report written to %s\n", *out)
	}
	return nil
}

// runSLAVerify verifies the whole ledger, which a report does only for the
// stretch it reads and without the stored hashes (see ledger.ScanChecked).
func runSLAVerify(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kioskmon sla verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "the data directory whose ledger (sla/ledger.db) to verify")
	dsn := fs.String("ledger", "", "the ledger to verify (postgres://... or a .db file)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *data == "" && *dsn == "" {
		fmt.Fprintln(stderr, slaUsage)
		return errors.New("sla verify: give --data or --ledger")
	}
	ctx := context.Background()
	l, err := ledger.Open(ctx, *dsn, filepath.Join(*data, "sla"))
	if err != nil {
		return err
	}
	defer l.Close()
	start := time.Now()
	n, err := l.Verify(ctx)
	if err != nil {
		return fmt.Errorf("the ledger fails verification after %d events: %w", n, err)
	}
	fmt.Fprintf(stdout, "%d events verified in %s: every hash and link of the chain, and every incident's lifecycle, are intact\n",
		n, time.Since(start).Round(time.Millisecond))
	return nil
}
