package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kioskmon/kioskmon/alerting/rulebook"
	"github.com/kioskmon/kioskmon/alerting/ruletest"
	"github.com/kioskmon/kioskmon/server"
)

// runRules: kioskmon rules check|list|export.
func runRules(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: kioskmon rules check FILE | test FILE... | list [--rulebook FILE] [--preset NAME] | export [--rulebook FILE] [--preset NAME] --out DIR")
	}
	verb := args[0]
	fs := flag.NewFlagSet("kioskmon rules "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	switch verb {
	case "check":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return errors.New("usage: kioskmon rules check FILE...")
		}
		for _, path := range fs.Args() {
			rb, err := rulebook.Load(path)
			if err != nil {
				return err
			}
			for preset := range rulebook.Presets {
				if _, err := rb.Compile(preset); err != nil {
					return fmt.Errorf("%s: preset %s: %w", path, preset, err)
				}
			}
			fmt.Fprintf(stdout, "%s: ok (%d faults, preset %s, %d contract overrides)\n", path, len(rb.Faults), rb.Preset, len(rb.Overrides))
		}
		return nil
	case "test":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return errors.New("usage: kioskmon rules test FILE... (promtool's test format)")
		}
		dir, err := os.MkdirTemp("", "kioskmon-rules-test-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		failed := 0
		// The embedded storage is one per process: each test gets its own
		// time range in it (see ruletest.Base).
		st, err := server.OpenRuleTestStorage(dir)
		if err != nil {
			return err
		}
		defer st.Close()
		now, ran := time.Now(), 0
		for _, path := range fs.Args() {
			n, bad, err := ruletest.Run(context.Background(), path, st, now, ran, stdout)
			if err != nil {
				return err
			}
			ran, failed = ran+n, failed+bad
		}
		if failed > 0 {
			return fmt.Errorf("%d rule tests failed", failed)
		}
		return nil
	case "list", "export":
		file := fs.String("rulebook", "", "rulebook file (default: the built-in rulebook)")
		preset := fs.String("preset", "", "severity preset: db12-1060 (urgent/moderate/minor) or fujian-2022 (severe/general); default: the rulebook's")
		out := fs.String("out", "", "directory the rule files are written to (export)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		rb, err := rulebook.Load(*file)
		if err != nil {
			return err
		}
		if verb == "list" {
			lines, err := rb.List(*preset)
			if err != nil {
				return err
			}
			for _, l := range lines {
				fmt.Fprintln(stdout, l)
			}
			return nil
		}
		if *out == "" {
			return errors.New("kioskmon rules export: --out DIR is required")
		}
		paths, err := rb.Export(*preset, *out)
		if err != nil {
			return err
		}
		for _, p := range paths {
			fmt.Fprintln(stdout, p)
		}
		return nil
	}
	return fmt.Errorf("kioskmon rules: unknown verb %q (check, list or export)", verb)
}
