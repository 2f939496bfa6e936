// Package probe fetches the kiosk's pages and the government platform's API
// as the kiosk application would: reachability, latency, status, and the
// SHA-256 of each page against the released one, which shows tampering
// (Fujian 2022 table A.1: page tampered, redirect wrong or slow; DB4403/T 503
// part 6: page not reachable).
//
// It is a plain HTTP client: it sees the document the server sends, not what
// a browser renders after running the page's scripts.
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/yamlfile"
)

// MaxBody bounds what a probe reads, and hashes, of a page. A kiosk page is
// a document of kilobytes; one larger than this is reported as not matching
// its hash, and HashURL refuses it.
const MaxBody = 8 << 20

const (
	defaultTimeout = 10 * time.Second
	// hashTimeout bounds HashURL, run by an operator at a terminal.
	hashTimeout = 30 * time.Second
)

// Config configures the collector.
type Config struct {
	Pages    []Page   `yaml:"pages"`
	Platform []Target `yaml:"platform"`
	// CAFile is a PEM file of CA certificates trusted besides the system's:
	// kiosk networks often serve their pages under an internal CA.
	CAFile string `yaml:"ca_file"`
	// TLSInsecureSkipVerify accepts any server certificate. Default false;
	// prefer CAFile.
	TLSInsecureSkipVerify bool `yaml:"tls_insecure_skip_verify"`
}

// Page is a kiosk page the application shows.
type Page struct {
	// Name is the page label of the page's series.
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// SHA256 is the hex SHA-256 of the released page body, as
	// "kiosk-exporter hash-page URL" prints it; without it integrity is not
	// reported.
	SHA256 string `yaml:"sha256"`
	// Timeout bounds the whole probe: connection, redirects and body.
	// Default 10s.
	Timeout yamlfile.Duration `yaml:"timeout"`
	// Method is GET (the default) or HEAD. HEAD fetches no body, so it
	// cannot check integrity.
	Method string `yaml:"method"`
}

// Target is an API endpoint of the service platform.
type Target struct {
	// Name is the target label of the target's series.
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// Timeout bounds the whole probe. Default 10s.
	Timeout yamlfile.Duration `yaml:"timeout"`
	// ExpectStatus lists the answers that mean the API is up: codes ("401",
	// for a health endpoint behind authentication) or classes ("2xx").
	// Default: 2xx.
	ExpectStatus []string `yaml:"expect_status"`
}

// defaults fills the zero values; Validate has accepted what is set.
func (c *Config) defaults() {
	for i := range c.Pages {
		p := &c.Pages[i]
		if p.Timeout <= 0 {
			p.Timeout = yamlfile.Duration(defaultTimeout)
		}
		p.Method = strings.ToUpper(p.Method)
		if p.Method == "" {
			p.Method = http.MethodGet
		}
		p.SHA256 = strings.ToLower(p.SHA256)
	}
	for i := range c.Platform {
		t := &c.Platform[i]
		if t.Timeout <= 0 {
			t.Timeout = yamlfile.Duration(defaultTimeout)
		}
		if len(t.ExpectStatus) == 0 {
			t.ExpectStatus = []string{"2xx"}
		}
	}
}

// Validate checks the configuration; errors are *yamlfile.FieldError with
// paths such as "pages.1.sha256".
func (c *Config) Validate() error {
	seen := map[string]bool{}
	for i, p := range c.Pages {
		field := func(f string) string { return fmt.Sprintf("pages.%d.%s", i, f) }
		if err := checkCommon(field, p.Name, p.URL, p.Timeout, seen); err != nil {
			return err
		}
		method := strings.ToUpper(p.Method)
		if method != "" && method != http.MethodGet && method != http.MethodHead {
			return yamlfile.Fieldf(field("method"), "%q is not GET or HEAD", p.Method)
		}
		if p.SHA256 != "" {
			if b, err := hex.DecodeString(p.SHA256); err != nil || len(b) != sha256.Size {
				return yamlfile.Fieldf(field("sha256"), "is not 64 hex digits (get it with kiosk-exporter hash-page URL)")
			}
			if method == http.MethodHead {
				return yamlfile.Fieldf(field("sha256"), "needs method GET: a HEAD answer has no body to hash")
			}
		}
	}
	seen = map[string]bool{}
	for i, t := range c.Platform {
		field := func(f string) string { return fmt.Sprintf("platform.%d.%s", i, f) }
		if err := checkCommon(field, t.Name, t.URL, t.Timeout, seen); err != nil {
			return err
		}
		for j, st := range t.ExpectStatus {
			if !validStatus(st) {
				return yamlfile.Fieldf(field("expect_status."+strconv.Itoa(j)), "%q is not a status (200) or a class (2xx)", st)
			}
		}
	}
	if c.CAFile != "" {
		if _, err := os.Stat(c.CAFile); err != nil {
			return yamlfile.Fieldf("ca_file", "%v", err)
		}
	}
	return nil
}

// checkCommon checks what pages and platform targets share.
func checkCommon(field func(string) string, name, rawURL string, timeout yamlfile.Duration, seen map[string]bool) error {
	if name == "" || strings.ContainsAny(name, " \"\n") || len(name) > 64 {
		return yamlfile.Fieldf(field("name"), "%q is not a name (1 to 64 characters, no spaces or quotes)", name)
	}
	if seen[name] {
		return yamlfile.Fieldf(field("name"), "%q is used twice", name)
	}
	seen[name] = true
	if err := checkURL(rawURL); err != nil {
		return yamlfile.Fieldf(field("url"), "%v", err)
	}
	if timeout < 0 {
		return yamlfile.Fieldf(field("timeout"), "%s is negative", time.Duration(timeout))
	}
	return nil
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", raw)
	}
	return nil
}

// validStatus accepts "200" to "599" and "1xx" to "5xx".
func validStatus(s string) bool {
	if len(s) != 3 || s[0] < '1' || s[0] > '5' {
		return false
	}
	if s[1:] == "xx" || s[1:] == "XX" {
		return true
	}
	return s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9'
}

// statusMatches tells whether an HTTP status is one of expect.
func statusMatches(expect []string, status int) bool {
	code := strconv.Itoa(status)
	return slices.ContainsFunc(expect, func(e string) bool {
		return e == code || len(e) == 3 && strings.EqualFold(e[1:], "xx") && e[0] == code[0]
	})
}

// Collector probes the pages and the platform.
type Collector struct {
	cfg    Config
	client *http.Client
}

// New returns a probe collector of a configuration that passed Validate;
// it fails if the CA file cannot be used.
func New(cfg Config) (*Collector, error) {
	cfg.Pages = slices.Clone(cfg.Pages)
	cfg.Platform = slices.Clone(cfg.Platform)
	cfg.defaults()
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
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsCfg
	// Every probe dials anew, as a kiosk waking from idle would: a reused
	// connection would hide a DNS, TCP or TLS problem and its latency.
	transport.DisableKeepAlives = true
	return &Collector{cfg: cfg, client: &http.Client{Transport: transport}}, nil
}

// Name implements exporter.Collector.
func (c *Collector) Name() string { return "probe" }

// result is one probe's outcome.
type result struct {
	status    int // 0: no answer
	duration  time.Duration
	sha256    string // hex, of the body read
	truncated bool   // the body was longer than MaxBody
	err       error  // no answer, or the body was cut off
}

// fetch requests target within timeout (and ctx), following redirects, and
// hashes the body as it streams in.
func (c *Collector) fetch(ctx context.Context, method, target string, timeout time.Duration) result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return result{err: err}
	}
	req.Header.Set("User-Agent", "kiosk-exporter/"+exporter.Version)
	resp, err := c.client.Do(req)
	if err != nil {
		return result{duration: time.Since(start), err: err}
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(resp.Body, MaxBody+1))
	r := result{status: resp.StatusCode, duration: time.Since(start), truncated: n > MaxBody}
	if err != nil {
		// The server answered but the body was cut off (by the timeout,
		// most often): the page did not load.
		r.err = fmt.Errorf("read body: %w", err)
	}
	r.sha256 = hex.EncodeToString(h.Sum(nil))
	return r
}

// Collect implements exporter.Collector. All targets are probed at once,
// each within its own timeout and within ctx; one that does not answer is
// reported, not returned as an error.
func (c *Collector) Collect(ctx context.Context, s *exporter.Snapshot) error {
	pages := make([]result, len(c.cfg.Pages))
	platform := make([]result, len(c.cfg.Platform))
	var wg sync.WaitGroup
	for i, p := range c.cfg.Pages {
		wg.Go(func() { pages[i] = c.fetch(ctx, p.Method, p.URL, time.Duration(p.Timeout)) })
	}
	for i, t := range c.cfg.Platform {
		wg.Go(func() { platform[i] = c.fetch(ctx, http.MethodGet, t.URL, time.Duration(t.Timeout)) })
	}
	wg.Wait()
	for i, p := range c.cfg.Pages {
		r := pages[i]
		ok := r.err == nil && r.status/100 == 2
		s.AddBool("kiosk_app_page_probe_success", ok, p.Name)
		s.Add("kiosk_app_page_probe_duration_seconds", r.duration.Seconds(), p.Name)
		s.Add("kiosk_app_page_probe_status_code", float64(r.status), p.Name)
		// The integrity of a page that did not load is unknown, not bad:
		// sw.page_unreachable covers it.
		if p.SHA256 != "" && ok {
			s.AddBool("kiosk_app_page_integrity_ok", !r.truncated && r.sha256 == p.SHA256, p.Name)
		}
	}
	for i, t := range c.cfg.Platform {
		r := platform[i]
		s.AddBool("kiosk_platform_api_up", r.err == nil && statusMatches(t.ExpectStatus, r.status), t.Name)
		// Any answer, even an unexpected status, has a latency; no answer
		// has none worth a series (it would be the timeout).
		if r.status > 0 {
			s.Add("kiosk_platform_api_latency_seconds", r.duration.Seconds(), t.Name)
		}
	}
	return nil
}

// HashURL returns the hex SHA-256 of the body at target, for a page's sha256
// setting ("kiosk-exporter hash-page URL"). It trusts the system's CAs only;
// Collector.HashURL uses a configuration's ca_file.
func HashURL(ctx context.Context, target string) (string, error) {
	c, err := New(Config{})
	if err != nil {
		return "", err
	}
	return c.HashURL(ctx, target)
}

// HashURL returns the hex SHA-256 of the body at target as the collector
// fetches it (with its CA file and TLS settings), within 30 seconds. It fails
// unless the page answers 2xx with a body of at most MaxBody bytes.
func (c *Collector) HashURL(ctx context.Context, target string) (string, error) {
	if err := checkURL(target); err != nil {
		return "", err
	}
	r := c.fetch(ctx, http.MethodGet, target, hashTimeout)
	switch {
	case r.err != nil:
		return "", fmt.Errorf("fetch %s: %w", target, r.err)
	case r.status/100 != 2:
		return "", fmt.Errorf("fetch %s: HTTP %d: hash a page that loads", target, r.status)
	case r.truncated:
		return "", fmt.Errorf("fetch %s: %w", target, errTooLarge)
	}
	return r.sha256, nil
}

var errTooLarge = errors.New("body larger than 8 MiB: not a kiosk page the probe can check")

var _ exporter.Collector = (*Collector)(nil)
