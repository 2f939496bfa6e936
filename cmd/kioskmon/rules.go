package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/kioskmon/kioskmon/alerting/rulebook"
)

// runRules: kioskmon rules check|list|export.
func runRules(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: kioskmon rules check FILE | list [--rulebook FILE] [--preset NAME] | export [--rulebook FILE] [--preset NAME] --out DIR")
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
