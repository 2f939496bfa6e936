package execd

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/ingest/lineprotocol"
)

// fakeDevice reports one series of each kind: a gauge, a counter, a state
// enumeration and a histogram, counting its gathers.
type fakeDevice struct{ gathers int }

func (f *fakeDevice) Name() string { return "fake" }

func (f *fakeDevice) Collect(_ context.Context, s *exporter.Snapshot) error {
	f.gathers++
	s.Add("kiosk_paper_level_ratio", 0.5, "a4", "main tray")
	s.Add("kiosk_printed_pages_total", float64(100*f.gathers), "a4")
	s.AddState("kiosk_paper_state", "low", "a4", "main tray")
	s.AddHistogram("kiosk_app_page_load_seconds", []uint64{1, 2, 3, 3, 3, 3, 3, 3, 3}, 3, 1.25, "home")
	return nil
}

type point struct {
	tags  map[string]string
	value float64
	ts    int64
}

func TestOneGatherPerLine(t *testing.T) {
	dev := &fakeDevice{}
	g := exporter.NewGatherer([]exporter.Collector{dev}, 5*time.Second, log.NewNopLogger())
	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), g, stdinR, stdoutW, log.NewNopLogger()); stdoutW.Close() }()

	out := bufio.NewReader(stdoutR)
	readBatch := func() map[string][]point {
		t.Helper()
		batch := map[string][]point{}
		var p lineprotocol.Parser
		// A batch ends with the exporter's own last series (collector duration).
		for {
			line, err := out.ReadString('\n')
			if err != nil {
				t.Fatalf("read stdout: %v (got %v)", err, batch)
			}
			p.Reset([]byte(line))
			if !p.Next() || p.Err() != nil {
				t.Fatalf("line %q does not parse: %v", line, p.Err())
			}
			l := p.Line()
			if len(l.Fields) != 1 || string(l.Fields[0].Key) != "value" || !l.HasTimestamp {
				t.Fatalf("line %q: want one field named value and a timestamp", line)
			}
			tags := map[string]string{}
			for _, tg := range l.Tags {
				tags[string(tg.Key)] = string(tg.Value)
			}
			name := string(l.Measurement)
			batch[name] = append(batch[name], point{tags, l.Fields[0].Value, l.Timestamp})
			if name == "kiosk_exporter_collector_duration_seconds" {
				return batch
			}
		}
	}
	for i := 1; i <= 3; i++ {
		fmt.Fprintln(stdinW)
		b := readBatch()
		if dev.gathers != i {
			t.Fatalf("after %d lines on stdin: %d gathers", i, dev.gathers)
		}
		if pt := b["kiosk_printed_pages_total"]; len(pt) != 1 || pt[0].value != float64(100*i) || pt[0].tags["printer"] != "a4" {
			t.Fatalf("counter: %+v", pt)
		}
		if pt := b["kiosk_paper_level_ratio"]; len(pt) != 1 || pt[0].value != 0.5 || pt[0].tags["tray"] != "main tray" {
			t.Fatalf("gauge with an escaped tag value: %+v", pt)
		}
		states := map[string]float64{}
		for _, pt := range b["kiosk_paper_state"] {
			states[pt.tags["state"]] = pt.value
		}
		if len(states) != 3 || states["low"] != 1 || states["ok"] != 0 || states["empty"] != 0 {
			t.Fatalf("state enumeration: %v", states)
		}
		buckets := map[string]float64{}
		for _, pt := range b["kiosk_app_page_load_seconds_bucket"] {
			buckets[pt.tags["le"]] = pt.value
		}
		if buckets["0.1"] != 1 || buckets["+Inf"] != 3 || len(buckets) != 10 ||
			b["kiosk_app_page_load_seconds_sum"][0].value != 1.25 || b["kiosk_app_page_load_seconds_count"][0].value != 3 {
			t.Fatalf("histogram: %v %+v", buckets, b["kiosk_app_page_load_seconds_sum"])
		}
		if ts := time.Unix(0, b["kiosk_paper_level_ratio"][0].ts); time.Since(ts) > time.Minute || time.Since(ts) < 0 {
			t.Fatalf("timestamp %s is not now", ts)
		}
		if strings.Contains(fmt.Sprint(b), "kiosk_exporter_build_info") == false {
			t.Fatalf("build info missing: %v", b)
		}
	}
	stdinW.Close() // Telegraf stops: Run returns nil
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if dev.gathers != 3 {
		t.Fatalf("%d gathers for 3 lines", dev.gathers)
	}
}
