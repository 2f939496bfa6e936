package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskmon/kioskmon/internal/peertest"
)

// TestPrometheusRemoteWrite has a real Prometheus scrape a target and
// remote-write to kioskmon with Basic auth, then finds the samples with the
// inventory's labels, and kiosk= taken from the credentials, not the target.
func TestPrometheusRemoteWrite(t *testing.T) {
	prometheus := peertest.Tool(t, "prometheus", "prometheus")
	inv := filepath.Join(t.TempDir(), "inventory.yml")
	token := addKiosk(t, inv, "gl-001", "gulou-hall")
	s := newServer(t, inv)

	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "# TYPE kiosk_paper_level_ratio gauge\nkiosk_paper_level_ratio{tray=\"1\",kiosk=\"spoofed\"} 0.42\n")
	}))
	defer target.Close()

	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte(token), 0o600)
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: kiosk
    static_configs:
      - targets: [%q]
remote_write:
  - url: %s
    basic_auth:
      username: gl-001
      password_file: %s
    queue_config:
      batch_send_deadline: 500ms
      min_backoff: 100ms
`, strings.TrimPrefix(target.URL, "http://"), s.url("/api/v1/write"), tokenFile)
	configFile := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(configFile, []byte(config), 0o600)
	var promLog syncBuffer
	cmd := exec.Command(prometheus, "--config.file="+configFile, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+freePort(t), "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &promLog, &promLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	got := s.waitExport(`kiosk_paper_level_ratio`, 60*time.Second, func(ss []exportedSeries) bool { return len(ss) > 0 })
	m := got[0].Metric
	want := map[string]string{"__name__": "kiosk_paper_level_ratio", "tray": "1", "kiosk": "gl-001", "site": "gulou-hall",
		"district": "gulou", "provider": "acme-om", "job": "kiosk"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("label %s=%q, want %q (series %v)\nprometheus log:\n%s", k, m[k], v, m, promLog.String())
		}
	}
	if got[0].Values[0] != 0.42 {
		t.Errorf("value %v, want 0.42", got[0].Values[0])
	}
}

// TestTelegrafInfluxAndTextPush posts what Telegraf's influxdb output and a
// text-format push send, and reads both back through the query API.
func TestTelegrafInfluxAndTextPush(t *testing.T) {
	inv := filepath.Join(t.TempDir(), "inventory.yml")
	token := addKiosk(t, inv, "gl-002", "gulou-hall")
	s := newServer(t, inv)
	ctx := context.Background()

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	fmt.Fprintf(zw, "kiosk_ups,ups=main,host=kiosk-02 battery_charge_ratio=0.8,on_battery=0i,status=\"OL\" %d\n", time.Now().UnixNano())
	zw.Close()
	req, _ := http.NewRequest(http.MethodPost, s.url("/write?db=telegraf"), &gz)
	req.SetBasicAuth("gl-002", token)
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("User-Agent", "Telegraf/1.37.2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("influx write: %d", resp.StatusCode)
	}
	status, msg := post(t, ctx, s.url("/api/v1/import/prometheus"), []byte("kiosk_app_heartbeat_age_seconds{page=\"home\"} 3\n"),
		"Authorization", "Bearer "+token)
	if status != 204 {
		t.Fatalf("text push: %d %s", status, msg)
	}
	// The kiosk's own series: kioskmon's (opening hours, inspections) carry
	// the kiosk label too.
	got := s.waitExport(`{kiosk="gl-002",__name__=~"kiosk_.+"}`, 30*time.Second, func(ss []exportedSeries) bool { return len(ss) == 3 })
	names := map[string]float64{}
	for _, es := range got {
		names[es.Metric["__name__"]] = es.Values[0]
		if es.Metric["site"] != "gulou-hall" || es.Metric["provider"] != "acme-om" {
			t.Errorf("series %v lacks inventory labels", es.Metric)
		}
	}
	want := map[string]float64{"kiosk_ups_battery_charge_ratio": 0.8, "kiosk_ups_on_battery": 0, "kiosk_app_heartbeat_age_seconds": 3}
	for k, v := range want {
		if got, ok := names[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
}

// TestRejectionsOverHTTP checks statuses, messages and counters of the real server.
func TestRejectionsOverHTTP(t *testing.T) {
	inv := filepath.Join(t.TempDir(), "inventory.yml")
	token := addKiosk(t, inv, "gl-003", "gulou-hall")
	s := newServer(t, inv, "--ingest.max-request-bytes", "2KiB", "--ingest.max-decoded-bytes", "4KiB")
	ctx := context.Background()
	future := time.Now().Add(20 * time.Minute).UnixNano()
	cases := []struct {
		body    string
		headers []string
		status  int
		msg     string
	}{
		{"cpu v=1", nil, 401, "no kiosk credentials"},
		{"cpu v=1", []string{"Authorization", "Bearer wrong"}, 401, "matches no kiosk"},
		{strings.Repeat("x", 3000), []string{"Authorization", "Bearer " + token}, 413, "larger than the limit of 2048 bytes"},
		{fmt.Sprintf("ok v=1\nlate v=1 %d\n", future), []string{"Authorization", "Bearer " + token}, 400, `sent late_v at`},
	}
	for _, c := range cases {
		status, msg := post(t, ctx, s.url("/write"), []byte(c.body), c.headers...)
		if status != c.status || !strings.Contains(msg, c.msg) {
			t.Errorf("%.30q: got %d %q, want %d with %q", c.body, status, msg, c.status, c.msg)
		}
	}
	resp, err := http.Get(s.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`kioskmon_ingest_rejected_total{reason="unauthorized"} 2`,
		`kioskmon_ingest_rejected_total{reason="body_too_large"} 1`,
		`kioskmon_ingest_rejected_samples_total{reason="timestamp_in_future"} 1`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// The good line of the partly bad request was kept.
	s.waitExport(`ok_v{kiosk="gl-003"}`, 30*time.Second, func(ss []exportedSeries) bool { return len(ss) == 1 })
}
