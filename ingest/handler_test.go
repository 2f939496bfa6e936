package ingest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
	"github.com/VictoriaMetrics/metrics"
	"github.com/go-kit/log"
	"github.com/golang/snappy"

	"github.com/kioskmon/kioskmon/ingest/inventory"
	"github.com/kioskmon/kioskmon/ingest/store"
)

// staticDirectory serves a fixed inventory.
type staticDirectory struct{ ix *inventory.Index }

func (d staticDirectory) Index() *inventory.Index { return d.ix }

// recordingWriter keeps what the handler acknowledged, as the storage would.
type recordingWriter struct {
	mu      sync.Mutex
	samples []string
	fail    error
}

func (w *recordingWriter) Write(rows []store.Row) (func() error, error) {
	if w.fail != nil {
		return nil, w.fail
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range rows {
		labels, err := store.DecodeMetricName(r.MetricNameRaw)
		if err != nil {
			return nil, err
		}
		name := labels[0].Value
		rest := labels[1:]
		sort.Slice(rest, func(i, j int) bool { return rest[i].Name < rest[j].Name })
		var parts []string
		for _, l := range rest {
			parts = append(parts, l.Name+"="+l.Value)
		}
		w.samples = append(w.samples, fmt.Sprintf("%s{%s} %g @%d", name, strings.Join(parts, ","), r.Value, r.Timestamp))
	}
	return func() error { return nil }, nil
}

func (w *recordingWriter) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.samples
	w.samples = nil
	return s
}

var testNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

const (
	tokenK1 = "token-of-k1"
	tokenK2 = "token-of-k2"
)

type fixture struct {
	h      *Handler
	srv    *httptest.Server
	writer *recordingWriter
	set    *metrics.Set
}

func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	inv := &inventory.Inventory{
		Version: "v1",
		Sites:   []inventory.Site{{ID: "hall-1", District: "gulou"}},
		Kiosks: []inventory.Kiosk{
			{ID: "k1", Site: "hall-1", District: "gulou", Provider: "acme", TokenSHA256: inventory.HashToken(tokenK1)},
			{ID: "k2", Site: "hall-1", District: "gulou", Provider: "acme", TokenSHA256: inventory.HashToken(tokenK2)},
		},
	}
	w := &recordingWriter{}
	set := metrics.NewSet()
	h, err := New(cfg, staticDirectory{inventory.NewIndex(inv)}, w, set, log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	h.now = func() time.Time { return testNow }
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fixture{h: h, srv: srv, writer: w, set: set}
}

func (f *fixture) post(t *testing.T, path string, body []byte, headers ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, bytes.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func (f *fixture) counter(t *testing.T, name string) int {
	t.Helper()
	var b bytes.Buffer
	f.set.WritePrometheus(&b)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\d+)$`).FindStringSubmatch(b.String())
	if m == nil {
		t.Fatalf("metric %s not exposed in:\n%s", name, b.String())
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

type series struct {
	labels  []prompb.Label
	samples []prompb.Sample
}

func ts(name string, tsMs int64, v float64, labels ...string) series {
	s := series{labels: []prompb.Label{{Name: "__name__", Value: name}}, samples: []prompb.Sample{{Timestamp: tsMs, Value: v}}}
	for i := 0; i+1 < len(labels); i += 2 {
		s.labels = append(s.labels, prompb.Label{Name: labels[i], Value: labels[i+1]})
	}
	return s
}

func remoteWriteProto(ss ...series) []byte {
	var wr prompb.WriteRequest
	for _, s := range ss {
		wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{Labels: s.labels, Samples: s.samples})
	}
	return wr.MarshalProtobuf(nil)
}

func remoteWriteBody(ss ...series) []byte { return snappy.Encode(nil, remoteWriteProto(ss...)) }

var (
	now    = testNow.UnixMilli()
	basic1 = []string{"Authorization", "Basic " + basicCred("k1", tokenK1), "Content-Encoding", "snappy", "Content-Type", "application/x-protobuf"}
)

func basicCred(user, pass string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

func TestRemoteWriteStampsInventoryLabels(t *testing.T) {
	f := newFixture(t, Config{})
	// The client claims to be k2 and another site: the token decides.
	body := remoteWriteBody(ts("kiosk_paper_level_ratio", now, 0.5, "tray", "1", "kiosk", "k2", "site", "elsewhere"))
	status, msg, _ := f.post(t, "/api/v1/write", body, basic1...)
	if status != http.StatusNoContent {
		t.Fatalf("status %d: %s", status, msg)
	}
	got := f.writer.take()
	want := fmt.Sprintf("kiosk_paper_level_ratio{district=gulou,kiosk=k1,provider=acme,site=hall-1,tray=1} 0.5 @%d", now)
	if len(got) != 1 || got[0] != want {
		t.Fatalf("stored %q, want %q", got, want)
	}
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t, Config{})
	body := remoteWriteBody(ts("up", now, 1))
	check := func(wantStatus int, wantMsg string, headers ...string) {
		t.Helper()
		status, msg, _ := f.post(t, "/api/v1/write", body, headers...)
		if status != wantStatus || !strings.Contains(msg, wantMsg) {
			t.Errorf("headers %q: got %d %q, want %d containing %q", headers, status, msg, wantStatus, wantMsg)
		}
	}
	check(401, "no kiosk credentials")
	check(401, "matches no kiosk", "Authorization", "Bearer wrong")
	check(401, `wrong credentials for kiosk "k1"`, "Authorization", "Basic "+basicCred("k1", tokenK2))
	check(401, `wrong credentials for kiosk "nope"`, "Authorization", "Basic "+basicCred("nope", tokenK1))
	check(204, "", "Authorization", "Bearer "+tokenK1)
	check(204, "", "Authorization", "Token "+tokenK2)
	check(204, "", basic1...)
	if n := f.counter(t, `kioskmon_ingest_rejected_total{reason="unauthorized"}`); n != 4 {
		t.Fatalf("unauthorized counter %d, want 4", n)
	}
	if got := len(f.writer.take()); got != 3 {
		t.Fatalf("stored %d samples, want 3", got)
	}
}

func TestRequestLimits(t *testing.T) {
	f := newFixture(t, Config{MaxRequestBytes: 4096, MaxDecodedBytes: 8192})
	// A snappy block whose header declares 1 GiB: refused from the header alone.
	bomb := append(binaryUvarint(1<<30), 0x00)
	status, msg, _ := f.post(t, "/api/v1/write", bomb, basic1...)
	if status != 413 || !strings.Contains(msg, "declares 1073741824 decoded bytes") {
		t.Fatalf("snappy bomb: %d %q", status, msg)
	}
	status, msg, _ = f.post(t, "/api/v1/write", make([]byte, 5000), basic1...)
	if status != 413 || !strings.Contains(msg, "larger than the limit of 4096 bytes") {
		t.Fatalf("large body: %d %q", status, msg)
	}
	status, msg, _ = f.post(t, "/api/v1/write", []byte("not snappy at all"), basic1...)
	if status != 400 || !strings.Contains(msg, "malformed") && !strings.Contains(msg, "snappy") {
		t.Fatalf("garbage: %d %q", status, msg)
	}
	status, msg, _ = f.post(t, "/api/v1/write", snappy.Encode(nil, []byte{0x0a, 0xff}), basic1...)
	if status != 400 || !strings.Contains(msg, "cannot decode remote write protobuf") {
		t.Fatalf("bad protobuf: %d %q", status, msg)
	}
	status, msg, _ = f.post(t, "/api/v1/write", remoteWriteBody(ts("up", now, 1)), append(basic1, "Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request")...)
	if status != 415 || !strings.Contains(msg, "remote write 2.0") {
		t.Fatalf("rw2: %d %q", status, msg)
	}
	if n := f.counter(t, `kioskmon_ingest_rejected_total{reason="body_too_large"}`); n != 2 {
		t.Fatalf("body_too_large counter %d, want 2", n)
	}
	if len(f.writer.take()) != 0 {
		t.Fatal("refused requests stored samples")
	}
}

func binaryUvarint(v uint64) []byte {
	var b []byte
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func TestPartlyBadRequestKeepsTheGoodSamples(t *testing.T) {
	f := newFixture(t, Config{MaxLabels: 4})
	future := now + int64(15*time.Minute/time.Millisecond)
	old := now - int64(100*24*time.Hour/time.Millisecond)
	body := remoteWriteBody(
		ts("good_one", now, 1),
		ts("too_many", now, 1, "a", "1", "b", "2", "c", "3", "d", "4"),
		ts("from_the_future", future, 1),
		ts("from_the_past", old, 1),
		ts("bad-name", now, 1),
		ts("good_two", now, 2, "x", strings.Repeat("v", 10)),
	)
	status, msg, _ := f.post(t, "/api/v1/write", body, basic1...)
	if status != 400 {
		t.Fatalf("status %d, want 400: %s", status, msg)
	}
	for _, want := range []string{
		`kiosk "k1": accepted 2 samples, rejected 4`,
		"too_many_labels=1", "has 5 labels, more than the limit of 4",
		"timestamp_in_future=1", `kiosk "k1" sent from_the_future at 2026-11-24T12:15:00Z, 15m0s ahead of the server clock (limit 10m0s)`,
		"timestamp_too_old=1", "older than the retention",
		"invalid_name=1", `metric name "bad-name"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("reply %q lacks %q", msg, want)
		}
	}
	if got := f.writer.take(); len(got) != 2 || !strings.HasPrefix(got[0], "good_one") || !strings.HasPrefix(got[1], "good_two") {
		t.Fatalf("stored %q, want the two good samples", got)
	}
	for _, r := range []string{"too_many_labels", "timestamp_in_future", "timestamp_too_old", "invalid_name"} {
		if n := f.counter(t, fmt.Sprintf(`kioskmon_ingest_rejected_samples_total{reason=%q}`, r)); n != 1 {
			t.Errorf("%s samples counter %d, want 1", r, n)
		}
	}
}

func TestKioskRateLimit(t *testing.T) {
	f := newFixture(t, Config{KioskRateLimit: 10, KioskRateBurst: 10})
	clock := testNow
	f.h.now = func() time.Time { return clock }
	body := remoteWriteBody(ts("a", now, 1), ts("b", now, 1), ts("c", now, 1))
	// A full bucket lets a request take it below zero; the next one waits.
	for range 4 {
		if status, msg, _ := f.post(t, "/api/v1/write", body, basic1...); status != 204 {
			t.Fatalf("within burst: %d %s", status, msg)
		}
	}
	status, msg, hdr := f.post(t, "/api/v1/write", body, basic1...)
	if status != 429 || !strings.Contains(msg, `kiosk "k1" exceeded its rate of 10 samples/s`) || hdr.Get("Retry-After") == "" {
		t.Fatalf("over rate: %d %q retry-after %q", status, msg, hdr.Get("Retry-After"))
	}
	// Another kiosk is not affected.
	if status, msg, _ := f.post(t, "/api/v1/write", body, "Authorization", "Bearer "+tokenK2); status != 204 {
		t.Fatalf("other kiosk: %d %s", status, msg)
	}
	clock = clock.Add(2 * time.Second)
	if status, msg, _ := f.post(t, "/api/v1/write", body, basic1...); status != 204 {
		t.Fatalf("after refill: %d %s", status, msg)
	}
	if n := f.counter(t, `kioskmon_ingest_rejected_samples_total{reason="rate_limited"}`); n != 3 {
		t.Fatalf("rate_limited samples %d, want 3", n)
	}
}

func TestKioskSeriesLimit(t *testing.T) {
	f := newFixture(t, Config{KioskSeriesLimit: 3})
	var bomb []series
	for i := range 10 {
		bomb = append(bomb, ts("kiosk_bomb", now, 1, "id", strconv.Itoa(i)))
	}
	status, msg, _ := f.post(t, "/api/v1/write", remoteWriteBody(bomb...), basic1...)
	if status != 429 || !strings.Contains(msg, "accepted 3 samples, rejected 7: series_limit=7") || !strings.Contains(msg, "budget of 3 series") {
		t.Fatalf("bomb: %d %q", status, msg)
	}
	// Known series still pass; the other kiosk has its own budget.
	status, msg, _ = f.post(t, "/api/v1/write", remoteWriteBody(bomb[:3]...), basic1...)
	if status != 204 {
		t.Fatalf("known series: %d %q", status, msg)
	}
	status, msg, _ = f.post(t, "/api/v1/write", remoteWriteBody(bomb[5:8]...), "Authorization", "Bearer "+tokenK2)
	if status != 204 {
		t.Fatalf("other kiosk: %d %q", status, msg)
	}
}

func gz(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

func TestInflux(t *testing.T) {
	f := newFixture(t, Config{})
	sec := testNow.Unix()
	body := fmt.Sprintf("kiosk_ups,ups=main charge_ratio=0.9,on_battery=false,status=\"OL\" %d\nbrokenline\nkiosk.app-page,page=home value=0.25 %d\n", sec, sec)
	status, msg, _ := f.post(t, "/write?db=kiosk&precision=s", gz(body), "Authorization", "Basic "+basicCred("k1", tokenK1), "Content-Encoding", "gzip")
	if status != 400 || !strings.Contains(msg, `"error":`) || !strings.Contains(msg, "malformed=1") || !strings.Contains(msg, "line 2: no fields") {
		t.Fatalf("v1: %d %q", status, msg)
	}
	got := f.writer.take()
	want := []string{
		fmt.Sprintf("kiosk_ups_charge_ratio{district=gulou,kiosk=k1,provider=acme,site=hall-1,ups=main} 0.9 @%d", now),
		fmt.Sprintf("kiosk_ups_on_battery{district=gulou,kiosk=k1,provider=acme,site=hall-1,ups=main} 0 @%d", now),
		fmt.Sprintf("kiosk_app_page{district=gulou,kiosk=k1,page=home,provider=acme,site=hall-1} 0.25 @%d", now),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("stored\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// InfluxDB v2: token auth, nanoseconds by default, JSON error objects.
	status, msg, _ = f.post(t, "/api/v2/write?org=o&bucket=b", []byte(fmt.Sprintf("cpu usage=1 %d\n", testNow.UnixNano())), "Authorization", "Token "+tokenK2)
	if status != 204 {
		t.Fatalf("v2: %d %q", status, msg)
	}
	status, msg, _ = f.post(t, "/api/v2/write", []byte("cpu usage=1\n"), "Authorization", "Token nope")
	if status != 401 || !strings.Contains(msg, `"code":"unauthorized"`) {
		t.Fatalf("v2 unauthorized: %d %q", status, msg)
	}
	status, msg, _ = f.post(t, "/write?precision=fortnight", []byte("cpu usage=1\n"), "Authorization", "Bearer "+tokenK1)
	if status != 400 || !strings.Contains(msg, `precision \"fortnight\"`) {
		t.Fatalf("bad precision: %d %q", status, msg)
	}
	// InfluxDB v1 query-string credentials.
	status, msg, _ = f.post(t, "/write?u=k1&p="+tokenK1, []byte("cpu usage=1\n"))
	if status != 204 {
		t.Fatalf("u/p: %d %q", status, msg)
	}
}

func TestPrometheusText(t *testing.T) {
	f := newFixture(t, Config{})
	body := fmt.Sprintf("# HELP kiosk_up Is up.\n# TYPE kiosk_up gauge\nkiosk_up{kiosk=\"k9\"} 1\nkiosk_temp_celsius 41.5 %d\n", now-1000)
	status, msg, _ := f.post(t, "/api/v1/import/prometheus", []byte(body), "Authorization", "Bearer "+tokenK1)
	if status != 204 {
		t.Fatalf("%d %q", status, msg)
	}
	got := f.writer.take()
	want := []string{
		fmt.Sprintf("kiosk_up{district=gulou,kiosk=k1,provider=acme,site=hall-1} 1 @%d", now),
		fmt.Sprintf("kiosk_temp_celsius{district=gulou,kiosk=k1,provider=acme,site=hall-1} 41.5 @%d", now-1000),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("stored\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	status, msg, _ = f.post(t, "/api/v1/import/prometheus", []byte("ok_metric 1\nbad{ 1\n"), "Authorization", "Bearer "+tokenK1)
	if status != 400 || !strings.Contains(msg, "accepted 1 samples, rejected 1: malformed=1") {
		t.Fatalf("bad text: %d %q", status, msg)
	}
}

func TestStorageFailureIsNotAcknowledged(t *testing.T) {
	f := newFixture(t, Config{})
	f.writer.fail = fmt.Errorf("disk full")
	status, msg, _ := f.post(t, "/api/v1/write", remoteWriteBody(ts("up", now, 1)), basic1...)
	if status != 503 || !strings.Contains(msg, "retry later") {
		t.Fatalf("%d %q", status, msg)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	f := newFixture(t, Config{})
	resp, err := http.Get(f.srv.URL + "/api/v1/write")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: %d allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// blockingWriter holds each write until released.
type blockingWriter struct {
	entered chan struct{}
	release chan struct{}
}

func (w *blockingWriter) Write([]store.Row) (func() error, error) {
	w.entered <- struct{}{}
	<-w.release
	return func() error { return nil }, nil
}

func TestConcurrentWritesAreBounded(t *testing.T) {
	f := newFixture(t, Config{MaxConcurrent: 1, MaxQueueDuration: 100 * time.Millisecond})
	bw := &blockingWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	f.h.writer = bw
	body := remoteWriteBody(ts("up", now, 1))
	first := make(chan int)
	go func() {
		status, _, _ := f.post(t, "/api/v1/write", body, basic1...)
		first <- status
	}()
	<-bw.entered
	// The only slot is taken: the next request waits, then is told to retry.
	status, msg, hdr := f.post(t, "/api/v1/write", body, basic1...)
	if status != 503 || !strings.Contains(msg, "too many writes in progress") || hdr.Get("Retry-After") == "" {
		t.Fatalf("second request: %d %q", status, msg)
	}
	close(bw.release)
	if s := <-first; s != 204 {
		t.Fatalf("first request: %d", s)
	}
	if n := f.counter(t, "kioskmon_ingest_queue_timeouts_total"); n != 1 {
		t.Fatalf("queue timeouts %d, want 1", n)
	}
}

func TestAppendSanitized(t *testing.T) {
	for _, c := range []struct{ prefix, in, want string }{
		{"", "kiosk.app-page", "kiosk_app_page"},
		{"", "9lives", "_lives"},
		{"ups_", "2nd", "ups_2nd"},
		{"", "页面", "______"},
		{"", "a:b_C9", "a:b_C9"},
	} {
		if got := string(appendSanitized([]byte(c.prefix), []byte(c.in))); got != c.want {
			t.Errorf("appendSanitized(%q, %q) = %q, want %q", c.prefix, c.in, got, c.want)
		}
	}
}
