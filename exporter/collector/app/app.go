// Package app is the exporter's local endpoint: the kiosk application and
// the vendor's device middleware post what only they know (page load times,
// errors, heartbeats, transactions, device states) as JSON, and an engineer
// on site switches service mode. See API.md for the protocol.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/exporter/catalog"
	"github.com/kioskmon/kioskmon/internal/atomicfile"
	"github.com/kioskmon/kioskmon/yamlfile"
)

// Config configures the endpoint.
type Config struct {
	// Listen address. Default 127.0.0.1:9183; loopback only unless AllowRemote.
	Listen      string `yaml:"listen"`
	AllowRemote bool   `yaml:"allow_remote"`
	// Token, if set, must come as "Authorization: Bearer TOKEN".
	Token string `yaml:"token"`
	// HeartbeatTimeout: without a heartbeat for this long the application
	// counts as down. Default 30s.
	HeartbeatTimeout yamlfile.Duration `yaml:"heartbeat_timeout"`
	// Devices expected on this kiosk. One the middleware has not reported
	// on for DeviceTimeout is not_responding.
	Devices       []Device          `yaml:"devices"`
	DeviceTimeout yamlfile.Duration `yaml:"device_timeout"`
	// StateFile keeps service mode across restarts.
	StateFile string `yaml:"state_file"`
	// MaxBodyBytes bounds a post. Default 64KiB.
	MaxBodyBytes yamlfile.ByteSize `yaml:"max_body_bytes"`
	// MaxLabelValues bounds the distinct pages, services and devices, so a
	// bug in the application cannot flood kioskmon with series. Default 200.
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
		host, _, err := net.SplitHostPort(c.Listen)
		if err != nil {
			return yamlfile.Fieldf("listen", "%q is not host:port", c.Listen)
		}
		if ip := net.ParseIP(host); !c.AllowRemote && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return yamlfile.Fieldf("listen", "%q is not a loopback address: the endpoint trusts what it is told; set allow_remote: true (and a token) to open it", c.Listen)
		}
	}
	names := map[string]bool{}
	for i, d := range c.Devices {
		if !validLabel(d.Name) {
			return yamlfile.Fieldf(fmt.Sprintf("devices.%d.name", i), "%q is not a device name (letters, digits, _ . -; up to 64)", d.Name)
		}
		if names[d.Name] {
			return yamlfile.Fieldf(fmt.Sprintf("devices.%d.name", i), "%q is listed twice", d.Name)
		}
		names[d.Name] = true
		if !slices.Contains(catalog.PeripheralKinds, d.Kind) {
			return yamlfile.Fieldf(fmt.Sprintf("devices.%d.kind", i), "%q is not one of %s", d.Kind, strings.Join(catalog.PeripheralKinds, ", "))
		}
	}
	return nil
}

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

// ServiceMode is the state an engineer switches on site.
type ServiceMode struct {
	On       bool      `json:"on"`
	Since    time.Time `json:"since,omitzero"`
	Engineer string    `json:"engineer,omitempty"`
	Reason   string    `json:"reason,omitempty"`
}

type pageStats struct {
	requests float64
	buckets  []uint64
	count    uint64
	sum      float64
	errors   map[string]float64
}

type deviceState struct {
	kind, state, code string
	seen              time.Time // zero: configured, never reported
}

// Collector holds what was posted.
type Collector struct {
	cfg    Config
	logger log.Logger
	now    func() time.Time
	addr   chan string

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

// New returns the collector, with service mode read from cfg.StateFile.
func New(cfg Config, logger log.Logger) (*Collector, error) {
	cfg.defaults()
	c := &Collector{cfg: cfg, logger: logger, now: time.Now, addr: make(chan string, 1),
		pages: map[string]*pageStats{}, transactions: map[string]float64{}, restarts: map[string]float64{},
		devices: map[string]*deviceState{}, receipt: map[string]string{}, rejected: map[string]float64{}}
	for _, d := range cfg.Devices {
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

// Addr returns the address Run listens on, once it does.
func (c *Collector) Addr() string {
	a := <-c.addr
	c.addr <- a
	return a
}

// Run implements exporter.Runner: it serves the endpoint until ctx ends.
func (c *Collector) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", c.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s for the kiosk application: %w", c.cfg.Listen, err)
	}
	c.addr <- ln.Addr().String()
	srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	level.Info(c.logger).Log("msg", "local endpoint for the kiosk application", "url", "http://"+ln.Addr().String()+"/v1/events")
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
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

// refuse answers an error and counts it.
func (c *Collector) refuse(w http.ResponseWriter, status int, reason, format string, args ...any) {
	c.mu.Lock()
	c.rejected[reason]++
	c.mu.Unlock()
	http.Error(w, fmt.Sprintf(format, args...), status)
}

// admit checks method, token, content type and size, and decodes the body
// strictly into v. It answers the error itself and returns false.
func (c *Collector) admit(w http.ResponseWriter, r *http.Request, v any) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		c.refuse(w, http.StatusMethodNotAllowed, "method", "%s: use POST", r.Method)
		return false
	}
	if c.cfg.Token != "" && r.Header.Get("Authorization") != "Bearer "+c.cfg.Token {
		c.refuse(w, http.StatusUnauthorized, "unauthorized", "send the endpoint's token as Authorization: Bearer TOKEN")
		return false
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		c.refuse(w, http.StatusUnsupportedMediaType, "content_type", "Content-Type %q: send application/json", ct)
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, int64(c.cfg.MaxBodyBytes)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			c.refuse(w, http.StatusRequestEntityTooLarge, "too_large", "body over %s: post fewer events at a time", c.cfg.MaxBodyBytes)
			return false
		}
		c.refuse(w, http.StatusBadRequest, "invalid", "invalid JSON: %v", err)
		return false
	}
	if dec.More() {
		c.refuse(w, http.StatusBadRequest, "invalid", "invalid JSON: more than one value in the body")
		return false
	}
	return true
}

func (c *Collector) handleEvents(w http.ResponseWriter, r *http.Request) {
	var batch Batch
	if !c.admit(w, r, &batch) {
		return
	}
	if len(batch.Events) == 0 {
		c.refuse(w, http.StatusBadRequest, "invalid", `no events: post {"events": [{"type": "heartbeat"}, ...]}`)
		return
	}
	for i := range batch.Events {
		if err := batch.Events[i].validate(); err != nil {
			c.refuse(w, http.StatusBadRequest, "invalid", "events[%d].%v", i, err)
			return
		}
	}
	c.mu.Lock()
	if err := c.checkCardinalityLocked(batch.Events); err != nil {
		c.rejected["too_many_series"]++
		c.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	now := c.now()
	for i := range batch.Events {
		c.applyLocked(&batch.Events[i], now)
	}
	c.accepted += float64(len(batch.Events))
	c.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// checkCardinalityLocked refuses a batch that would take pages, services or
// devices past the limit.
func (c *Collector) checkCardinalityLocked(events []Event) error {
	newPages, newServices, newDevices := map[string]bool{}, map[string]bool{}, map[string]bool{}
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
	}
	max := c.cfg.MaxLabelValues
	switch {
	case len(c.pages)+len(newPages) > max:
		return fmt.Errorf("too many distinct pages (limit %d): the page label must name a page, not carry an id", max)
	case len(c.transactions)+len(newServices) > max:
		return fmt.Errorf("too many distinct services (limit %d)", max)
	case len(c.devices)+len(newDevices) > max:
		return fmt.Errorf("too many distinct devices (limit %d)", max)
	}
	return nil
}

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

func (c *Collector) handleServiceMode(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		c.mu.Lock()
		sm := c.service
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(sm)
		return
	}
	var req struct {
		On       *bool  `json:"on"`
		Engineer string `json:"engineer"`
		Reason   string `json:"reason"`
	}
	if !c.admit(w, r, &req) {
		return
	}
	if req.On == nil {
		c.refuse(w, http.StatusBadRequest, "invalid", `on: required: {"on": true, "engineer": "name", "reason": "..."}`)
		return
	}
	if *req.On && strings.TrimSpace(req.Engineer) == "" {
		c.refuse(w, http.StatusBadRequest, "invalid", "engineer: required when switching service mode on: the arrival on site is recorded")
		return
	}
	if len(req.Engineer) > 128 || len(req.Reason) > 512 {
		c.refuse(w, http.StatusBadRequest, "invalid", "engineer (128) or reason (512 bytes) too long")
		return
	}
	sm, err := c.SetServiceMode(*req.On, req.Engineer, req.Reason)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(sm)
}

// SetServiceMode switches service mode and persists it before returning.
// Switching it on while on keeps the first arrival time.
func (c *Collector) SetServiceMode(on bool, engineer, reason string) (ServiceMode, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sm := c.service
	switch {
	case on && !sm.On:
		sm = ServiceMode{On: true, Since: c.now().UTC().Truncate(time.Second), Engineer: engineer, Reason: reason}
	case on:
		sm.Engineer, sm.Reason = engineer, reason
	default:
		sm = ServiceMode{On: false, Since: c.now().UTC().Truncate(time.Second), Engineer: engineer, Reason: reason}
	}
	if c.cfg.StateFile != "" {
		data, err := json.Marshal(sm)
		if err == nil {
			err = atomicfile.Write(c.cfg.StateFile, data, 0o600)
		}
		if err != nil {
			return c.service, fmt.Errorf("persist service mode: %w", err)
		}
	}
	c.service = sm
	level.Info(c.logger).Log("msg", "service mode", "on", sm.On, "engineer", engineer, "reason", reason)
	return sm, nil
}

func (c *Collector) handleState(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		c.refuse(w, http.StatusMethodNotAllowed, "method", "%s: use GET", r.Method)
		return
	}
	s := &exporter.Snapshot{}
	c.Collect(r.Context(), s)
	out := []map[string]any{}
	s.Each(func(name string, labels []exporter.Label, v float64) {
		m := map[string]any{"name": name, "value": v}
		for _, l := range labels {
			m[l.Name] = l.Value
		}
		out = append(out, m)
	})
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
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
		s.Add("kiosk_app_heartbeat_age_seconds", now.Sub(c.heartbeat).Seconds())
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
