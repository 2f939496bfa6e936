package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/yamlfile"
)

// newCollector returns a collector whose clock stands still at the returned
// time until the test moves it.
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

// do serves one request; headers are name, value pairs and replace the
// default Content-Type: application/json.
func do(h http.Handler, method, path, body string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func post(h http.Handler, path, body string, headers ...string) *httptest.ResponseRecorder {
	return do(h, http.MethodPost, path, body, headers...)
}

// gather returns the collector's series as "name{label=value,...}" → value.
func gather(c *Collector) map[string]float64 {
	s := &exporter.Snapshot{}
	if err := c.Collect(context.Background(), s); err != nil {
		panic(err)
	}
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

// withoutRejections drops the rejection counters, which a refused post
// does change.
func withoutRejections(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if !strings.HasPrefix(k, "kiosk_exporter_app_posts_rejected_total") {
			out[k] = v
		}
	}
	return out
}

func sameSeries(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestEventsRejected(t *testing.T) {
	c, _ := newCollector(t, Config{Token: "t0k", MaxBodyBytes: 512, Devices: []Device{{"idreader", "id_card_reader"}}})
	h := c.Handler()
	if w := post(h, "/v1/events", `{"events":[{"type":"heartbeat"}]}`, "Authorization", "Bearer t0k"); w.Code != 204 {
		t.Fatalf("a good post: %d %s", w.Code, w.Body)
	}
	before := gather(c)
	refused := 0
	f := func(method, body string, status int, want string, headers ...string) {
		t.Helper()
		w := do(h, method, "/v1/events", body, append([]string{"Authorization", "Bearer t0k"}, headers...)...)
		if w.Code != status || !strings.Contains(w.Body.String(), want) {
			t.Fatalf("%s %s: %d %q, want %d containing %q", method, body, w.Code, w.Body.String(), status, want)
		}
		refused++
	}
	ok := `{"events":[{"type":"heartbeat"}]}`
	f("GET", "", 405, "GET: use POST")
	f("PUT", ok, 405, "use POST")
	f("POST", ok, 401, "Bearer", "Authorization", "Bearer wrong")
	f("POST", ok, 401, "Bearer", "Authorization", "t0k")
	f("POST", ok, 415, "send application/json", "Content-Type", "text/plain")
	f("POST", ok, 415, "send application/json", "Content-Type", "application/x-www-form-urlencoded")
	f("POST", ok, 415, "send application/json", "Content-Type", "application/jsonx")
	f("POST", `{"events":[`+strings.Repeat(`{"type":"heartbeat"},`, 40)+`{"type":"heartbeat"}]}`, 413, "body over 512 bytes")
	f("POST", `not json`, 400, "invalid JSON")
	f("POST", `{"events":[{"type":"heartbeat"}]} {}`, 400, "more than one value")
	f("POST", `{"events":[{"type":"heartbeat"}]} ]`, 400, "more than one value")
	f("POST", `{"events":[{"type":"heartbeat","colour":"red"}]}`, 400, `unknown field "colour"`)
	f("POST", `{"type":"heartbeat","colour":"red"}`, 400, `unknown field "colour"`)
	f("POST", `{"events":[]}`, 400, "no events")
	f("POST", `{"events":null}`, 400, "no events")
	f("POST", `{}`, 400, "no events")
	f("POST", `{"events":[{"type":"heartbeat"}],"type":"heartbeat"}`, 400, "not both")
	f("POST", `{"events":[{}]}`, 400, "events[0].type: required (one of page_load, request")
	f("POST", `{"events":[{"type":"reboot"}]}`, 400, `events[0].type: "reboot" is not one of page_load, request, error`)
	f("POST", `{"type":"reboot"}`, 400, `type: "reboot" is not one of`)
	f("POST", `{"events":[{"type":"heartbeat"},{"type":"page_load","page":"home"}]}`, 400, "events[1].seconds: required")
	f("POST", `{"events":[{"type":"page_load","page":"home","seconds":-1}]}`, 400, "events[0].seconds: -1 is not between 0 and 3600")
	f("POST", `{"events":[{"type":"page_load","page":"home","seconds":1e999}]}`, 400, "invalid JSON")
	f("POST", `{"events":[{"type":"page_load","page":"home","seconds":NaN}]}`, 400, "invalid JSON")
	f("POST", `{"events":[{"type":"page_load","page":"home","seconds":"1"}]}`, 400, "invalid JSON")
	f("POST", `{"events":[{"type":"page_load","page":"home","seconds":3601}]}`, 400, "3601 is not between 0 and 3600")
	f("POST", `{"events":[{"type":"page_load","seconds":1}]}`, 400, "events[0].page: required for type page_load")
	f("POST", `{"events":[{"type":"page_load","page":"a b","seconds":1}]}`, 400, `page: "a b" is not a name`)
	f("POST", `{"events":[{"type":"request","page":"`+strings.Repeat("p", 65)+`"}]}`, 400, "is not a name")
	f("POST", `{"events":[{"type":"error","page":"home"}]}`, 400, "kind: required for type error (one of http_4xx")
	f("POST", `{"events":[{"type":"error","page":"home","kind":"oops"}]}`, 400, `kind: "oops" is not one of http_4xx, http_5xx, timeout, no_data, wrong_data, client`)
	f("POST", `{"events":[{"type":"transaction"}]}`, 400, "service: required for type transaction")
	f("POST", `{"events":[{"type":"restart"}]}`, 400, "reason: required for type restart (one of crash, hang, update, manual)")
	f("POST", `{"events":[{"type":"restart","reason":"boredom"}]}`, 400, `reason: "boredom" is not one of crash, hang, update, manual`)
	f("POST", `{"events":[{"type":"heartbeat"},{"type":"heartbeat"},{"type":"heartbeat"},{"type":"device","device":"idreader","kind":"id_card_reader","state":"broken"}]}`, 400,
		`events[3].state: "broken" is not one of ok, degraded, fault, absent`)
	f("POST", `{"type":"device","device":"idreader","kind":"id_card_reader","state":"broken"}`, 400, `state: "broken" is not one of`)
	f("POST", `{"events":[{"type":"device","device":"idreader","kind":"id_card_reader","state":"not_responding"}]}`, 400, `"not_responding" is not one of ok`)
	f("POST", `{"events":[{"type":"device","device":"idreader","kind":"id_card_reader"}]}`, 400, "state: required for type device")
	f("POST", `{"events":[{"type":"device","kind":"camera","state":"ok"}]}`, 400, "device: required for type device")
	f("POST", `{"events":[{"type":"device","device":"cam","kind":"toaster","state":"ok"}]}`, 400, `kind: "toaster" is not one of id_card_reader, camera`)
	f("POST", `{"events":[{"type":"device","device":"idreader","kind":"camera","state":"ok"}]}`, 400, `device "idreader" is configured as id_card_reader`)
	f("POST", `{"events":[{"type":"device","device":"cam","kind":"camera","state":"fault","code":"`+strings.Repeat("E", 33)+`"}]}`, 400, "code:")
	f("POST", `{"events":[{"type":"device","device":"cam","kind":"camera","state":"fault","code":"E\n1"}]}`, 400, "code:")
	f("POST", `{"events":[{"type":"receipt_paper","state":"empty"}]}`, 400, "printer: required")
	f("POST", `{"events":[{"type":"receipt_paper","printer":"rp","state":"low"}]}`, 400, `state: "low" is not one of ok, near_end, empty`)
	f("POST", `{"events":[{"type":"heartbeat","time":"yesterday"}]}`, 400, `events[0].time: "yesterday" is not RFC 3339`)

	// Nothing of a refused post was applied, and each was counted.
	got := gather(c)
	if !sameSeries(withoutRejections(got), withoutRejections(before)) {
		t.Fatalf("refused posts changed the state:\n%v\n->\n%v", before, got)
	}
	var total float64
	for k, v := range got {
		if strings.HasPrefix(k, "kiosk_exporter_app_posts_rejected_total") {
			total += v
		}
	}
	if total != float64(refused) || got["kiosk_exporter_app_posts_rejected_total{reason=method}"] != 2 ||
		got["kiosk_exporter_app_posts_rejected_total{reason=unauthorized}"] != 2 || got["kiosk_exporter_app_posts_rejected_total{reason=content_type}"] != 3 ||
		got["kiosk_exporter_app_posts_rejected_total{reason=too_large}"] != 1 {
		t.Fatalf("%d refused, counted: %v", refused, got)
	}
}

func TestEventsAccepted(t *testing.T) {
	c, _ := newCollector(t, Config{})
	h := c.Handler()
	f := func(body string, contentType string) {
		t.Helper()
		if w := post(h, "/v1/events", body, "Content-Type", contentType); w.Code != 204 {
			t.Fatalf("%s (%s): %d %s", body, contentType, w.Code, w.Body)
		}
	}
	f(`{"events":[{"type":"heartbeat"}]}`, "application/json")
	f(`{"type":"heartbeat"}`, "application/json; charset=utf-8")
	f(`{"type":"request","page":"home","time":"2026-11-24T18:00:00+08:00"}`, "")
	f(`{"events":[{"type":"page_load","page":"home","seconds":0,"time":"2026-11-24T10:00:00.123Z"}]}`+"\n", "application/json")
	f(`{"type":"device","device":"cam","kind":"camera","state":"fault","code":"纸将尽 E-1"}`, "application/json")
	if got := gather(c); got["kiosk_exporter_app_events_total{}"] != 5 || got["kiosk_app_requests_total{page=home}"] != 1 ||
		got["kiosk_peripheral_error{device=cam,kind=camera,code=纸将尽 E-1}"] != 1 {
		t.Fatalf("%v", got)
	}
}

func TestOtherEndpointsRejected(t *testing.T) {
	c, _ := newCollector(t, Config{Token: "t0k"})
	h := c.Handler()
	f := func(method, path, body string, status int, want string, headers ...string) {
		t.Helper()
		w := do(h, method, path, body, append([]string{"Authorization", "Bearer t0k"}, headers...)...)
		if w.Code != status || !strings.Contains(w.Body.String(), want) {
			t.Fatalf("%s %s %s: %d %q, want %d containing %q", method, path, body, w.Code, w.Body.String(), status, want)
		}
		if status == 405 && w.Header().Get("Allow") == "" {
			t.Fatalf("%s %s: 405 without Allow", method, path)
		}
	}
	f("GET", "/v1/state", "", 401, "Bearer", "Authorization", "")
	f("GET", "/v1/service-mode", "", 401, "Bearer", "Authorization", "Bearer x")
	f("POST", "/v1/state", "", 405, "use GET")
	f("DELETE", "/v1/service-mode", "", 405, "use GET or POST")
	f("POST", "/v1/service-mode", `{"on": true, "engineer": "wang.lei"}`, 401, "Bearer", "Authorization", "")
	f("POST", "/v1/service-mode", `{"on": true, "engineer": "wang.lei"}`, 415, "send application/json", "Content-Type", "text/plain")
	f("POST", "/v1/service-mode", `{"engineer": "wang.lei"}`, 400, "on: required")
	f("POST", "/v1/service-mode", `{"on": "yes"}`, 400, "invalid JSON")
	f("POST", "/v1/service-mode", `{"on": true}`, 400, "engineer: required when switching service mode on")
	f("POST", "/v1/service-mode", `{"on": true, "engineer": "  "}`, 400, "engineer: required")
	f("POST", "/v1/service-mode", `{"on": true, "engineer": "wang.lei", "since": "2026-01-01T00:00:00Z"}`, 400, `unknown field "since"`)
	f("POST", "/v1/service-mode", `{"on": true, "engineer": "`+strings.Repeat("w", 129)+`"}`, 400, "engineer: over 128 bytes")
	f("POST", "/v1/service-mode", `{"on": false, "reason": "`+strings.Repeat("r", 513)+`"}`, 400, "reason: over 512 bytes")
	f("GET", "/v1/nothing", "", 404, "not found")
	if got := gather(c); got["kiosk_service_mode{}"] != 0 {
		t.Fatalf("a refused switch switched: %v", got)
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
		{"type":"page_load","page":"form/id-renewal","seconds":31},
		{"type":"request","page":"home"},
		{"type":"request","page":"home"},
		{"type":"error","page":"home","kind":"no_data"},
		{"type":"error","page":"home","kind":"no_data"},
		{"type":"error","page":"home","kind":"http_5xx"},
		{"type":"transaction","service":"social_security_certificate"},
		{"type":"restart","reason":"crash"},
		{"type":"device","device":"idreader","kind":"id_card_reader","state":"fault","code":"0x41"},
		{"type":"device","device":"scanner","kind":"document_scanner","state":"absent"},
		{"type":"receipt_paper","printer":"receipt","state":"near_end"}]}`)
	if w.Code != 204 {
		t.Fatalf("post: %d %s", w.Code, w.Body)
	}
	// A single event, posted on its own.
	if w := post(h, "/v1/events", `{"type":"transaction","service":"social_security_certificate"}`); w.Code != 204 {
		t.Fatalf("post: %d %s", w.Code, w.Body)
	}
	got := gather(c)
	for k, v := range map[string]float64{
		"kiosk_app_page_load_seconds_bucket{page=home,le=0.1}":                      0,
		"kiosk_app_page_load_seconds_bucket{page=home,le=0.25}":                     1,
		"kiosk_app_page_load_seconds_bucket{page=home,le=3}":                        1,
		"kiosk_app_page_load_seconds_bucket{page=home,le=5}":                        2,
		"kiosk_app_page_load_seconds_bucket{page=home,le=+Inf}":                     2,
		"kiosk_app_page_load_seconds_count{page=home}":                              2,
		"kiosk_app_page_load_seconds_sum{page=home}":                                4.2,
		"kiosk_app_page_load_seconds_bucket{page=form/id-renewal,le=30}":            0,
		"kiosk_app_page_load_seconds_bucket{page=form/id-renewal,le=+Inf}":          1,
		"kiosk_app_page_load_seconds_sum{page=form/id-renewal}":                     31,
		"kiosk_app_requests_total{page=home}":                                       2,
		"kiosk_app_requests_total{page=form/id-renewal}":                            0,
		"kiosk_app_errors_total{page=home,kind=no_data}":                            2,
		"kiosk_app_errors_total{page=home,kind=http_5xx}":                           1,
		"kiosk_app_transactions_total{service=social_security_certificate}":         2,
		"kiosk_app_restarts_total{reason=crash}":                                    1,
		"kiosk_app_restarts_total{reason=hang}":                                     0,
		"kiosk_app_up{}":                                                            1,
		"kiosk_app_heartbeat_age_seconds{}":                                         0,
		"kiosk_peripheral_state{device=idreader,kind=id_card_reader,state=fault}":   1,
		"kiosk_peripheral_state{device=idreader,kind=id_card_reader,state=ok}":      0,
		"kiosk_peripheral_error{device=idreader,kind=id_card_reader,code=0x41}":     1,
		"kiosk_peripheral_state{device=camera,kind=camera,state=not_responding}":    1,
		"kiosk_peripheral_state{device=scanner,kind=document_scanner,state=absent}": 1,
		"kiosk_receipt_paper_state{printer=receipt,state=near_end}":                 1,
		"kiosk_receipt_paper_state{printer=receipt,state=ok}":                       0,
		"kiosk_service_mode{}":                                                      0,
		"kiosk_exporter_app_events_total{}":                                         15,
	} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %g (present %v), want %g", k, g, ok, v)
		}
	}
	if _, ok := got["kiosk_app_errors_total{page=home,kind=timeout}"]; ok {
		t.Error("an error kind never posted is reported")
	}

	// 20 s later the heartbeat is 20 s old and the application still up.
	*now = now.Add(20 * time.Second)
	if got := gather(c); got["kiosk_app_up{}"] != 1 || got["kiosk_app_heartbeat_age_seconds{}"] != 20 {
		t.Fatalf("after 20s: up %g, age %g", got["kiosk_app_up{}"], got["kiosk_app_heartbeat_age_seconds{}"])
	}
	// 45 s: past heartbeat_timeout, the application is down; the ID reader
	// was reported 45 s ago, still within its timeout.
	*now = now.Add(25 * time.Second)
	got = gather(c)
	if got["kiosk_app_up{}"] != 0 || got["kiosk_app_heartbeat_age_seconds{}"] != 45 ||
		got["kiosk_peripheral_state{device=idreader,kind=id_card_reader,state=fault}"] != 1 {
		t.Fatalf("after 45s: %v", got)
	}
	// The process says it is alive while the UI stays frozen: up, with a
	// stale heartbeat (a blue or white screen, not a crash).
	if w := post(h, "/v1/events", `{"type":"alive"}`); w.Code != 204 {
		t.Fatalf("alive: %d", w.Code)
	}
	got = gather(c)
	if got["kiosk_app_up{}"] != 1 || got["kiosk_app_heartbeat_age_seconds{}"] != 45 {
		t.Fatalf("alive with a frozen UI: %v", got)
	}
	// Once the process has said it is alive, it is down when it stops,
	// heartbeats or not.
	*now = now.Add(31 * time.Second)
	post(h, "/v1/events", `{"type":"heartbeat"}`)
	if got := gather(c); got["kiosk_app_up{}"] != 0 || got["kiosk_app_heartbeat_age_seconds{}"] != 0 {
		t.Fatalf("heartbeats without alive: %v", got)
	}
}

func TestDeviceNotRespondingIsNotAbsent(t *testing.T) {
	c, now := newCollector(t, Config{Devices: []Device{{"idreader", "id_card_reader"}, {"printer", "receipt_printer"}},
		DeviceTimeout: yamlfile.Duration(2 * time.Minute)})
	h := c.Handler()
	state := func(device, kind string) string {
		t.Helper()
		got := gather(c)
		var states []string
		for _, st := range []string{"ok", "degraded", "fault", "not_responding", "absent"} {
			if got[fmt.Sprintf("kiosk_peripheral_state{device=%s,kind=%s,state=%s}", device, kind, st)] == 1 {
				states = append(states, st)
			}
		}
		if len(states) != 1 {
			t.Fatalf("%s: states %v", device, states)
		}
		return states[0]
	}
	f := func(device, kind, want string) {
		t.Helper()
		if got := state(device, kind); got != want {
			t.Fatalf("at %s, %s is %s, want %s", now.Format(time.TimeOnly), device, got, want)
		}
	}
	// Configured and never reported: the middleware does not answer for it.
	f("idreader", "id_card_reader", "not_responding")
	post(h, "/v1/events", `{"events":[{"type":"device","device":"idreader","kind":"id_card_reader","state":"ok"},
		{"type":"device","device":"printer","kind":"receipt_printer","state":"absent"}]}`)
	f("idreader", "id_card_reader", "ok")
	f("printer", "receipt_printer", "absent") // not enumerated: the middleware says so
	*now = now.Add(2 * time.Minute)
	f("idreader", "id_card_reader", "ok") // the timeout is inclusive
	post(h, "/v1/events", `{"type":"device","device":"idreader","kind":"id_card_reader","state":"degraded"}`)
	*now = now.Add(90 * time.Second)
	f("idreader", "id_card_reader", "degraded")
	f("printer", "receipt_printer", "not_responding") // 3m30s without a word
	*now = now.Add(31 * time.Second)
	f("idreader", "id_card_reader", "not_responding")
	post(h, "/v1/events", `{"type":"device","device":"idreader","kind":"id_card_reader","state":"ok"}`)
	f("idreader", "id_card_reader", "ok")
}

func TestCardinalityLimit(t *testing.T) {
	c, _ := newCollector(t, Config{MaxLabelValues: 2, Devices: []Device{{"idreader", "id_card_reader"}}})
	h := c.Handler()
	f := func(body string, status int, want string) {
		t.Helper()
		w := post(h, "/v1/events", body)
		if w.Code != status || !strings.Contains(w.Body.String(), want) {
			t.Fatalf("%s: %d %q, want %d containing %q", body, w.Code, w.Body, status, want)
		}
	}
	f(`{"events":[{"type":"request","page":"p1"},{"type":"request","page":"p2"},{"type":"request","page":"p3"}]}`, 400, "too many distinct pages (limit 2)")
	f(`{"events":[{"type":"request","page":"p1"},{"type":"page_load","page":"p2","seconds":1}]}`, 204, "")
	f(`{"type":"error","page":"p3","kind":"timeout"}`, 400, "too many distinct pages")
	f(`{"type":"error","page":"p2","kind":"timeout"}`, 204, "") // known pages go on
	f(`{"events":[{"type":"transaction","service":"s1"},{"type":"transaction","service":"s2"},{"type":"transaction","service":"s3"}]}`, 400, "too many distinct services")
	f(`{"type":"device","device":"cam","kind":"camera","state":"ok"}`, 204, "")
	f(`{"type":"device","device":"scanner","kind":"document_scanner","state":"ok"}`, 400, "too many distinct devices")
	f(`{"events":[{"type":"receipt_paper","printer":"r1","state":"ok"},{"type":"receipt_paper","printer":"r2","state":"ok"},{"type":"receipt_paper","printer":"r3","state":"ok"}]}`, 400, "too many distinct receipt printers")
	got := gather(c)
	if got["kiosk_exporter_app_posts_rejected_total{reason=too_many_series}"] != 5 || got["kiosk_app_requests_total{page=p1}"] != 1 {
		t.Fatalf("%v", got)
	}
	for k := range got {
		if strings.Contains(k, "p3") || strings.Contains(k, "s1") || strings.Contains(k, "r1") {
			t.Fatalf("a refused batch left %s", k)
		}
	}
}

func TestServiceModePersists(t *testing.T) {
	state := filepath.Join(t.TempDir(), "service-mode.json")
	c, now := newCollector(t, Config{StateFile: state})
	h := c.Handler()
	if w := post(h, "/v1/service-mode", `{"on": true, "engineer": "wang.lei", "reason": "paper jam"}`); w.Code != 200 {
		t.Fatalf("on: %d %s", w.Code, w.Body)
	}
	arrived := *now
	*now = now.Add(10 * time.Minute)
	post(h, "/v1/service-mode", `{"on": true, "engineer": "wang.lei", "reason": "replacing the pickup roller"}`)
	w := do(h, http.MethodGet, "/v1/service-mode", "")
	var sm ServiceMode
	if err := json.Unmarshal(w.Body.Bytes(), &sm); err != nil || !sm.On || !sm.Since.Equal(arrived) || sm.Reason != "replacing the pickup roller" {
		t.Fatalf("GET: %s %v", w.Body, err)
	}

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
	if _, ok := got["kiosk_service_mode_since_timestamp_seconds{}"]; !ok {
		t.Fatal("no arrival time while on")
	}

	// Nothing but the state file is left in its directory.
	entries, _ := os.ReadDir(filepath.Dir(state))
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
	// A file that is not ours is an error, not silently service mode off.
	if err := os.WriteFile(state, []byte("{on"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{StateFile: state}, log.NewNopLogger()); err == nil || !strings.Contains(err.Error(), "delete the file to reset it") {
		t.Fatalf("corrupt state file: %v", err)
	}
	// A switch that cannot be persisted is refused and changes nothing.
	c, _ = newCollector(t, Config{StateFile: filepath.Join(t.TempDir(), "missing", "service-mode.json")})
	if w := post(c.Handler(), "/v1/service-mode", `{"on": true, "engineer": "wang.lei"}`); w.Code != 500 || !strings.Contains(w.Body.String(), "persist service mode") {
		t.Fatalf("unwritable state file: %d %s", w.Code, w.Body)
	}
	if got := gather(c); got["kiosk_service_mode{}"] != 0 {
		t.Fatal("an unpersisted switch took effect")
	}
}

func TestOverRealHTTP(t *testing.T) {
	c, _ := newCollector(t, Config{Listen: "127.0.0.1:0", Token: "t0k", Devices: []Device{{"idreader", "id_card_reader"}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	base := "http://" + c.Addr()
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/events", strings.NewReader(`{"events":[{"type":"heartbeat"},{"type":"device","device":"idreader","kind":"id_card_reader","state":"ok"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer t0k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("post: %v %v", resp, err)
	}
	resp.Body.Close()

	sm, err := PostServiceMode(ctx, base+"/", "t0k", true, "li.na", "inspection")
	if err != nil || !sm.On || sm.Engineer != "li.na" {
		t.Fatalf("service mode: %+v %v", sm, err)
	}
	if _, err := PostServiceMode(ctx, base, "t0k", true, "", ""); err == nil || !strings.Contains(err.Error(), "engineer: required") {
		t.Fatalf("service mode without engineer: %v", err)
	}
	if _, err := PostServiceMode(ctx, base, "wrong", false, "li.na", ""); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("service mode with a wrong token: %v", err)
	}

	req, _ = http.NewRequest(http.MethodGet, base+"/v1/state", nil)
	req.Header.Set("Authorization", "Bearer t0k")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st State
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if !st.ServiceMode.On || st.LastHeartbeat.IsZero() || len(st.Devices) != 1 || st.Devices[0].Posted != "ok" || !st.Devices[0].Configured || len(st.Series) == 0 {
		t.Fatalf("state: %+v", st)
	}
}

func TestRunCannotListen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, _ := newCollector(t, Config{Listen: ln.Addr().String()})
	if err := c.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "listen on") {
		t.Fatalf("Run on a taken port: %v", err)
	}
	if a := c.Addr(); a != "" {
		t.Fatalf("Addr after a failed listen: %q", a)
	}
	if _, err := PostServiceMode(context.Background(), "http://"+ln.Addr().String()+"x", "", false, "", ""); err == nil {
		t.Fatal("PostServiceMode to a bad address succeeded")
	}
}

// TestConcurrentPosts posts while collecting; run with -race.
func TestConcurrentPosts(t *testing.T) {
	c, _ := newCollector(t, Config{})
	h := c.Handler()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				post(h, "/v1/events", fmt.Sprintf(`{"events":[{"type":"page_load","page":"p%d","seconds":%d},{"type":"heartbeat"}]}`, i, j%7))
				post(h, "/v1/events", `{"type":"bogus"}`)
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			gather(c)
			do(h, http.MethodGet, "/v1/state", "")
		}
	})
	wg.Wait()
	got := gather(c)
	if got["kiosk_exporter_app_events_total{}"] != 8*50*2 || got["kiosk_app_page_load_seconds_count{page=p3}"] != 50 ||
		got["kiosk_exporter_app_posts_rejected_total{reason=invalid}"] != 8*50 {
		t.Fatalf("%v", got)
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
	f(Config{}, "")
	f(Config{Devices: []Device{{"idreader", "id_card_reader"}, {"receipt", "receipt_printer"}}}, "")
	f(Config{Listen: "localhost:9183"}, "")
	f(Config{Listen: "[::1]:9183"}, "")
	f(Config{Listen: "127.0.0.2:0"}, "")
	f(Config{Listen: "9183"}, "listen")
	f(Config{Listen: "127.0.0.1:http"}, "listen")
	f(Config{Listen: "127.0.0.1:70000"}, "listen")
	f(Config{Listen: ":9183"}, "listen")
	f(Config{Listen: "0.0.0.0:9183"}, "listen")
	f(Config{Listen: "kiosk.local:9183"}, "listen")
	f(Config{Listen: "0.0.0.0:9183", AllowRemote: true}, "token")
	f(Config{Listen: "0.0.0.0:9183", AllowRemote: true, Token: "s3cret"}, "")
	f(Config{Token: "two words"}, "token")
	f(Config{HeartbeatTimeout: yamlfile.Duration(-time.Second)}, "heartbeat_timeout")
	f(Config{DeviceTimeout: yamlfile.Duration(-time.Second)}, "device_timeout")
	f(Config{MaxBodyBytes: -1}, "max_body_bytes")
	f(Config{MaxLabelValues: -1}, "max_label_values")
	f(Config{MaxLabelValues: 1, Devices: []Device{{"a", "camera"}, {"b", "camera"}}}, "devices")
	f(Config{Devices: []Device{{"idreader", "id_card_reader"}, {"idreader", "camera"}}}, "devices.1.name")
	f(Config{Devices: []Device{{"id reader", "id_card_reader"}}}, "devices.0.name")
	f(Config{Devices: []Device{{"", "id_card_reader"}}}, "devices.0.name")
	f(Config{Devices: []Device{{"x", "toaster"}}}, "devices.0.kind")
	f(Config{Devices: []Device{{"x", "qr_scanner"}}}, "devices.0.kind") // the catalogue's kind is code_scanner
}

// FuzzEvents posts arbitrary bodies to a collector that already holds
// state: the endpoint never panics, answers 204 or 4xx, and a refused body
// changes nothing but the rejection counters. The seed corpus is in
// testdata/fuzz/FuzzEvents.
func FuzzEvents(f *testing.F) {
	f.Add(`{"events":[{"type":"page_load","page":"home","seconds":1.5},{"type":"heartbeat"}]}`)
	f.Add(`{"events":[{"type":"device","device":"cam","kind":"camera","state":"fault","code":"E1"}]}`)
	f.Add(`{"events":[{"type":"error","page":"x","kind":"timeout"},{"type":"bogus"}]}`)
	f.Add(`{"type":"receipt_paper","printer":"rp","state":"empty","time":"2026-11-24T10:00:00Z"}`)
	f.Add(`{"events":null}`)
	f.Fuzz(func(t *testing.T, body string) {
		c, now := newCollector(t, Config{MaxLabelValues: 5, MaxBodyBytes: 4 << 10, Devices: []Device{{"idreader", "id_card_reader"}}})
		h := c.Handler()
		if w := post(h, "/v1/events", `{"events":[{"type":"page_load","page":"home","seconds":0.7},{"type":"heartbeat"},
			{"type":"device","device":"idreader","kind":"id_card_reader","state":"ok"}]}`); w.Code != 204 {
			t.Fatalf("priming: %d %s", w.Code, w.Body)
		}
		*now = now.Add(time.Second)
		before := gather(c)
		w := post(h, "/v1/events", body)
		after := gather(c)
		switch {
		case w.Code == 204:
			if after["kiosk_exporter_app_events_total{}"] <= before["kiosk_exporter_app_events_total{}"] {
				t.Fatalf("accepted %q without counting it", body)
			}
		case w.Code >= 400 && w.Code <= 499:
			if !sameSeries(withoutRejections(before), withoutRejections(after)) {
				t.Fatalf("refused body %q changed the state:\n%v\n->\n%v", body, before, after)
			}
			if w.Body.Len() == 0 {
				t.Fatalf("refused %q without saying why", body)
			}
		default:
			t.Fatalf("status %d for %q", w.Code, body)
		}
	})
}
