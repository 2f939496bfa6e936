package probe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/internal/peertest"
	"github.com/kioskmon/kioskmon/yamlfile"
)

func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func gather(t *testing.T, c *Collector) map[string]float64 {
	t.Helper()
	s := &exporter.Snapshot{}
	if err := c.Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	s.Each(func(name string, labels []exporter.Label, v float64) {
		got[name+"{"+labels[0].Value+"}"] = v
	})
	return got
}

func TestProbes(t *testing.T) {
	const page = "<html><body>Welcome to the service hall</body></html>"
	var body atomic.Value
	body.Store(page)
	mux := http.NewServeMux()
	mux.HandleFunc("/home", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body.Load()) })
	mux.HandleFunc("/old-home", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/home", http.StatusFound) })
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/api/health", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/api/down", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	closed := fmt.Sprintf("http://127.0.0.1:%d/", peertest.FreePort(t))

	cfg := Config{
		Pages: []Page{
			{Name: "home", URL: srv.URL + "/home", SHA256: hash(page)},
			{Name: "redirected", URL: srv.URL + "/old-home", SHA256: hash(page)},
			{Name: "broken", URL: srv.URL + "/broken", SHA256: hash(page)},
			{Name: "slow", URL: srv.URL + "/slow", Timeout: yamlfile.Duration(300 * time.Millisecond)},
			{Name: "gone", URL: closed},
		},
		Platform: []Target{{Name: "platform", URL: srv.URL + "/api/health"}, {Name: "gateway", URL: srv.URL + "/api/down"}},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got := gather(t, c)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("a gather took %s: the slow page's 300ms timeout was not kept", d)
	}
	for k, v := range map[string]float64{
		"kiosk_app_page_probe_success{home}": 1, "kiosk_app_page_probe_status_code{home}": 200, "kiosk_app_page_integrity_ok{home}": 1,
		"kiosk_app_page_probe_success{redirected}": 1, "kiosk_app_page_integrity_ok{redirected}": 1,
		"kiosk_app_page_probe_success{broken}": 0, "kiosk_app_page_probe_status_code{broken}": 500,
		"kiosk_app_page_probe_success{slow}": 0, "kiosk_app_page_probe_status_code{slow}": 0,
		"kiosk_app_page_probe_success{gone}": 0, "kiosk_app_page_probe_status_code{gone}": 0,
		"kiosk_platform_api_up{platform}": 1, "kiosk_platform_api_up{gateway}": 0,
	} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %g (present %v), want %g", k, g, ok, v)
		}
	}
	for _, k := range []string{"kiosk_app_page_integrity_ok{broken}", "kiosk_app_page_integrity_ok{slow}", "kiosk_platform_api_latency_seconds{gateway}"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s reported for a target that did not answer properly", k)
		}
	}
	if d := got["kiosk_app_page_probe_duration_seconds{slow}"]; d < 0.25 || d > 2 {
		t.Errorf("slow page duration %g, want about the 0.3s timeout", d)
	}

	// The served page changes under the kiosk: tampering.
	body.Store(strings.Replace(page, "Welcome", "Pay here: scan this QR code", 1))
	got = gather(t, c)
	if got["kiosk_app_page_integrity_ok{home}"] != 0 || got["kiosk_app_page_probe_success{home}"] != 1 {
		t.Fatalf("tampered page: %v", got)
	}

	h, err := HashURL(context.Background(), srv.URL+"/home")
	if err != nil || h != hash(body.Load().(string)) {
		t.Fatalf("HashURL: %s, %v", h, err)
	}
	if _, err := HashURL(context.Background(), srv.URL+"/broken"); err == nil {
		t.Fatal("HashURL of a failing page gave a hash")
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
	f(Config{Pages: []Page{{Name: "home", URL: "http://127.0.0.1/", SHA256: hash("x")}}}, "")
	f(Config{Pages: []Page{{Name: "home", URL: "ftp://x/"}}}, "pages.0.url")
	f(Config{Pages: []Page{{Name: "home", URL: "http://x/", SHA256: "abc"}}}, "pages.0.sha256")
	f(Config{Pages: []Page{{Name: "a", URL: "http://x/"}, {Name: "a", URL: "http://y/"}}}, "pages.1.name")
	f(Config{Platform: []Target{{Name: "", URL: "http://x/"}}}, "platform.0.name")
	f(Config{CAFile: "/nonexistent/ca.pem"}, "ca_file")
}
