// Command ingest-bench sends a bounded, kiosk-like write load to a server over
// HTTP and reports samples/s and request latency as JSON. It drives kioskmon
// and its peers (VictoriaMetrics, Prometheus) the same way, so that
// scripts/bench.sh can compare them in one run.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
	"github.com/golang/snappy"
)

type options struct {
	url, protocol, shape, auth, out, inventoryOut string
	kiosks, concurrency, backlogSamples           int
	duration, warmup                              time.Duration
	maxSamples                                    int64
	gzip                                          bool
	seed                                          uint64
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "ingest-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("ingest-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8428", "base URL of the server under test")
	fs.StringVar(&o.protocol, "protocol", "remote-write", "remote-write or influx")
	fs.StringVar(&o.shape, "shape", "live", "live: each request is one kiosk's current samples; backlog: each request carries --backlog-samples of one kiosk's past")
	fs.StringVar(&o.auth, "auth", "basic", "basic: Basic auth as the kiosk whose data the request carries; none")
	fs.StringVar(&o.out, "out", "", "write the JSON result here (default stdout)")
	fs.StringVar(&o.inventoryOut, "inventory-out", "", "write a kioskmon inventory of the simulated kiosks to this file and exit")
	fs.IntVar(&o.kiosks, "kiosks", 5000, "number of simulated kiosks")
	fs.IntVar(&o.concurrency, "concurrency", 64, "concurrent connections")
	fs.IntVar(&o.backlogSamples, "backlog-samples", 10000, "samples per request in the backlog shape")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "measured time (after the warm-up)")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "time sent but not measured")
	fs.Int64Var(&o.maxSamples, "max-samples", 0, "stop after this many acknowledged samples (0: no limit)")
	fs.BoolVar(&o.gzip, "gzip", false, "gzip Influx bodies, as Telegraf's content_encoding = \"gzip\" does")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the generated values")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.inventoryOut != "" {
		return writeInventory(o.inventoryOut, o.kiosks)
	}
	if o.protocol != "remote-write" && o.protocol != "influx" {
		return fmt.Errorf("--protocol %q: want remote-write or influx", o.protocol)
	}
	if o.shape != "live" && o.shape != "backlog" {
		return fmt.Errorf("--shape %q: want live or backlog", o.shape)
	}
	res, err := runLoad(ctx, o, stderr)
	if err != nil {
		return err
	}
	data, _ := json.MarshalIndent(res, "", "  ")
	if o.out != "" {
		return os.WriteFile(o.out, append(data, '\n'), 0o644)
	}
	_, err = stdout.Write(append(data, '\n'))
	return err
}

// tokenFor is the benchmark's deterministic push token of a kiosk.
func tokenFor(id string) string {
	sum := sha256.Sum256([]byte("kioskmon-bench/" + id))
	return hex.EncodeToString(sum[:])
}

func kioskID(i int) string { return fmt.Sprintf("bench-%05d", i) }

func writeInventory(path string, n int) error {
	var b bytes.Buffer
	b.WriteString("version: v1\nsites:\n  - id: bench-site\n    district: bench\nkiosks:\n")
	for i := range n {
		id := kioskID(i)
		sum := sha256.Sum256([]byte(tokenFor(id)))
		fmt.Fprintf(&b, "  - id: %s\n    site: bench-site\n    district: bench\n    provider: bench-om\n    token_sha256: %s\n", id, hex.EncodeToString(sum[:]))
	}
	return os.WriteFile(path, b.Bytes(), 0o600)
}

// Result is what one run measured.
type Result struct {
	Protocol       string         `json:"protocol"`
	Shape          string         `json:"shape"`
	Kiosks         int            `json:"kiosks"`
	Concurrency    int            `json:"concurrency"`
	SamplesPerReq  int            `json:"samples_per_request"`
	Seconds        float64        `json:"seconds"`
	Samples        int64          `json:"samples"`
	SamplesPerSec  float64        `json:"samples_per_sec"`
	RequestsPerSec float64        `json:"requests_per_sec"`
	P50Ms          float64        `json:"p50_ms"`
	P99Ms          float64        `json:"p99_ms"`
	BodyBytes      float64        `json:"body_bytes_per_sample"`
	Errors         map[string]int `json:"errors"`
	FirstErrors    []string       `json:"first_errors,omitempty"`
}

func runLoad(ctx context.Context, o options, stderr io.Writer) (*Result, error) {
	// Live kiosks report the last hour on their 15 s grid; a backlog is a day
	// old. Both stay in the past, inside every peer's accepted window.
	start := time.Now().Add(-time.Hour)
	if o.shape == "backlog" {
		start = time.Now().Add(-24 * time.Hour)
	}
	fleet := newFleet(o.kiosks, o.seed, start, o.auth == "none")
	transport := &http.Transport{MaxIdleConnsPerHost: o.concurrency, MaxConnsPerHost: o.concurrency, DisableCompression: true}
	client := &http.Client{Transport: transport, Timeout: 60 * time.Second}
	path := "/api/v1/write"
	if o.protocol == "influx" {
		path = "/write?precision=ms"
	}

	var (
		next       atomic.Int64 // next request number; picks the kiosk
		measuring  atomic.Bool
		stopped    atomic.Bool
		acked      atomic.Int64
		requests   atomic.Int64
		bodyBytes  atomic.Int64
		mu         sync.Mutex
		errs       = map[string]int{}
		firstErrs  []string
		latencies  [][]time.Duration
		perRequest int
	)
	samplesPer := seriesPerKiosk
	if o.shape == "backlog" {
		samplesPer = max(1, o.backlogSamples/seriesPerKiosk) * seriesPerKiosk
	}
	perRequest = samplesPer
	latencies = make([][]time.Duration, o.concurrency)
	var wg sync.WaitGroup
	for w := range o.concurrency {
		wg.Go(func() {
			enc := newEncoder(o)
			for !stopped.Load() && ctx.Err() == nil {
				n := next.Add(1) - 1
				k := fleet.kiosks[int(n)%len(fleet.kiosks)]
				body, samples, ok := enc.encode(k, o.shape, samplesPer)
				if !ok {
					stopped.Store(true) // the backlog reached the present
					return
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, o.url+path, bytes.NewReader(body))
				enc.setHeaders(req)
				if o.auth == "basic" {
					req.SetBasicAuth(k.id, k.token)
				}
				start := time.Now()
				resp, err := client.Do(req)
				elapsed := time.Since(start)
				status := "error"
				if err == nil {
					msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
					resp.Body.Close()
					status = strconv.Itoa(resp.StatusCode)
					if resp.StatusCode/100 == 2 {
						status = ""
					} else {
						err = fmt.Errorf("%s: %s", resp.Status, msg)
					}
				}
				if !measuring.Load() {
					continue
				}
				requests.Add(1)
				if status == "" {
					acked.Add(int64(samples))
					bodyBytes.Add(int64(len(body)))
					latencies[w] = append(latencies[w], elapsed)
					if o.maxSamples > 0 && acked.Load() >= o.maxSamples {
						stopped.Store(true)
					}
					continue
				}
				mu.Lock()
				errs[status]++
				if len(firstErrs) < 5 {
					firstErrs = append(firstErrs, err.Error())
				}
				mu.Unlock()
			}
		})
	}
	fmt.Fprintf(stderr, "ingest-bench: %s %s to %s: %d kiosks, %d connections, %d samples/request; warm-up %s\n",
		o.protocol, o.shape, o.url, o.kiosks, o.concurrency, samplesPer, o.warmup)
	// The warm-up lasts at least --warmup and at least one request of every
	// kiosk, so that creating the series is not measured as ingest.
	warmupEnd := time.Now().Add(o.warmup)
	for (time.Now().Before(warmupEnd) || next.Load() < int64(o.kiosks)+int64(o.concurrency)) && ctx.Err() == nil && !stopped.Load() {
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Fprintf(stderr, "ingest-bench: warm-up done after %d requests; measuring for %s\n", next.Load(), o.duration)
	measuring.Store(true)
	start = time.Now()
	deadline := time.NewTimer(o.duration)
	progress := time.NewTicker(5 * time.Second)
	for !stopped.Load() && ctx.Err() == nil {
		select {
		case <-deadline.C:
			stopped.Store(true)
		case <-progress.C:
			fmt.Fprintf(stderr, "ingest-bench: %.0fs: %.0f samples/s\n", time.Since(start).Seconds(), float64(acked.Load())/time.Since(start).Seconds())
		case <-time.After(50 * time.Millisecond):
		}
	}
	elapsed := time.Since(start).Seconds()
	wg.Wait()
	var all []time.Duration
	for _, l := range latencies {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds()) / 1000
	}
	res := &Result{
		Protocol: o.protocol, Shape: o.shape, Kiosks: o.kiosks, Concurrency: o.concurrency, SamplesPerReq: perRequest,
		Seconds: elapsed, Samples: acked.Load(), SamplesPerSec: float64(acked.Load()) / elapsed,
		RequestsPerSec: float64(requests.Load()) / elapsed, P50Ms: pct(0.50), P99Ms: pct(0.99),
		Errors: errs, FirstErrors: firstErrs,
	}
	if acked.Load() > 0 {
		res.BodyBytes = float64(bodyBytes.Load()) / float64(acked.Load())
	}
	fmt.Fprintf(stderr, "ingest-bench: %.0f samples/s, p50 %.2f ms, p99 %.2f ms, %d errors\n", res.SamplesPerSec, res.P50Ms, res.P99Ms, len(firstErrs))
	return res, nil
}

// encoder builds request bodies into reused buffers.
type encoder struct {
	o    options
	wr   prompb.WriteRequest
	raw  []byte
	body []byte
	gz   *gzip.Writer
	gzb  bytes.Buffer
}

func newEncoder(o options) *encoder {
	e := &encoder{o: o}
	if o.gzip {
		e.gz, _ = gzip.NewWriterLevel(&e.gzb, gzip.BestSpeed)
	}
	return e
}

func (e *encoder) setHeaders(req *http.Request) {
	if e.o.protocol == "remote-write" {
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		return
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if e.o.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
}

// encode advances kiosk k by the points of one request and encodes them.
func (e *encoder) encode(k *simKiosk, shape string, samples int) ([]byte, int, bool) {
	points := samples / seriesPerKiosk
	k.mu.Lock()
	defer k.mu.Unlock()
	if shape == "live" {
		points = 1
	}
	if k.cursor+int64(points)*stepMs > time.Now().UnixMilli() {
		return nil, 0, false
	}
	k.fill(points)
	if e.o.protocol == "remote-write" {
		e.wr.Timeseries = e.wr.Timeseries[:0]
		for s := range k.series {
			ss := &k.series[s]
			ts := prompb.TimeSeries{Labels: ss.labels, Samples: ss.samples[:0]}
			for p := range points {
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: k.cursor + int64(p)*stepMs, Value: k.value(s, p)})
			}
			ss.samples = ts.Samples
			e.wr.Timeseries = append(e.wr.Timeseries, ts)
		}
		e.raw = e.wr.MarshalProtobuf(e.raw[:0])
		e.body = snappy.Encode(e.body[:cap(e.body)], e.raw)
	} else {
		e.raw = e.raw[:0]
		for p := range points {
			for s := range k.series {
				e.raw = append(e.raw, k.series[s].influxPrefix...)
				e.raw = strconv.AppendFloat(e.raw, k.value(s, p), 'g', -1, 64)
				e.raw = append(e.raw, ' ')
				e.raw = strconv.AppendInt(e.raw, k.cursor+int64(p)*stepMs, 10)
				e.raw = append(e.raw, '\n')
			}
		}
		e.body = e.raw
		if e.o.gzip {
			e.gzb.Reset()
			e.gz.Reset(&e.gzb)
			e.gz.Write(e.raw)
			e.gz.Close()
			e.body = e.gzb.Bytes()
		}
	}
	k.advance(points)
	return e.body, points * seriesPerKiosk, true
}
