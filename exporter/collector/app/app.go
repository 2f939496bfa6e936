// Package app is the exporter's local endpoint: the kiosk application and
// the vendor's device middleware post what only they know (page load times,
// errors, heartbeats, transactions, device states) as JSON, and an engineer
// on site switches service mode. See API.md for the protocol.
package app

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/exporter/catalog"
	"github.com/kioskmon/kioskmon/yamlfile"
)

// Config configures the endpoint.
type Config struct {
	// Listen address. Default 127.0.0.1:9183; loopback only unless AllowRemote.
	Listen string `yaml:"listen"`
	// AllowRemote lets Listen be a non-loopback address; it needs a Token.
	AllowRemote bool `yaml:"allow_remote"`
	// Token, if set, must come as "Authorization: Bearer TOKEN" on every request.
	Token string `yaml:"token"`
	// HeartbeatTimeout: without a heartbeat (or an alive event, see API.md)
	// for this long the application counts as down. Default 30s.
	HeartbeatTimeout yamlfile.Duration `yaml:"heartbeat_timeout"`
	// Devices expected on this kiosk. One the middleware has not reported
	// on for DeviceTimeout (default 2m) is not_responding.
	Devices       []Device          `yaml:"devices"`
	DeviceTimeout yamlfile.Duration `yaml:"device_timeout"`
	// StateFile keeps service mode across restarts. Default "": not kept
	// (the agent puts it beside the push queue).
	StateFile string `yaml:"state_file"`
	// MaxBodyBytes bounds a post. Default 64KiB.
	MaxBodyBytes yamlfile.ByteSize `yaml:"max_body_bytes"`
	// MaxLabelValues bounds the distinct pages, services, devices and
	// receipt printers, each, so that a bug in the application cannot flood
	// kioskmon with series. Default 200.
	MaxLabelValues int `yaml:"max_label_values"`
}

// Device is a peripheral the middleware reports on.
type Device struct {
	Name string `yaml:"name"`
	Kind string `yaml:"kind"`
}

func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:9183"
	}
	if c.HeartbeatTimeout <= 0 {
		c.HeartbeatTimeout = yamlfile.Duration(30 * time.Second)
	}
	if c.DeviceTimeout <= 0 {
		c.DeviceTimeout = yamlfile.Duration(2 * time.Minute)
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 64 << 10
	}
	if c.MaxLabelValues <= 0 {
		c.MaxLabelValues = 200
	}
}

// Validate checks the configuration; errors are *yamlfile.FieldError.
func (c *Config) Validate() error {
	if c.Listen != "" {
		host, port, err := net.SplitHostPort(c.Listen)
		if err != nil {
			return yamlfile.Fieldf("listen", "%q is not host:port", c.Listen)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return yamlfile.Fieldf("listen", "%q: port %q is not a number from 0 to 65535", c.Listen, port)
		}
		if ip := net.ParseIP(host); !c.AllowRemote && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return yamlfile.Fieldf("listen", "%q is not a loopback address: the endpoint trusts what it is told; set allow_remote: true and a token to open it", c.Listen)
		}
	}
	// Service mode holds the grading of faults: whoever can reach an open
	// endpoint could hide them.
	if c.AllowRemote && c.Token == "" {
		return yamlfile.Fieldf("token", "is required with allow_remote: true")
	}
	if strings.ContainsAny(c.Token, " \t\r\n") {
		return yamlfile.Fieldf("token", "holds white space")
	}
	if c.HeartbeatTimeout < 0 {
		return yamlfile.Fieldf("heartbeat_timeout", "%s is negative", time.Duration(c.HeartbeatTimeout))
	}
	if c.DeviceTimeout < 0 {
		return yamlfile.Fieldf("device_timeout", "%s is negative", time.Duration(c.DeviceTimeout))
	}
	if c.MaxBodyBytes < 0 {
		return yamlfile.Fieldf("max_body_bytes", "is negative")
	}
	if c.MaxLabelValues < 0 {
		return yamlfile.Fieldf("max_label_values", "is negative")
	}
	if c.MaxLabelValues > 0 && len(c.Devices) > c.MaxLabelValues {
		return yamlfile.Fieldf("devices", "%d devices, over max_label_values %d", len(c.Devices), c.MaxLabelValues)
	}
	names := map[string]bool{}
	for i, d := range c.Devices {
		field := func(f string) string { return "devices." + strconv.Itoa(i) + "." + f }
		if !validLabel(d.Name) {
			return yamlfile.Fieldf(field("name"), "%q is not a device name (%s)", d.Name, labelRule)
		}
		if names[d.Name] {
			return yamlfile.Fieldf(field("name"), "%q is listed twice", d.Name)
		}
		names[d.Name] = true
		if !slices.Contains(catalog.PeripheralKinds, d.Kind) {
			return yamlfile.Fieldf(field("kind"), "%q is not one of %s", d.Kind, strings.Join(catalog.PeripheralKinds, ", "))
		}
	}
	return nil
}

const labelRule = "letters, digits, _ . - /; up to 64"

func validLabel(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-' || r == '/') {
			return false
		}
	}
	return true
}

type pageStats struct {
	requests float64
	buckets  []uint64 // cumulative, one per catalog.PageLoadBuckets
	count    uint64
	sum      float64
	errors   map[string]float64
}

type deviceState struct {
	kind, state, code string
	seen              time.Time // zero: configured, never reported
}

// Collector holds what was posted. It implements exporter.Collector and
// exporter.Runner.
type Collector struct {
	cfg        Config
	logger     log.Logger
	now        func() time.Time
	configured map[string]string // device name → kind, from cfg.Devices
	started    atomic.Bool
	ready      chan struct{} // closed once Run listens, or failed to
	addr       string        // set before ready is closed

	mu           sync.Mutex
	pages        map[string]*pageStats
	transactions map[string]float64
	restarts     map[string]float64
	heartbeat    time.Time // of the UI thread
	alive        time.Time // of the process (its watchdog or a background thread)
	devices      map[string]*deviceState
	receipt      map[string]string
	service      ServiceMode
	accepted     float64
	rejected     map[string]float64
}

var (
	_ exporter.Collector = (*Collector)(nil)
	_ exporter.Runner    = (*Collector)(nil)
)

// New returns the collector, with service mode read from cfg.StateFile.
// It does not listen: Run does.
func New(cfg Config, logger log.Logger) (*Collector, error) {
	cfg.defaults()
	c := &Collector{cfg: cfg, logger: logger, now: time.Now, configured: map[string]string{}, ready: make(chan struct{}),
		pages: map[string]*pageStats{}, transactions: map[string]float64{}, restarts: map[string]float64{},
		devices: map[string]*deviceState{}, receipt: map[string]string{}, rejected: map[string]float64{}}
	for _, d := range cfg.Devices {
		c.configured[d.Name] = d.Kind
		c.devices[d.Name] = &deviceState{kind: d.Kind}
	}
	if cfg.StateFile != "" {
		data, err := os.ReadFile(cfg.StateFile)
		switch {
		case err == nil:
			if err := json.Unmarshal(data, &c.service); err != nil {
				return nil, fmt.Errorf("read service mode from %s: %w (delete the file to reset it)", cfg.StateFile, err)
			}
		case !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("read service mode: %w", err)
		}
	}
	return c, nil
}

// Name implements exporter.Collector.
func (c *Collector) Name() string { return "app" }

// Addr returns the address Run listens on (with the port the system chose
// for ":0"), or "" if Run could not listen. It waits until Run has tried.
func (c *Collector) Addr() string {
	<-c.ready
	return c.addr
}

// Run implements exporter.Runner: it serves the endpoint until ctx ends,
// then lets requests under way finish for up to 2 seconds.
func (c *Collector) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("app endpoint: Run called twice")
	}
	ln, err := net.Listen("tcp", c.cfg.Listen)
	if err != nil {
		close(c.ready)
		return fmt.Errorf("listen on %s for the kiosk application: %w", c.cfg.Listen, err)
	}
	c.addr = ln.Addr().String()
	close(c.ready)
	srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, MaxHeaderBytes: 16 << 10}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	level.Info(c.logger).Log("msg", "local endpoint for the kiosk application", "url", "http://"+c.addr+"/v1/events")
	select {
	case err := <-served:
		return fmt.Errorf("serve the kiosk application's endpoint on %s: %w", c.addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-served
	return nil
}

// Handler serves the API.
func (c *Collector) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/events", c.handleEvents)
	mux.HandleFunc("/v1/service-mode", c.handleServiceMode)
	mux.HandleFunc("/v1/state", c.handleState)
	return mux
}

// Reasons of kiosk_exporter_app_posts_rejected_total.
const (
	rejectInvalid      = "invalid"
	rejectUnauthorized = "unauthorized"
	rejectTooLarge     = "too_large"
	rejectMethod       = "method"
	rejectContentType  = "content_type"
	rejectTooMany      = "too_many_series"
)

// refuse answers an error and counts it.
func (c *Collector) refuse(w http.ResponseWriter, status int, reason, format string, args ...any) {
	c.mu.Lock()
	c.rejected[reason]++
	c.mu.Unlock()
	http.Error(w, fmt.Sprintf(format, args...), status)
}

// allow checks the method and the token, answers the error itself and
// returns false.
func (c *Collector) allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if !slices.Contains(methods, r.Method) {
		w.Header().Set("Allow", strings.Join(methods, ", "))
		c.refuse(w, http.StatusMethodNotAllowed, rejectMethod, "%s: use %s", r.Method, strings.Join(methods, " or "))
		return false
	}
	if c.cfg.Token != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(c.cfg.Token)) != 1 {
			c.refuse(w, http.StatusUnauthorized, rejectUnauthorized, "send the endpoint's token as Authorization: Bearer TOKEN")
			return false
		}
	}
	return true
}

// decode checks the content type and size and decodes the body strictly
// into v: one JSON value, no unknown fields. It answers the error itself
// and returns false.
func (c *Collector) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	// No Content-Type is taken as JSON; a wrong one is refused, as it means
	// the poster sends something else (curl -d without -H sends a form).
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			c.refuse(w, http.StatusUnsupportedMediaType, rejectContentType, "Content-Type %q: send application/json", ct)
			return false
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, int64(c.cfg.MaxBodyBytes)))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("more than one value in the body")
			var tooBig *http.MaxBytesError
			if errors.As(terr, &tooBig) {
				err = terr
			}
		}
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			c.refuse(w, http.StatusRequestEntityTooLarge, rejectTooLarge, "body over %d bytes (max_body_bytes): post fewer events at a time", int64(c.cfg.MaxBodyBytes))
			return false
		}
		c.refuse(w, http.StatusBadRequest, rejectInvalid, "invalid JSON: %v", err)
		return false
	}
	return true
}

func (c *Collector) handleEvents(w http.ResponseWriter, r *http.Request) {
	if !c.allow(w, r, http.MethodPost) {
		return
	}
	var body eventsBody
	if !c.decode(w, r, &body) {
		return
	}
	events, prefix, err := body.events()
	if err != nil {
		c.refuse(w, http.StatusBadRequest, rejectInvalid, "%v", err)
		return
	}
	for i := range events {
		err := events[i].validate()
		if err == nil {
			err = c.checkConfigured(&events[i])
		}
		if err != nil {
			c.refuse(w, http.StatusBadRequest, rejectInvalid, "%s%v", prefix(i), err)
			return
		}
	}
	c.mu.Lock()
	if err := c.checkCardinalityLocked(events); err != nil {
		c.rejected[rejectTooMany]++
		c.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	now := c.now()
	for i := range events {
		c.applyLocked(&events[i], now)
	}
	c.accepted += float64(len(events))
	c.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// checkConfigured refuses a device event whose kind contradicts the
// configuration: the kind label of a configured device does not change.
func (c *Collector) checkConfigured(e *Event) error {
	if e.Type != EventDevice {
		return nil
	}
	if kind, ok := c.configured[e.Device]; ok && kind != e.Kind {
		return fmt.Errorf("kind: %q, but device %q is configured as %s", e.Kind, e.Device, kind)
	}
	return nil
}

// checkCardinalityLocked refuses a batch that would take pages, services,
// devices or receipt printers past the limit.
func (c *Collector) checkCardinalityLocked(events []Event) error {
	newPages, newServices, newDevices, newPrinters := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, e := range events {
		if e.Page != "" && c.pages[e.Page] == nil {
			newPages[e.Page] = true
		}
		if _, known := c.transactions[e.Service]; e.Service != "" && !known {
			newServices[e.Service] = true
		}
		if e.Type == EventDevice && c.devices[e.Device] == nil {
			newDevices[e.Device] = true
		}
		if _, known := c.receipt[e.Printer]; e.Type == EventReceiptPaper && !known {
			newPrinters[e.Printer] = true
		}
	}
	limit := c.cfg.MaxLabelValues
	switch {
	case len(c.pages)+len(newPages) > limit:
		return fmt.Errorf("too many distinct pages (limit %d): the page label must name a page, not carry an id", limit)
	case len(c.transactions)+len(newServices) > limit:
		return fmt.Errorf("too many distinct services (limit %d)", limit)
	case len(c.devices)+len(newDevices) > limit:
		return fmt.Errorf("too many distinct devices (limit %d)", limit)
	case len(c.receipt)+len(newPrinters) > limit:
		return fmt.Errorf("too many distinct receipt printers (limit %d)", limit)
	}
	return nil
}

// applyLocked applies a valid event. Counters count on arrival and
// liveness is timed by now, the exporter's clock, never the poster's.
func (c *Collector) applyLocked(e *Event, now time.Time) {
	page := func() *pageStats {
		p := c.pages[e.Page]
		if p == nil {
			p = &pageStats{buckets: make([]uint64, len(catalog.PageLoadBuckets)), errors: map[string]float64{}}
			c.pages[e.Page] = p
		}
		return p
	}
	switch e.Type {
	case EventPageLoad:
		p := page()
		for i, le := range catalog.PageLoadBuckets {
			if *e.Seconds <= le {
				p.buckets[i]++
			}
		}
		p.count++
		p.sum += *e.Seconds
	case EventRequest:
		page().requests++
	case EventError:
		page().errors[e.Kind]++
	case EventTransaction:
		c.transactions[e.Service]++
	case EventHeartbeat:
		c.heartbeat = now
	case EventAlive:
		c.alive = now
	case EventRestart:
		c.restarts[e.Reason]++
	case EventDevice:
		d := c.devices[e.Device]
		if d == nil {
			d = &deviceState{}
			c.devices[e.Device] = d
		}
		d.kind, d.state, d.code, d.seen = e.Kind, e.State, e.Code, now
	case EventReceiptPaper:
		c.receipt[e.Printer] = e.State
	}
}

// State is what GET /v1/state answers: what the collector holds, for
// debugging on site.
type State struct {
	ServiceMode   ServiceMode   `json:"service_mode"`
	LastHeartbeat time.Time     `json:"last_heartbeat,omitzero"`
	LastAlive     time.Time     `json:"last_alive,omitzero"`
	Devices       []DeviceState `json:"devices"`
	// Series are the series Collect reports now, flat as Prometheus
	// exposes them: {"name": ..., "value": ..., label: value...}.
	Series []map[string]any `json:"series"`
}

// DeviceState is one device of State.
type DeviceState struct {
	Name       string    `json:"name"`
	Kind       string    `json:"kind"`
	Configured bool      `json:"configured"`
	Posted     string    `json:"posted_state,omitempty"` // as last posted; Series has the verdict
	Code       string    `json:"code,omitempty"`
	LastReport time.Time `json:"last_report,omitzero"`
}

func (c *Collector) handleState(w http.ResponseWriter, r *http.Request) {
	if !c.allow(w, r, http.MethodGet) {
		return
	}
	st := State{Devices: []DeviceState{}, Series: []map[string]any{}}
	c.mu.Lock()
	st.ServiceMode, st.LastHeartbeat, st.LastAlive = c.service, c.heartbeat, c.alive
	for _, name := range sortedKeys(c.devices) {
		d := c.devices[name]
		_, configured := c.configured[name]
		st.Devices = append(st.Devices, DeviceState{Name: name, Kind: d.kind, Configured: configured, Posted: d.state, Code: d.code, LastReport: d.seen})
	}
	c.mu.Unlock()
	s := &exporter.Snapshot{}
	c.Collect(r.Context(), s)
	s.Each(func(name string, labels []exporter.Label, v float64) {
		m := map[string]any{"name": name, "value": v}
		for _, l := range labels {
			m[l.Name] = l.Value
		}
		st.Series = append(st.Series, m)
	})
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(st)
}

// Collect implements exporter.Collector.
func (c *Collector) Collect(_ context.Context, s *exporter.Snapshot) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for _, name := range sortedKeys(c.pages) {
		p := c.pages[name]
		s.AddHistogram("kiosk_app_page_load_seconds", slices.Clone(p.buckets), p.count, p.sum, name)
		s.Add("kiosk_app_requests_total", p.requests, name)
		for _, kind := range sortedKeys(p.errors) {
			s.Add("kiosk_app_errors_total", p.errors[kind], name, kind)
		}
	}
	for _, svc := range sortedKeys(c.transactions) {
		s.Add("kiosk_app_transactions_total", c.transactions[svc], svc)
	}
	for _, r := range restartReasons {
		s.Add("kiosk_app_restarts_total", c.restarts[r], r)
	}
	// The process is up while it says so ("alive", from a thread that a
	// frozen UI does not stop); an application that only sends UI
	// heartbeats is up while they come. A frozen or blue screen is then a
	// stale heartbeat with the process up.
	timeout := time.Duration(c.cfg.HeartbeatTimeout)
	up := !c.alive.IsZero() && now.Sub(c.alive) <= timeout
	if c.alive.IsZero() {
		up = !c.heartbeat.IsZero() && now.Sub(c.heartbeat) <= timeout
	}
	s.AddBool("kiosk_app_up", up)
	if !c.heartbeat.IsZero() {
		s.Add("kiosk_app_heartbeat_age_seconds", max(now.Sub(c.heartbeat).Seconds(), 0))
	}
	for _, name := range sortedKeys(c.devices) {
		d := c.devices[name]
		state := d.state
		if d.seen.IsZero() || now.Sub(d.seen) > time.Duration(c.cfg.DeviceTimeout) {
			state = catalog.StateNotResponding // the middleware stopped answering for it
		}
		s.AddState("kiosk_peripheral_state", state, name, d.kind)
		if d.code != "" && state != catalog.StateNotResponding {
			s.Add("kiosk_peripheral_error", 1, name, d.kind, d.code)
		}
	}
	for _, printer := range sortedKeys(c.receipt) {
		s.AddState("kiosk_receipt_paper_state", c.receipt[printer], printer)
	}
	s.AddBool("kiosk_service_mode", c.service.On)
	if c.service.On {
		s.Add("kiosk_service_mode_since_timestamp_seconds", float64(c.service.Since.Unix()))
	}
	s.Add("kiosk_exporter_app_events_total", c.accepted)
	for _, reason := range sortedKeys(c.rejected) {
		s.Add("kiosk_exporter_app_posts_rejected_total", c.rejected[reason], reason)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
