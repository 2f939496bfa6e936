// Command kioskmon is the kioskmon server and its administration tool.
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
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `kioskmon: monitoring, alerting and SLA for fleets of self-service kiosks

usage:
  kioskmon serve [flags]              run the server (see kioskmon serve --help)
  kioskmon kiosks add|token|list ...  manage the kiosk inventory
  kioskmon rules check|list|export    the grading rulebook (see kioskmon rules)
  kioskmon incidents list|show|report-fault|ack|dispatch|arrive|resolve|close ...
                                      the incident ledger (see kioskmon incidents help)
  kioskmon tokens add|list|revoke     API tokens and their roles
  kioskmon sla report --month YYYY-MM the monthly SLA report (html, pdf, csv; zh, en)
  kioskmon version                    print the version
`

// run dispatches a subcommand and returns the exit code, so that deferred
// cleanup runs before the process exits.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		err = runServe(ctx, args[1:], stdout, stderr)
	case "kiosks":
		err = runKiosks(args[1:], stdout, stderr)
	case "rules":
		err = runRules(args[1:], stdout, stderr)
	case "incidents":
		err = runIncidents(args[1:], stdout, stderr)
	case "tokens":
		err = runTokens(args[1:], stdout, stderr)
	case "sla":
		err = runSLA(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "kioskmon", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "kioskmon: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "kioskmon:", err)
		return 1
	}
	return 0
}
