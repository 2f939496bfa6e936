// Package probe fetches the kiosk's pages and the government platform's API
// as the kiosk application would: reachability, latency, status, and the
// SHA-256 of each page against the released one, which shows tampering.
package probe

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/yamlfile"
)

// maxBody bounds what a probe reads (and hashes) of a page.
const maxBody = 8 << 20

// Config configures the collector.
type Config struct {
	Pages    []Page   `yaml:"pages"`
	Platform []Target `yaml:"platform"`
	// CAFile adds a CA (PEM) to the system's, for an internal CA.
	CAFile                string `yaml:"ca_file"`
	TLSInsecureSkipVerify bool   `yaml:"tls_insecure_skip_verify"`
}

// Page is a kiosk page the application shows.
type Page struct {
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// SHA256 is the hex SHA-256 of the released page body (kiosk-exporter
	// hash-page URL); without it integrity is not reported.
	SHA256  string            `yaml:"sha256"`
	Timeout yamlfile.Duration `yaml:"timeout"`
}

// Target is an API endpoint of the service platform.
type Target struct {
	Name    string            `yaml:"name"`
	URL     string            `yaml:"url"`
	Timeout yamlfile.Duration `yaml:"timeout"`
}

const defaultTimeout = 10 * time.Second

// Validate checks the configuration; errors are *yamlfile.FieldError.
func (c *Config) Validate() error {
	check := func(list string, i int, name, raw string, seen map[string]bool) error {
		field := func(f string) string { return fmt.Sprintf("%s.%d.%s", list, i, f) }
		if name == "" || strings.ContainsAny(name, " \"") || len(name) > 64 {
			return yamlfile.Fieldf(field("name"), "%q is not a name", name)
		}
		if seen[name] {
			return yamlfile.Fieldf(field("name"), "%q is used twice", name)
		}
		seen[name] = true
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return yamlfile.Fieldf(field("url"), "%q is not an http(s) URL", raw)
		}
		return nil
	}
	seen := map[string]bool{}
	for i, p := range c.Pages {
		if err := check("pages", i, p.Name, p.URL, seen); err != nil {
			return err
		}
		if b, err := hex.DecodeString(p.SHA256); p.SHA256 != "" && (err != nil || len(b) != sha256.Size) {
			return yamlfile.Fieldf(fmt.Sprintf("pages.%d.sha256", i), "is not 64 hex digits (get it with kiosk-exporter hash-page URL)")
		}
	}
	seen = map[string]bool{}
	for i, t := range c.Platform {
		if err := check("platform", i, t.Name, t.URL, seen); err != nil {
			return err
		}
	}
	if c.CAFile != "" {
		if _, err := os.Stat(c.CAFile); err != nil {
			return yamlfile.Fieldf("ca_file", "%v", err)
		}
	}
	return nil
}

// Collector probes the pages and the platform.
type Collector struct {
	cfg    Config
	client *http.Client
}

// New returns a probe collector.
func New(cfg Config) (*Collector, error) {
	tlsCfg := &tls.Config{InsecureSkipVerify: cfg.TLSInsecureSkipVerify}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", cfg.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	transport := &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: tlsCfg,
		MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second, DisableKeepAlives: true}
	return &Collector{cfg: cfg, client: &http.Client{Transport: transport}}, nil
}

// Name implements exporter.Collector.
func (c *Collector) Name() string { return "probe" }

// Result is one probe's outcome.
type Result struct {
	Status   int // 0: no answer
	Duration time.Duration
	SHA256   string
	Err      error
}

// Fetch gets url within timeout, following redirects, and hashes the body.
func (c *Collector) Fetch(ctx context.Context, target string, timeout time.Duration) Result {
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return Result{Err: err}
	}
	req.Header.Set("User-Agent", "kiosk-exporter/"+exporter.Version)
	resp, err := c.client.Do(req)
	if err != nil {
		return Result{Duration: time.Since(start), Err: err}
	}
	defer resp.Body.Close()
	h := sha256.New()
	_, err = io.Copy(h, io.LimitReader(resp.Body, maxBody))
	r := Result{Status: resp.StatusCode, Duration: time.Since(start), SHA256: hex.EncodeToString(h.Sum(nil))}
	if err != nil {
		// Cut off mid-body: it did not load.
		r.Status, r.Err = 0, err
	}
	return r
}

// Collect implements exporter.Collector; all targets are probed at once.
func (c *Collector) Collect(ctx context.Context, s *exporter.Snapshot) error {
	pages := make([]Result, len(c.cfg.Pages))
	platform := make([]Result, len(c.cfg.Platform))
	var wg sync.WaitGroup
	for i, p := range c.cfg.Pages {
		wg.Go(func() { pages[i] = c.Fetch(ctx, p.URL, time.Duration(p.Timeout)) })
	}
	for i, t := range c.cfg.Platform {
		wg.Go(func() { platform[i] = c.Fetch(ctx, t.URL, time.Duration(t.Timeout)) })
	}
	wg.Wait()
	for i, p := range c.cfg.Pages {
		r := pages[i]
		ok := r.Err == nil && r.Status/100 == 2
		s.AddBool("kiosk_app_page_probe_success", ok, p.Name)
		s.Add("kiosk_app_page_probe_duration_seconds", r.Duration.Seconds(), p.Name)
		s.Add("kiosk_app_page_probe_status_code", float64(r.Status), p.Name)
		// Integrity of a page that did not load is unknown, not bad.
		if p.SHA256 != "" && ok {
			s.AddBool("kiosk_app_page_integrity_ok", strings.EqualFold(r.SHA256, p.SHA256), p.Name)
		}
	}
	for i, t := range c.cfg.Platform {
		r := platform[i]
		// Any HTTP answer but a server error means the platform is there.
		up := r.Err == nil && r.Status > 0 && r.Status < 500
		s.AddBool("kiosk_platform_api_up", up, t.Name)
		if up {
			s.Add("kiosk_platform_api_latency_seconds", r.Duration.Seconds(), t.Name)
		}
	}
	return nil
}

// HashURL returns the hex SHA-256 of the body at url, for a page's sha256
// setting (kiosk-exporter hash-page URL).
func HashURL(ctx context.Context, target string) (string, error) {
	c, _ := New(Config{})
	r := c.Fetch(ctx, target, 30*time.Second)
	if r.Err != nil {
		return "", fmt.Errorf("fetch %s: %w", target, r.Err)
	}
	if r.Status/100 != 2 {
		return "", errors.New("fetch " + target + ": HTTP " + fmt.Sprint(r.Status) + ": hash a page that loads")
	}
	return r.SHA256, nil
}
