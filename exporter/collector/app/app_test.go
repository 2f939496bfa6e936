package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/yamlfile"
)

func newCollector(t testing.TB, cfg Config) (*Collector, *time.Time) {
	t.Helper()
	c, err := New(cfg, log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return now }
	return c, &now
}

func post(h http.Handler, path, body string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func gather(c *Collector) map[string]float64 {
	s := &exporter.Snapshot{}
	c.Collect(context.Background(), s)
	got := map[string]float64{}
	s.Each(func(name string, labels []exporter.Label, v float64) {
		var ls []string
		for _, l := range labels {
			ls = append(ls, l.Name+"="+l.Value)
		}
		got[name+"{"+strings.Join(ls, ",")+"}"] = v
	})
	return got
}

func TestRejections(t *testing.T) {
	c, _ := newCollector(t, Config{Token: "t0k", MaxBodyBytes: 512, MaxLabelValues: 2})
	h := c.Handler()
	auth := []string{"Authorization", "Bearer t0k"}
	f := func(body string, status int, want string, headers ...string) {
		t.Helper()
		w := post(h, "/v1/events", body, append(append([]string{}, auth...), headers...)...)
		if w.Code != status || !strings.Contains(w.Body.String(), want) {
			t.Fatalf("%s: %d %q, want %d containing %q", body, w.Code, w.Body.String(), status, want)
		}
	}
	f(`{"events":[{"type":"heartbeat"}]}`, 204, "")
	f(`{"events":[{"type":"heartbeat"}]}`, 401, "Bearer", "Authorization", "Bearer wrong")
	f(`{"events":[{"type":"heartbeat"}]}`, 415, "application/json", "Content-Type", "text/plain")
	f(`{"events":[`+strings.Repeat(`{"type":"heartbeat"},`, 40)+`{"type":"heartbeat"}]}`, 413, "body over")
	f(`{"events":[]}`, 400, "no events")
	f(`{"events":[{"type":"heartbeat"}]} {}`, 400, "more than one value")
	f(`{"events":[{"type":"heartbeat","colour":"red"}]}`, 400, `unknown field "colour"`)
	f(`{"events":[{"type":"reboot"}]}`, 400, `events[0].type: "reboot" is not one of page_load`)
	f(`{"events":[{}]}`, 400, "events[0].type: required")
	f(`{"events":[{"type":"heartbeat"},{"type":"page_load","page":"home"}]}`, 400, "events[1].seconds: required")
	f(`{"events":[{"type":"page_load","page":"home","seconds":-1}]}`, 400, "seconds: -1 is not between 0 and 3600")
	f(`{"events":[{"type":"page_load","page":"a b","seconds":1}]}`, 400, `page: "a b" is not a name`)
	f(`{"events":[{"type":"error","page":"home","kind":"oops"}]}`, 400, `kind: "oops" is not one of http_4xx`)
	f(`{"events":[{"type":"restart"}]}`, 400, "reason: required for type restart")
	f(`{"events":[{"type":"device","device":"idreader","kind":"id_card_reader","state":"broken"}]}`, 400,
		`events[0].state: "broken" is not one of ok, degraded, fault, absent`)
	f(`{"events":[{"type":"device","device":"idreader","kind":"id_card_reader","state":"not_responding"}]}`, 400, "is not one of ok")
	f(`{"events":[{"type":"device","device":"cam","kind":"toaster","state":"ok"}]}`, 400, `kind: "toaster"`)
	f(`{"events":[{"type":"receipt_paper","printer":"rp","state":"low"}]}`, 400, `state: "low" is not one of ok, near_end, empty`)
	f(`{"events":[{"type":"request","page":"p1"},{"type":"request","page":"p2"},{"type":"request","page":"p3"}]}`, 400, "too many distinct pages")
	f(`not json`, 400, "invalid JSON")
	req := httptest.NewRequest(http.MethodGet, "/v1/events", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 405 {
		t.Fatalf("GET /v1/events: %d", w.Code)
	}
	got := gather(c)
	// Nothing of a refused batch was applied: only the one heartbeat.
	if got["kiosk_exporter_app_events_total{}"] != 1 || got["kiosk_exporter_app_posts_rejected_total{reason=invalid}"] != 15 ||
		got["kiosk_exporter_app_posts_rejected_total{reason=too_many_series}"] != 1 || got["kiosk_exporter_app_posts_rejected_total{reason=method}"] != 1 {
		t.Fatalf("counters: %v", got)
	}
	for k := range got {
		if strings.Contains(k, "page=") {
			t.Fatalf("a refused batch left %s", k)
		}
	}
}

func TestEventsBecomeMetrics(t *testing.T) {
	c, now := newCollector(t, Config{Devices: []Device{{"idreader", "id_card_reader"}, {"camera", "camera"}},
		HeartbeatTimeout: yamlfile.Duration(30 * time.Second), DeviceTimeout: yamlfile.Duration(2 * time.Minute)})
	h := c.Handler()
	w := post(h, "/v1/events", `{"events":[
		{"type":"heartbeat"},
		{"type":"page_load","page":"home","seconds":0.2},
		{"type":"page_load","page":"home","seconds":4},
		{"type":"request","page":"home"},
		{"type":"error","page":"home","kind":"no_data"},
		{"type":"transaction","service":"social_security_certificate"},
		{"type":"restart","reason":"crash"},
		{"type":"device","device":"idreader","kind":"id_card_reader","state":"fault","code":"0x41"},
		{"type":"device","device":"scanner","kind":"document_scanner","state":"absent"},
		{"type":"receipt_paper","printer":"receipt","state":"near_end"}]}`)
	if w.Code != 204 {
		t.Fatalf("post: %d %s", w.Code, w.Body)
	}
	got := gather(c)
	for k, v := range map[string]float64{
		"kiosk_app_page_load_seconds_bucket{page=home,le=0.25}":                     1,
		"kiosk_app_page_load_seconds_bucket{page=home,le=5}":                        2,
		"kiosk_app_page_load_seconds_count{page=home}":                              2,
		"kiosk_app_page_load_seconds_sum{page=home}":                                4.2,
		"kiosk_app_requests_total{page=home}":                                       1,
		"kiosk_app_errors_total{page=home,kind=no_data}":                            1,
		"kiosk_app_transactions_total{service=social_security_certificate}":         1,
		"kiosk_app_restarts_total{reason=crash}":                                    1,
		"kiosk_app_restarts_total{reason=hang}":                                     0,
		"kiosk_app_up{}":                                                            1,
		"kiosk_app_heartbeat_age_seconds{}":                                         0,
		"kiosk_peripheral_state{device=idreader,kind=id_card_reader,state=fault}":   1,
		"kiosk_peripheral_error{device=idreader,kind=id_card_reader,code=0x41}":     1,
		"kiosk_peripheral_state{device=camera,kind=camera,state=not_responding}":    1,
		"kiosk_peripheral_state{device=scanner,kind=document_scanner,state=absent}": 1,
		"kiosk_receipt_paper_state{printer=receipt,state=near_end}":                 1,
		"kiosk_service_mode{}":                                                      0,
	} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %g (present %v), want %g", k, g, ok, v)
		}
	}

	// 45 s later: the heartbeat is stale (frozen screen); the ID reader was
	// reported 45 s ago, still within its timeout.
	*now = now.Add(45 * time.Second)
	got = gather(c)
	if got["kiosk_app_up{}"] != 0 || got["kiosk_app_heartbeat_age_seconds{}"] != 45 ||
		got["kiosk_peripheral_state{device=idreader,kind=id_card_reader,state=fault}"] != 1 {
		t.Fatalf("after 45s: %v", got)
	}
	// The process says it is alive while the UI stays frozen: up, with a
	// stale heartbeat (a blue or white screen, not a crash).
	if w := post(h, "/v1/events", `{"events":[{"type":"alive"}]}`); w.Code != 204 {
		t.Fatalf("alive: %d", w.Code)
	}
	got = gather(c)
	if got["kiosk_app_up{}"] != 1 || got["kiosk_app_heartbeat_age_seconds{}"] != 45 {
		t.Fatalf("alive with a frozen UI: %v", got)
	}
	// 3 minutes without a word from the middleware: not responding, which
	// is not the same as absent.
	*now = now.Add(3 * time.Minute)
	got = gather(c)
	if got["kiosk_peripheral_state{device=idreader,kind=id_card_reader,state=not_responding}"] != 1 ||
		got["kiosk_peripheral_state{device=scanner,kind=document_scanner,state=not_responding}"] != 1 {
		t.Fatalf("after 3m45s: %v", got)
	}
	if _, ok := got["kiosk_peripheral_error{device=idreader,kind=id_card_reader,code=0x41}"]; ok {
		t.Fatal("an error code is reported for a device nobody reports on")
	}
}

func TestServiceModePersists(t *testing.T) {
	state := filepath.Join(t.TempDir(), "service-mode.json")
	c, now := newCollector(t, Config{StateFile: state})
	h := c.Handler()
	if w := post(h, "/v1/service-mode", `{"on": true}`); w.Code != 400 || !strings.Contains(w.Body.String(), "engineer: required") {
		t.Fatalf("on without engineer: %d %s", w.Code, w.Body)
	}
	if w := post(h, "/v1/service-mode", `{"on": true, "engineer": "wang.lei", "reason": "paper jam"}`); w.Code != 200 {
		t.Fatalf("on: %d %s", w.Code, w.Body)
	}
	arrived := *now
	*now = now.Add(10 * time.Minute)
	post(h, "/v1/service-mode", `{"on": true, "engineer": "wang.lei", "reason": "replacing the pickup roller"}`)

	// The exporter restarts: service mode and the arrival time survive.
	again, _ := newCollector(t, Config{StateFile: state})
	got := gather(again)
	if got["kiosk_service_mode{}"] != 1 || got["kiosk_service_mode_since_timestamp_seconds{}"] != float64(arrived.Unix()) {
		t.Fatalf("after a restart: %v", got)
	}
	if _, err := again.SetServiceMode(false, "wang.lei", "done"); err != nil {
		t.Fatal(err)
	}
	third, _ := newCollector(t, Config{StateFile: state})
	if got := gather(third); got["kiosk_service_mode{}"] != 0 {
		t.Fatalf("switched off, after a restart: %v", got)
	}
}

func TestOverRealHTTP(t *testing.T) {
	c, _ := newCollector(t, Config{Listen: "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	base := "http://" + c.Addr()
	resp, err := http.Post(base+"/v1/events", "application/json", strings.NewReader(`{"events":[{"type":"heartbeat"}]}`))
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("post: %v %v", resp, err)
	}
	sm, err := PostServiceMode(ctx, base, "", true, "li.na", "inspection")
	if err != nil || !sm.On || sm.Engineer != "li.na" {
		t.Fatalf("service mode: %+v %v", sm, err)
	}
	if _, err := PostServiceMode(ctx, base, "", true, "", ""); err == nil || !strings.Contains(err.Error(), "engineer: required") {
		t.Fatalf("service mode without engineer: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	f := func(c Config, field string) {
		t.Helper()
		err := c.Validate()
		if field == "" {
			if err != nil {
				t.Fatalf("%+v: %v", c, err)
			}
			return
		}
		fe, ok := err.(*yamlfile.FieldError)
		if !ok || fe.Field != field {
			t.Fatalf("%+v: error %v, want one about %s", c, err, field)
		}
	}
	f(Config{Devices: []Device{{"idreader", "id_card_reader"}}}, "")
	f(Config{Listen: "0.0.0.0:9183"}, "listen")
	f(Config{Listen: "0.0.0.0:9183", AllowRemote: true}, "")
	f(Config{Devices: []Device{{"idreader", "id_card_reader"}, {"idreader", "camera"}}}, "devices.1.name")
	f(Config{Devices: []Device{{"x", "toaster"}}}, "devices.0.kind")
}

// FuzzEvents posts arbitrary bodies: the endpoint answers 2xx or 4xx,
// never panics, and a refused body changes nothing.
func FuzzEvents(f *testing.F) {
	f.Add(`{"events":[{"type":"page_load","page":"home","seconds":1.5},{"type":"heartbeat"}]}`)
	f.Add(`{"events":[{"type":"device","device":"cam","kind":"camera","state":"fault","code":"E1"}]}`)
	f.Add(`{"events":[{"type":"error","page":"x","kind":"timeout"},{"type":"bogus"}]}`)
	f.Add(`{"events":null}`)
	f.Fuzz(func(t *testing.T, body string) {
		c, _ := newCollector(t, Config{MaxLabelValues: 5})
		before := gather(c)
		w := post(c.Handler(), "/v1/events", body)
		if w.Code != 204 && (w.Code < 400 || w.Code > 499) {
			t.Fatalf("status %d for %q", w.Code, body)
		}
		if w.Code != 204 {
			after := gather(c)
			delete(after, "kiosk_exporter_app_posts_rejected_total{reason=invalid}")
			delete(after, "kiosk_exporter_app_posts_rejected_total{reason=too_many_series}")
			delete(after, "kiosk_exporter_app_posts_rejected_total{reason=too_large}")
			if len(after) != len(before) {
				t.Fatalf("refused body %q changed the state: %v -> %v", body, before, after)
			}
		}
	})
}
