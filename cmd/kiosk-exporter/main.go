// Command kiosk-exporter runs on every kiosk: it reports the kiosk's devices,
// consumables, application, network and power on /metrics and pushes them to
// kioskmon through an on-disk queue.
//
//	kiosk-exporter --config FILE           run
//	kiosk-exporter --check --config FILE   validate the file and exit
//	kiosk-exporter --execd --config FILE   under Telegraf's inputs.execd (signal = "STDIN")
//	kiosk-exporter service-mode on|off --engineer NAME [--reason TEXT]
//	kiosk-exporter hash-page URL           the sha256 of a released page
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/exporter/agent"
	"github.com/kioskmon/kioskmon/exporter/collector/app"
	"github.com/kioskmon/kioskmon/exporter/collector/probe"
	"github.com/kioskmon/kioskmon/exporter/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if underServiceManager() {
		os.Exit(runAsService(os.Args[1:]))
	}
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "service-mode" {
		return serviceMode(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "hash-page" {
		if len(args) != 2 {
			fmt.Fprintln(stderr, "usage: kiosk-exporter hash-page URL   (prints the sha256 for collectors.probe.pages)")
			return 2
		}
		h, err := probe.HashURL(ctx, args[1])
		if err != nil {
			fmt.Fprintln(stderr, "kiosk-exporter:", err)
			return 1
		}
		fmt.Fprintln(stdout, h)
		return 0
	}
	fs := flag.NewFlagSet("kiosk-exporter", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "kiosk-exporter.yml", "configuration file (YAML, see exporter/README.md)")
	check := fs.Bool("check", false, "validate the configuration file and exit")
	execdMode := fs.Bool("execd", false, "Telegraf execd mode: gather once per line on stdin and write Influx line protocol to stdout; no push, no listener")
	logLevel := fs.String("log.level", "info", "log level: debug, info, warn or error")
	service := fs.String("service", "", "Windows: install, uninstall, start or stop the kiosk-exporter service (with --config)")
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *service != "" {
		if err := serviceCommand(*service, *configFile); err != nil {
			fmt.Fprintln(stderr, "kiosk-exporter:", err)
			return 1
		}
		fmt.Fprintf(stdout, "service kiosk-exporter: %s done\n", *service)
		return 0
	}
	if *version {
		fmt.Fprintln(stdout, exporter.Version)
		return 0
	}
	cfg, err := config.Load(*configFile)
	if err != nil {
		fmt.Fprintln(stderr, "kiosk-exporter:", err)
		return 1
	}
	if !*execdMode {
		if err := cfg.CheckOutputs(); err != nil {
			fmt.Fprintln(stderr, "kiosk-exporter:", err)
			return 1
		}
	}
	if *check {
		collectors, err := agent.Collectors(cfg, log.NewNopLogger())
		if err != nil {
			fmt.Fprintln(stderr, "kiosk-exporter:", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: ok (%d collectors, push %s)\n", *configFile, len(collectors), orNone(cfg.Push.URL))
		return 0
	}
	logger := log.NewLogfmtLogger(log.NewSyncWriter(stderr))
	logger = log.With(logger, "ts", log.DefaultTimestampUTC)
	lvl, err := level.Parse(*logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "kiosk-exporter: --log.level %q: use debug, info, warn or error\n", *logLevel)
		return 2
	}
	logger = level.NewFilter(logger, level.Allow(lvl))
	if *execdMode {
		if err := agent.RunExecd(ctx, cfg, stdin, stdout, logger); err != nil {
			level.Error(logger).Log("msg", "kiosk exporter failed", "err", err)
			return 1
		}
		return 0
	}
	if err := agent.Run(ctx, cfg, logger); err != nil {
		level.Error(logger).Log("msg", "kiosk exporter failed", "err", err)
		return 1
	}
	return 0
}

func orNone(s string) string {
	if s == "" {
		return "off"
	}
	return s
}

// serviceMode switches service mode through the running exporter's local
// endpoint (the app collector), so the switch is recorded and pushed.
func serviceMode(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kiosk-exporter service-mode", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kiosk-exporter service-mode on|off --engineer NAME [--reason TEXT] [--url URL] [--token T]")
		fs.PrintDefaults()
	}
	if len(args) == 0 || (args[0] != "on" && args[0] != "off") {
		fs.Usage()
		return 2
	}
	on := args[0] == "on"
	engineer := fs.String("engineer", "", "who is on site (required to switch on): the arrival is recorded under this name")
	reason := fs.String("reason", "", "why, e.g. \"paper jam\" or \"2-weekly inspection\"")
	url := fs.String("url", "http://127.0.0.1:9183", "the exporter's local endpoint (collectors.app.listen)")
	token := fs.String("token", "", "the endpoint's token (collectors.app.token), if it has one")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	sm, err := app.PostServiceMode(ctx, *url, *token, on, *engineer, *reason)
	if err != nil {
		fmt.Fprintln(stderr, "kiosk-exporter:", err)
		return 1
	}
	state := "off"
	if sm.On {
		state = "on"
	}
	fmt.Fprintf(stdout, "service mode %s since %s (%s)\n", state, sm.Since.Local().Format(time.RFC3339), sm.Engineer)
	return 0
}

// configArg returns the --config value of args, or the default.
func configArg(args []string) string {
	for i, a := range args {
		if (a == "--config" || a == "-config") && i+1 < len(args) {
			return args[i+1]
		}
		for _, p := range []string{"--config=", "-config="} {
			if v, ok := strings.CutPrefix(a, p); ok {
				return v
			}
		}
	}
	return "kiosk-exporter.yml"
}
