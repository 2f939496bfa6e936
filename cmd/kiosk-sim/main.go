// Command kiosk-sim simulates a fleet of kiosks pushing their metrics to
// kioskmon over Prometheus remote write, each with its own push token.
//
//	kiosk-sim init --inventory FILE --tokens FILE --kiosks N   create a fleet
//	kiosk-sim run  --url URL --tokens FILE [--interval 15s]    push until stopped
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
	"github.com/golang/snappy"

	"github.com/kioskmon/kioskmon/ingest/inventory"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "kiosk-sim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: kiosk-sim init|run [flags] (see kiosk-sim init --help)")
	}
	fs := flag.NewFlagSet("kiosk-sim "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	tokens := fs.String("tokens", "sim-tokens.json", "file holding the simulated kiosks' push tokens (JSON, mode 0600)")
	switch args[0] {
	case "init":
		invPath := fs.String("inventory", "inventory.yml", "inventory file to create")
		kiosks := fs.Int("kiosks", 50, "number of kiosks")
		seed := fs.Uint64("seed", 1, "random seed")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return initFleet(*invPath, *tokens, *kiosks, *seed, stdout)
	case "run":
		url := fs.String("url", "http://127.0.0.1:8428", "kioskmon base URL")
		interval := fs.Duration("interval", 15*time.Second, "push interval of each kiosk")
		duration := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
		seed := fs.Uint64("seed", 1, "random seed")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *duration > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *duration)
			defer cancel()
		}
		return runFleet(ctx, *url, *tokens, *interval, *seed, stderr)
	default:
		return fmt.Errorf("unknown verb %q: use init or run", args[0])
	}
}

var districts = []string{"gulou", "taijiang", "cangshan", "jinan", "mawei"}
var providers = []string{"acme-om", "minjiang-service"}

func initFleet(invPath, tokensPath string, n int, seed uint64, stdout io.Writer) error {
	rng := rand.New(rand.NewPCG(seed, 7))
	inv := &inventory.Inventory{Version: "v1"}
	tokens := map[string]string{}
	sites := max(1, n/5)
	for s := range sites {
		d := districts[s%len(districts)]
		site := inventory.Site{ID: fmt.Sprintf("%s-hall-%02d", d, s), District: d, Timezone: "Asia/Shanghai",
			OpeningHours: []inventory.OpeningHours{{Days: "mon-fri", Open: "08:30", Close: "17:30"}, {Days: "sat", Open: "09:00", Close: "12:00"}}}
		if s%4 == 3 { // a police station's self-service room never closes
			site.OpeningHours = nil
		}
		inv.Sites = append(inv.Sites, site)
	}
	for i := range n {
		site := inv.Sites[i%sites]
		token, err := inventory.NewToken()
		if err != nil {
			return err
		}
		id := fmt.Sprintf("%s-%03d", site.District[:2], i+1)
		inv.Kiosks = append(inv.Kiosks, inventory.Kiosk{
			ID: id, Name: fmt.Sprintf("Kiosk %d at %s", i+1, site.ID), Site: site.ID, District: site.District,
			Provider: providers[i%len(providers)], Lat: 26.0 + rng.Float64()*0.2, Lon: 119.2 + rng.Float64()*0.2,
			DistanceKm: math.Round(rng.Float64()*1500) / 10, TokenSHA256: inventory.HashToken(token),
		})
		tokens[id] = token
	}
	if err := inv.Save(invPath); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(tokens, "", "  ")
	if err := os.WriteFile(tokensPath, data, 0o600); err != nil {
		return fmt.Errorf("write tokens: %w", err)
	}
	fmt.Fprintf(stdout, "created %d kiosks at %d sites in %s; their tokens are in %s\n", n, sites, invPath, tokensPath)
	return nil
}

// kiosk is one simulated kiosk's state, evolving between pushes.
type kiosk struct {
	id, token    string
	paper        [2]float64 // A4 trays
	toner        float64
	receipt      float64
	requests     float64
	errors       float64
	uptime       float64
	upsCharge    float64
	onBattery    bool
	rtt          float64
	loss         float64
	devicesFault map[string]bool
}

var devices = []string{"id_card_reader", "camera", "fingerprint_reader", "document_scanner", "qr_scanner", "a4_printer", "receipt_printer", "touch_screen"}

func (k *kiosk) step(rng *rand.Rand, dt float64) {
	prints := float64(rng.IntN(6))
	for t := range k.paper {
		k.paper[t] -= prints * 0.002 * rng.Float64()
		if k.paper[t] < 0.02 && rng.IntN(20) == 0 {
			k.paper[t] = 1 // refilled by staff
		}
		k.paper[t] = math.Max(0, k.paper[t])
	}
	k.toner = math.Max(0, k.toner-prints*0.0003)
	k.receipt = math.Max(0, k.receipt-prints*0.001)
	k.requests += prints * 3
	if rng.IntN(50) == 0 {
		k.errors++
	}
	k.uptime += dt
	k.rtt = 0.02 + rng.ExpFloat64()*0.01
	k.loss = 0
	if rng.IntN(100) == 0 {
		k.loss = rng.Float64() * 0.3
	}
	if rng.IntN(500) == 0 {
		k.onBattery = !k.onBattery
	}
	if k.onBattery {
		k.upsCharge = math.Max(0, k.upsCharge-0.01)
	} else {
		k.upsCharge = math.Min(1, k.upsCharge+0.005)
	}
	for _, d := range devices {
		if rng.IntN(2000) == 0 {
			k.devicesFault[d] = !k.devicesFault[d]
		}
	}
}

func (k *kiosk) appendSeries(wr *prompb.WriteRequest, now int64) {
	add := func(value float64, name string, labels ...string) {
		ls := []prompb.Label{{Name: "__name__", Value: name}, {Name: "job", Value: "kiosk-sim"}}
		for i := 0; i+1 < len(labels); i += 2 {
			ls = append(ls, prompb.Label{Name: labels[i], Value: labels[i+1]})
		}
		wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{Labels: ls, Samples: []prompb.Sample{{Value: value, Timestamp: now}}})
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	add(1, "up")
	for t, level := range k.paper {
		add(level, "kiosk_paper_level_ratio", "printer", "a4", "tray", strconv.Itoa(t+1))
	}
	add(k.receipt, "kiosk_paper_level_ratio", "printer", "receipt", "tray", "1")
	add(k.toner, "kiosk_toner_level_ratio", "printer", "a4", "marker", "black")
	for _, d := range devices {
		add(b2f(!k.devicesFault[d]), "kiosk_peripheral_up", "device", d)
	}
	add(k.requests, "kiosk_app_requests_total", "page", "home")
	add(k.errors, "kiosk_app_errors_total", "page", "home")
	add(float64(now)/1000, "kiosk_app_heartbeat_timestamp_seconds")
	add(k.rtt, "kiosk_network_rtt_seconds", "target", "platform")
	add(k.loss, "kiosk_network_packet_loss_ratio", "target", "platform")
	add(b2f(k.onBattery), "kiosk_ups_on_battery")
	add(k.upsCharge, "kiosk_ups_battery_charge_ratio")
	add(k.upsCharge*1800, "kiosk_ups_runtime_seconds")
	add(k.uptime, "kiosk_host_uptime_seconds")
}

func runFleet(ctx context.Context, url, tokensPath string, interval time.Duration, seed uint64, stderr io.Writer) error {
	data, err := os.ReadFile(tokensPath)
	if err != nil {
		return fmt.Errorf("read tokens (create them with kiosk-sim init): %w", err)
	}
	var tokens map[string]string
	if err := json.Unmarshal(data, &tokens); err != nil {
		return fmt.Errorf("tokens file %s: %w", tokensPath, err)
	}
	ids := make([]string, 0, len(tokens))
	for id := range tokens {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(ids) == 0 {
		return fmt.Errorf("no kiosks in %s", tokensPath)
	}
	rng := rand.New(rand.NewPCG(seed, 11))
	fleet := make([]*kiosk, len(ids))
	for i, id := range ids {
		fleet[i] = &kiosk{id: id, token: tokens[id], paper: [2]float64{rng.Float64(), rng.Float64()}, toner: 0.3 + rng.Float64()*0.7,
			receipt: rng.Float64(), upsCharge: 1, uptime: rng.Float64() * 86400, devicesFault: map[string]bool{}}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	var sent, failed atomic.Int64
	// Spread the kiosks over the interval, as real ones are.
	gap := interval / time.Duration(len(fleet))
	tick := time.NewTicker(gap)
	defer tick.Stop()
	report := time.NewTicker(time.Minute)
	defer report.Stop()
	fmt.Fprintf(stderr, "kiosk-sim: %d kiosks pushing every %s to %s\n", len(fleet), interval, url)
	for i := 0; ; i = (i + 1) % len(fleet) {
		select {
		case <-ctx.Done():
			fmt.Fprintf(stderr, "kiosk-sim: stopped; %d pushes sent, %d failed\n", sent.Load(), failed.Load())
			return nil
		case <-report.C:
			fmt.Fprintf(stderr, "kiosk-sim: %d pushes sent, %d failed\n", sent.Load(), failed.Load())
			continue
		case <-tick.C:
		}
		k := fleet[i]
		k.step(rng, interval.Seconds())
		var wr prompb.WriteRequest
		k.appendSeries(&wr, time.Now().UnixMilli())
		body := snappy.Encode(nil, wr.MarshalProtobuf(nil))
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/api/v1/write", bytes.NewReader(body))
		req.SetBasicAuth(k.id, k.token)
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				failed.Add(1)
				fmt.Fprintf(stderr, "kiosk-sim: kiosk %s: %s\n", k.id, err)
			}
			continue
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			failed.Add(1)
			fmt.Fprintf(stderr, "kiosk-sim: kiosk %s: %s: %s\n", k.id, resp.Status, msg)
			continue
		}
		sent.Add(1)
	}
}
