package probe

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/internal/peertest"
	"github.com/kioskmon/kioskmon/yamlfile"
)

const homePage = "<html><body>Welcome to the service hall</body></html>"

func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// server serves kiosk pages and platform endpoints on loopback; body is the
// home page's current content.
func server(t *testing.T) (srv *httptest.Server, body *atomic.Value) {
	t.Helper()
	body = &atomic.Value{}
	body.Store(homePage)
	mux := http.NewServeMux()
	mux.HandleFunc("/home", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body.Load()) })
	mux.HandleFunc("/old-home", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond)
		http.Redirect(w, r, "/home", http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) })
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) { w.Write(bytes.Repeat([]byte("x"), MaxBody+1)) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/api/health", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/api/down", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	mux.HandleFunc("/api/auth", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) })
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, body
}

func closedURL(t *testing.T) string {
	return fmt.Sprintf("http://127.0.0.1:%d/", peertest.FreePort(t))
}

// gather collects once; keys are "metric{label}".
func gather(ctx context.Context, t *testing.T, c *Collector) map[string]float64 {
	t.Helper()
	s := &exporter.Snapshot{}
	if err := c.Collect(ctx, s); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	s.Each(func(name string, labels []exporter.Label, v float64) {
		got[name+"{"+labels[0].Value+"}"] = v
	})
	return got
}

func mustNew(t *testing.T, cfg Config) *Collector {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPages(t *testing.T) {
	srv, _ := server(t)
	// integrity is "1", "0", or "" when the series must be absent.
	f := func(p Page, success, status float64, integrity string) {
		t.Helper()
		p.Name = "page"
		got := gather(context.Background(), t, mustNew(t, Config{Pages: []Page{p}}))
		if got["kiosk_app_page_probe_success{page}"] != success || got["kiosk_app_page_probe_status_code{page}"] != status {
			t.Errorf("%s: got %v, want success %g status %g", p.URL, got, success, status)
		}
		if v, ok := got["kiosk_app_page_integrity_ok{page}"]; fmt.Sprint(v) != integrity && (ok || integrity != "") {
			t.Errorf("%s: integrity %g (present %v), want %q", p.URL, v, ok, integrity)
		}
		if _, ok := got["kiosk_app_page_probe_duration_seconds{page}"]; !ok {
			t.Errorf("%s: no duration", p.URL)
		}
	}
	f(Page{URL: srv.URL + "/home", SHA256: hash(homePage)}, 1, 200, "1")
	f(Page{URL: srv.URL + "/home", SHA256: strings.ToUpper(hash(homePage))}, 1, 200, "1")
	f(Page{URL: srv.URL + "/home"}, 1, 200, "")
	f(Page{URL: srv.URL + "/home", SHA256: hash("the previous release")}, 1, 200, "0")
	f(Page{URL: srv.URL + "/home", Method: "HEAD"}, 1, 200, "")
	f(Page{URL: srv.URL + "/old-home", SHA256: hash(homePage)}, 1, 200, "1")
	f(Page{URL: srv.URL + "/loop"}, 0, 0, "")
	f(Page{URL: srv.URL + "/broken", SHA256: hash(homePage)}, 0, 500, "")
	f(Page{URL: srv.URL + "/missing"}, 0, 404, "")
	f(Page{URL: srv.URL + "/huge", SHA256: hash(strings.Repeat("x", MaxBody))}, 1, 200, "0")
	f(Page{URL: closedURL(t), SHA256: hash(homePage)}, 0, 0, "")
}

// TestTampering changes the served page under a running collector.
func TestTampering(t *testing.T) {
	srv, body := server(t)
	c := mustNew(t, Config{Pages: []Page{{Name: "home", URL: srv.URL + "/home", SHA256: hash(homePage)}}})
	if got := gather(context.Background(), t, c); got["kiosk_app_page_integrity_ok{home}"] != 1 {
		t.Fatalf("released page: %v", got)
	}
	body.Store(strings.Replace(homePage, "Welcome", "Pay here: scan this QR code", 1))
	got := gather(context.Background(), t, c)
	if got["kiosk_app_page_integrity_ok{home}"] != 0 || got["kiosk_app_page_probe_success{home}"] != 1 {
		t.Fatalf("tampered page: %v", got)
	}
}

func TestRedirectCountsInDuration(t *testing.T) {
	srv, _ := server(t)
	c := mustNew(t, Config{Pages: []Page{{Name: "old", URL: srv.URL + "/old-home"}}})
	if d := gather(context.Background(), t, c)["kiosk_app_page_probe_duration_seconds{old}"]; d < 0.1 {
		t.Fatalf("duration %gs leaves out the 100ms redirect", d)
	}
}

// TestSlowPages probes three pages that never answer, with a 300ms timeout:
// in parallel, the gather takes about one timeout.
func TestSlowPages(t *testing.T) {
	srv, _ := server(t)
	const timeout = 300 * time.Millisecond
	var cfg Config
	for _, name := range []string{"a", "b", "c"} {
		cfg.Pages = append(cfg.Pages, Page{Name: name, URL: srv.URL + "/slow", Timeout: yamlfile.Duration(timeout)})
	}
	c := mustNew(t, cfg)
	start := time.Now()
	got := gather(context.Background(), t, c)
	if d := time.Since(start); d < timeout*8/10 || d > timeout+time.Second {
		t.Fatalf("a gather of pages with a %s timeout took %s", timeout, d)
	}
	for _, name := range []string{"a", "b", "c"} {
		if got["kiosk_app_page_probe_success{"+name+"}"] != 0 || got["kiosk_app_page_probe_status_code{"+name+"}"] != 0 {
			t.Errorf("page %s: %v", name, got)
		}
		// The deadline is set a moment before the probe's clock starts.
		if d := got["kiosk_app_page_probe_duration_seconds{"+name+"}"]; d < 0.8*timeout.Seconds() || d > timeout.Seconds()+0.5 {
			t.Errorf("page %s: duration %gs, want about the timeout", name, d)
		}
	}
}

// TestContextBoundsTimeouts cuts a gather short: the default 10s timeout of
// the page does not outlive the gather's context.
func TestContextBoundsTimeouts(t *testing.T) {
	srv, _ := server(t)
	c := mustNew(t, Config{Pages: []Page{{Name: "slow", URL: srv.URL + "/slow"}}})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	got := gather(ctx, t, c)
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("gather took %s past its 200ms context", d)
	}
	if got["kiosk_app_page_probe_success{slow}"] != 0 {
		t.Fatalf("got %v", got)
	}
}

func TestPlatform(t *testing.T) {
	srv, _ := server(t)
	// latency tells whether kiosk_platform_api_latency_seconds is present.
	f := func(tg Target, up float64, latency bool) {
		t.Helper()
		tg.Name = "platform"
		got := gather(context.Background(), t, mustNew(t, Config{Platform: []Target{tg}}))
		_, hasLatency := got["kiosk_platform_api_latency_seconds{platform}"]
		if got["kiosk_platform_api_up{platform}"] != up || hasLatency != latency {
			t.Errorf("%s %v: got %v, want up %g, latency %v", tg.URL, tg.ExpectStatus, got, up, latency)
		}
	}
	f(Target{URL: srv.URL + "/api/health"}, 1, true)
	f(Target{URL: srv.URL + "/api/down"}, 0, true)
	f(Target{URL: srv.URL + "/api/auth"}, 0, true)
	f(Target{URL: srv.URL + "/api/auth", ExpectStatus: []string{"2xx", "401"}}, 1, true)
	f(Target{URL: srv.URL + "/api/health", ExpectStatus: []string{"200"}}, 0, true)
	f(Target{URL: srv.URL + "/slow", Timeout: yamlfile.Duration(200 * time.Millisecond)}, 0, false)
	f(Target{URL: closedURL(t)}, 0, false)
}

// TestTLS serves the page under a CA the system does not trust, as kiosk
// networks' internal CAs are.
func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, homePage) }))
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	f := func(cfg Config, success float64) {
		t.Helper()
		cfg.Pages = []Page{{Name: "home", URL: srv.URL, SHA256: hash(homePage)}}
		got := gather(context.Background(), t, mustNew(t, cfg))
		if got["kiosk_app_page_probe_success{home}"] != success {
			t.Errorf("%+v: got %v, want success %g", cfg, got, success)
		}
	}
	f(Config{}, 0)
	f(Config{CAFile: caFile}, 1)
	f(Config{TLSInsecureSkipVerify: true}, 1)

	c := mustNew(t, Config{CAFile: caFile})
	if h, err := c.HashURL(context.Background(), srv.URL); err != nil || h != hash(homePage) {
		t.Fatalf("HashURL with the CA: %s, %v", h, err)
	}
	if _, err := HashURL(context.Background(), srv.URL); err == nil {
		t.Fatal("HashURL trusted an unknown CA")
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o644)
	if _, err := New(Config{CAFile: bad}); err == nil {
		t.Fatal("New accepted a CA file without a certificate")
	}
}

func TestHashURL(t *testing.T) {
	srv, _ := server(t)
	f := func(url, want string, wantErr bool) {
		t.Helper()
		h, err := HashURL(context.Background(), url)
		if h != want || (err != nil) != wantErr {
			t.Errorf("HashURL(%s) = %q, %v; want %q, error %v", url, h, err, want, wantErr)
		}
	}
	f(srv.URL+"/home", hash(homePage), false)
	f(srv.URL+"/old-home", hash(homePage), false)
	f(srv.URL+"/broken", "", true)
	f(srv.URL+"/huge", "", true)
	f(closedURL(t), "", true)
	f("file:///etc/passwd", "", true)

	if _, err := HashURL(context.Background(), srv.URL+"/huge"); !errors.Is(err, errTooLarge) {
		t.Errorf("huge page: %v", err)
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
		var fe *yamlfile.FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Fatalf("%+v: error %v, want one about %s", c, err, field)
		}
	}
	f(Config{}, "")
	f(Config{Pages: []Page{{Name: "home", URL: "http://127.0.0.1/", SHA256: hash("x")}}}, "")
	f(Config{Pages: []Page{{Name: "home", URL: "https://kiosk.local/", SHA256: strings.ToUpper(hash("x")), Method: "get"}}}, "")
	f(Config{Pages: []Page{{Name: "home", URL: "http://x/", Method: "HEAD"}}}, "")
	f(Config{Pages: []Page{{Name: "home", URL: "ftp://x/"}}}, "pages.0.url")
	f(Config{Pages: []Page{{Name: "home", URL: "/index.html"}}}, "pages.0.url")
	f(Config{Pages: []Page{{Name: "home", URL: "http://x/", SHA256: "abc"}}}, "pages.0.sha256")
	f(Config{Pages: []Page{{Name: "home", URL: "http://x/", SHA256: strings.Repeat("g", 64)}}}, "pages.0.sha256")
	f(Config{Pages: []Page{{Name: "home", URL: "http://x/", SHA256: hash("x"), Method: "HEAD"}}}, "pages.0.sha256")
	f(Config{Pages: []Page{{Name: "home", URL: "http://x/", Method: "POST"}}}, "pages.0.method")
	f(Config{Pages: []Page{{Name: "home", URL: "http://x/", Timeout: -1}}}, "pages.0.timeout")
	f(Config{Pages: []Page{{Name: "a", URL: "http://x/"}, {Name: "a", URL: "http://y/"}}}, "pages.1.name")
	f(Config{Pages: []Page{{Name: "home page", URL: "http://x/"}}}, "pages.0.name")
	f(Config{Pages: []Page{{Name: "a", URL: "http://x/"}}, Platform: []Target{{Name: "a", URL: "http://x/"}}}, "")
	f(Config{Platform: []Target{{Name: "", URL: "http://x/"}}}, "platform.0.name")
	f(Config{Platform: []Target{{Name: "p", URL: "http://x/", ExpectStatus: []string{"2xx", "401"}}}}, "")
	f(Config{Platform: []Target{{Name: "p", URL: "http://x/", ExpectStatus: []string{"2xx", "ok"}}}}, "platform.0.expect_status.1")
	f(Config{Platform: []Target{{Name: "p", URL: "http://x/", ExpectStatus: []string{"600"}}}}, "platform.0.expect_status.0")
	f(Config{CAFile: "/nonexistent/ca.pem"}, "ca_file")
}

// TestYAML decodes the collector's section as the exporter's file holds it:
// statuses may be written as numbers.
func TestYAML(t *testing.T) {
	const doc = `
pages:
  - {name: home, url: "http://127.0.0.1:8080/index.html", sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, timeout: 5s}
platform:
  - {name: platform, url: "https://zwfw.example.gov.cn/api/health", expect_status: [2xx, 401]}
tls_insecure_skip_verify: true
`
	var c Config
	if _, err := yamlfile.Decode([]byte(doc), "probe.yml", &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := c.Platform[0].ExpectStatus; len(got) != 2 || got[1] != "401" || !c.TLSInsecureSkipVerify || c.Pages[0].Timeout != yamlfile.Duration(5*time.Second) {
		t.Fatalf("decoded %+v", c)
	}
	if _, err := yamlfile.Decode([]byte("pages: [{name: home, url: \"http://x/\", hash: abc}]"), "probe.yml", &Config{}); err == nil {
		t.Fatal("an unknown field was accepted")
	}
}
