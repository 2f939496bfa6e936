// Command kiosk-sim simulates a fleet of kiosks pushing to kioskmon through
// the exporter's own queue and push client, with faults injected at random
// or from a script, and the ground truth written down.
//
//	kiosk-sim --kiosks N --inventory FILE --push URL [--seed S] [--speed X]
//	          [--duration D] [--faults FILE] [--truth FILE]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/kioskmon/kioskmon/exporter/sim"
	"github.com/kioskmon/kioskmon/yamlfile"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kiosk-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kiosk-sim --kiosks N --inventory FILE --push URL [--seed S] [--speed X] [--duration D | --catch-up D] [--faults FILE] [--truth FILE]")
		fs.PrintDefaults()
	}
	var cfg sim.Config
	var duration, catchUp, interval yamlfile.Duration = 0, 0, yamlfile.Duration(15 * time.Second)
	fs.IntVar(&cfg.Kiosks, "kiosks", 100, "number of simulated kiosks")
	fs.StringVar(&cfg.InventoryPath, "inventory", "inventory.yml", "kioskmon's inventory file: the kiosks it lacks are added (token hashes only)")
	fs.StringVar(&cfg.TokensPath, "tokens", "", "where the simulated kiosks' tokens are kept, mode 0600 (default: FILE.sim-tokens.json beside the inventory)")
	fs.StringVar(&cfg.PushURL, "push", "http://127.0.0.1:8428", "base URL of the kioskmon to push to")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed: the same seed, fleet and script give the same run")
	fs.Float64Var(&cfg.Speed, "speed", 1, "simulated seconds per real second; above 1 the clock runs from now minus --duration up to now")
	fs.Var(&duration, "duration", "simulated time to cover, e.g. 30d or 6h (default: until stopped; required with --speed above 1)")
	fs.Var(&catchUp, "catch-up", "start the clock this long before now, run it at --speed until it reaches now, then live until stopped: history whose faults and consumables carry on into the live fleet (make run uses 1h)")
	endFlag := fs.String("end", "", "with --speed above 1, the simulated time the run ends at, RFC 3339 (default: now); a fixed end replays the same days")
	fs.Var(&interval, "interval", "simulated time between a kiosk's gathers")
	fs.Float64Var(&cfg.FaultRate, "fault-rate", 0.2, "random faults per kiosk per simulated day (ignored with --faults)")
	faultsFile := fs.String("faults", "", "YAML list of scripted faults {at: 90s, kiosk: ID, fault: FAULT_ID, for: 20m} instead of random ones")
	fs.BoolVar(&cfg.TruthOnly, "truth-only", false, "only simulate the faults over --duration up to --end and write --truth, as fast as possible: no metrics, no push")
	fs.StringVar(&cfg.TruthPath, "truth", "", "write one JSON line per injected fault {kiosk, fault, start, end} to this file")
	fs.StringVar(&cfg.QueueDir, "queue-dir", "", "directory of the kiosks' push queues (default: a temporary directory, removed at exit)")
	drain := yamlfile.Duration(5 * time.Minute)
	fs.Var(&drain, "drain-timeout", "how long to wait at the end for the queues to be delivered")
	progress := yamlfile.Duration(10 * time.Second)
	fs.Var(&progress, "progress", "interval of progress lines on stderr")
	logLevel := fs.String("log.level", "info", "log level: debug, info, warn or error")
	shard := fs.String("shard", "", "K/N: simulate only every N-th kiosk of the fleet starting at index K, to spread a fleet too large for one process's open files over N processes (start the others once shard 0 is simulating; give them all the same --end)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kiosk-sim: unexpected argument %q (flags only; see kiosk-sim --help)\n", fs.Arg(0))
		return 2
	}
	lvl, err := level.Parse(*logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "kiosk-sim: --log.level %q: use debug, info, warn or error\n", *logLevel)
		return 2
	}
	logger := level.NewFilter(log.With(log.NewLogfmtLogger(log.NewSyncWriter(stderr)), "ts", log.DefaultTimestampUTC), level.Allow(lvl))
	if *endFlag != "" {
		if cfg.End, err = time.Parse(time.RFC3339, *endFlag); err != nil {
			fmt.Fprintf(stderr, "kiosk-sim: --end %q: give a time such as 2026-11-24T00:00:00+08:00\n", *endFlag)
			return 2
		}
	}
	if *shard != "" {
		if _, err := fmt.Sscanf(*shard, "%d/%d", &cfg.Shard, &cfg.Shards); err != nil || cfg.Shards < 1 {
			fmt.Fprintf(stderr, "kiosk-sim: --shard %q: give K/N, such as 0/4\n", *shard)
			return 2
		}
	}
	cfg.Duration, cfg.CatchUp, cfg.Interval = time.Duration(duration), time.Duration(catchUp), time.Duration(interval)
	cfg.DrainTimeout, cfg.ProgressEvery, cfg.Progress = time.Duration(drain), time.Duration(progress), stderr
	if *faultsFile != "" {
		ids := map[string]bool{}
		for i := range max(cfg.Kiosks, 0) {
			ids[sim.KioskID(i)] = true
		}
		if cfg.Script, err = sim.LoadScript(*faultsFile, ids); err != nil {
			fmt.Fprintln(stderr, "kiosk-sim:", err)
			return 1
		}
	}
	sum, err := sim.Run(ctx, cfg, logger)
	if err != nil {
		fmt.Fprintln(stderr, "kiosk-sim:", err)
		return 1
	}
	fmt.Fprintf(stdout, "simulated %d kiosks from %s to %s: %d gathers, %d samples queued, %d delivered (%.0f samples/s), %d dropped, %d undelivered; %d faults injected\n",
		sum.Kiosks, sum.Start.UTC().Format(time.RFC3339), sum.End.UTC().Format(time.RFC3339), sum.Gathers, sum.Samples,
		sum.Delivered, sum.SamplesPerRealSecond, sum.Dropped, sum.Undelivered, sum.FaultsInjected)
	if sum.Undelivered > 0 {
		return 1
	}
	return 0
}
