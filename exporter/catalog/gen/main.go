// Command gen writes the metric catalogue as Markdown (METRICS.md).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/kioskmon/kioskmon/exporter/catalog"
)

func main() {
	out := flag.String("out", "METRICS.md", "file to write")
	flag.Parse()
	if err := os.WriteFile(*out, catalog.Markdown(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
