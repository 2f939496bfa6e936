// Package ingest receives samples from kiosks over Prometheus remote write,
// Influx line protocol and Prometheus text format, authenticates each kiosk
// against the inventory, enforces limits, stamps the inventory's labels on
// every series and hands the accepted samples to a durable Writer.
package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/kioskmon/kioskmon/ingest/inventory"
	"github.com/kioskmon/kioskmon/ingest/sparse"
	"github.com/kioskmon/kioskmon/ingest/store"
)

// Writer stores accepted samples. Write hands rows to the storage and returns
// a function that waits until they are durable; they are acknowledged when
// that returns nil. Write must not keep rows after returning.
type Writer interface {
	Write(rows []store.Row) (wait func() error, err error)
}

// Directory gives the current kiosk inventory.
type Directory interface {
	Index() *inventory.Index
}

// Config holds the ingest limits. Zero values mean defaults.
type Config struct {
	// MaxRequestBytes bounds a request body as sent. Default 16 MiB.
	MaxRequestBytes int64
	// MaxDecodedBytes bounds a body after decompression. Default 64 MiB.
	MaxDecodedBytes int64
	// MaxLabels bounds the labels a client sends per series, the metric name
	// included. Default 40.
	MaxLabels int
	// MaxLabelNameLength and MaxLabelValueLength bound label names and values
	// in bytes. Defaults 128 and 1024.
	MaxLabelNameLength  int
	MaxLabelValueLength int
	// MaxFutureSkew is how far ahead of the server clock a timestamp may be.
	// Default 10m.
	MaxFutureSkew time.Duration
	// Retention: samples older than now-Retention are refused. Default 90 days.
	Retention time.Duration
	// KioskRateLimit is each kiosk's sustained rate in samples/s; negative
	// means unlimited. Default 20000.
	KioskRateLimit float64
	// KioskRateBurst is the bucket size in samples. Default 60 s of the rate.
	KioskRateBurst float64
	// KioskSeriesLimit is how many distinct series a kiosk may write per
	// KioskSeriesWindow; negative means unlimited. Default 20000 per hour.
	KioskSeriesLimit  int
	KioskSeriesWindow time.Duration
	// MaxConcurrent bounds requests being decoded and stored at once; the
	// others wait up to MaxQueueDuration, then get 503. Default 2 per CPU.
	MaxConcurrent    int
	MaxQueueDuration time.Duration
}

func (c *Config) defaults() {
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxRequestBytes, 16<<20)
	def(&c.MaxDecodedBytes, 64<<20)
	if c.MaxLabels == 0 {
		c.MaxLabels = 40
	}
	if c.MaxLabelNameLength == 0 {
		c.MaxLabelNameLength = 128
	}
	if c.MaxLabelValueLength == 0 {
		c.MaxLabelValueLength = 1024
	}
	if c.MaxFutureSkew == 0 {
		c.MaxFutureSkew = 10 * time.Minute
	}
	if c.Retention == 0 {
		c.Retention = 90 * 24 * time.Hour
	}
	if c.KioskRateLimit == 0 {
		c.KioskRateLimit = 20000
	}
	if c.KioskRateBurst == 0 {
		c.KioskRateBurst = 60 * c.KioskRateLimit
	}
	if c.KioskSeriesLimit == 0 {
		c.KioskSeriesLimit = 20000
	}
	if c.KioskSeriesWindow == 0 {
		c.KioskSeriesWindow = time.Hour
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = 2 * runtime.GOMAXPROCS(0)
	}
	if c.MaxQueueDuration == 0 {
		c.MaxQueueDuration = 30 * time.Second
	}
}

// Validate names the first bad field.
func (c *Config) Validate() error {
	switch {
	case c.MaxRequestBytes < 1024:
		return fmt.Errorf("max request bytes %d is below 1 KiB", c.MaxRequestBytes)
	case c.MaxDecodedBytes < c.MaxRequestBytes:
		return fmt.Errorf("max decoded bytes %d is below max request bytes %d", c.MaxDecodedBytes, c.MaxRequestBytes)
	case c.MaxLabels < 2:
		return fmt.Errorf("max labels %d leaves no room for a metric name and a label", c.MaxLabels)
	case c.MaxLabelNameLength < 16 || c.MaxLabelValueLength < 16:
		return fmt.Errorf("label name and value limits (%d, %d) must be at least 16 bytes", c.MaxLabelNameLength, c.MaxLabelValueLength)
	case c.MaxFutureSkew < 0:
		return fmt.Errorf("max future skew %s is negative", c.MaxFutureSkew)
	case c.MaxConcurrent < 1:
		return fmt.Errorf("max concurrent %d is below 1", c.MaxConcurrent)
	case c.KioskSeriesWindow < time.Minute:
		return fmt.Errorf("series window %s is shorter than a minute", c.KioskSeriesWindow)
	}
	return nil
}

// Handler serves the write endpoints.
type Handler struct {
	cfg     Config
	kiosks  Directory
	writer  Writer
	logger  log.Logger
	limiter *limiter
	now     func() time.Time
	ctxPool sync.Pool
	slots   chan struct{}
	metrics *handlerMetrics

	conditions *sparse.Set
}

// CopyConditions makes the handler copy the samples that meet the rule
// conditions of set (see package sparse). Call it before serving.
func (h *Handler) CopyConditions(set *sparse.Set) { h.conditions = set }

type handlerMetrics struct {
	rejected        [numReasons]*metrics.Counter
	rejectedSamples [numReasons]*metrics.Counter
	requests        map[string]*metrics.Counter
	samples         map[string]*metrics.Counter
	duration        map[string]*metrics.Histogram
	writeErrors     *metrics.Counter
	queueTimeouts   *metrics.Counter
	copies          *metrics.Counter
}

// Protocols served, as they appear in the protocol label of self-metrics.
const (
	protoRemoteWrite = "remote_write"
	protoInflux      = "influx"
	protoPromText    = "prometheus_text"
)

func newHandlerMetrics(set *metrics.Set) *handlerMetrics {
	m := &handlerMetrics{
		requests: map[string]*metrics.Counter{},
		samples:  map[string]*metrics.Counter{},
		duration: map[string]*metrics.Histogram{},
	}
	for r := range numReasons {
		m.rejected[r] = set.NewCounter(fmt.Sprintf(`kioskmon_ingest_rejected_total{reason=%q}`, reason(r)))
		m.rejectedSamples[r] = set.NewCounter(fmt.Sprintf(`kioskmon_ingest_rejected_samples_total{reason=%q}`, reason(r)))
	}
	for _, p := range []string{protoRemoteWrite, protoInflux, protoPromText} {
		m.requests[p] = set.NewCounter(fmt.Sprintf(`kioskmon_ingest_requests_total{protocol=%q}`, p))
		m.samples[p] = set.NewCounter(fmt.Sprintf(`kioskmon_ingest_samples_total{protocol=%q}`, p))
		m.duration[p] = set.NewHistogram(fmt.Sprintf(`kioskmon_ingest_request_duration_seconds{protocol=%q}`, p))
	}
	m.writeErrors = set.NewCounter(`kioskmon_ingest_write_errors_total`)
	m.queueTimeouts = set.NewCounter(`kioskmon_ingest_queue_timeouts_total`)
	// Copies of samples that meet a rule condition, and staleness markers
	// that end them (ingest/sparse); not counted in samples_total.
	m.copies = set.NewCounter(`kioskmon_ingest_rule_condition_copies_total`)
	return m
}

// New returns a Handler. Its self-metrics are registered in set.
func New(cfg Config, kiosks Directory, writer Writer, set *metrics.Set, logger log.Logger) (*Handler, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ingest config: %w", err)
	}
	rate, burst := cfg.KioskRateLimit, cfg.KioskRateBurst
	if rate < 0 {
		rate = 0
	}
	series := max(cfg.KioskSeriesLimit, 0)
	h := &Handler{
		cfg:     cfg,
		kiosks:  kiosks,
		writer:  writer,
		logger:  logger,
		limiter: newLimiter(rate, burst, series, cfg.KioskSeriesWindow),
		now:     time.Now,
		slots:   make(chan struct{}, cfg.MaxConcurrent),
		metrics: newHandlerMetrics(set),
	}
	h.ctxPool.New = func() any { return &requestCtx{} }
	return h, nil
}

// Register adds the write endpoints to mux, at the paths Prometheus,
// VictoriaMetrics and InfluxDB use, so that existing clients work unchanged.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("/api/v1/write", h.endpoint(protoRemoteWrite, h.remoteWrite))
	mux.Handle("/write", h.endpoint(protoInflux, h.influxV1))
	mux.Handle("/api/v2/write", h.endpoint(protoInflux, h.influxV2))
	mux.Handle("/api/v1/import/prometheus", h.endpoint(protoPromText, h.prometheusText))
}

// requestCtx is the pooled per-request state.
type requestCtx struct {
	body    bytes.Buffer
	decoded []byte
	batch   batch
	proto   protoState
}

// decodeFunc parses body into ctx.batch. It returns a requestError for a body
// that cannot be read at all; bad lines or series are counted in the batch.
type decodeFunc func(r *http.Request, ctx *requestCtx) *requestError

func (h *Handler) endpoint(proto string, decode decodeFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.metrics.requests[proto].Inc()
		defer h.metrics.duration[proto].UpdateDuration(start)
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			h.replyRefused(w, r, proto, refuse(reasonMethodNotAllowed, "%s needs POST, not %s", r.URL.Path, r.Method))
			return
		}
		kiosk, rerr := h.authenticate(r)
		if rerr != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="kioskmon"`)
			h.replyRefused(w, r, proto, rerr)
			return
		}
		ctx := h.ctxPool.Get().(*requestCtx)
		if rerr := h.readBody(r, ctx); rerr != nil {
			h.ctxPool.Put(ctx)
			h.replyRefused(w, r, proto, rerr)
			return
		}
		// Decoding and storing are bounded to a few at a time, as the storage
		// wants: memory stays bounded under a burst of large requests.
		if !h.acquire(r.Context()) {
			h.ctxPool.Put(ctx)
			h.metrics.queueTimeouts.Inc()
			w.Header().Set("Retry-After", "5")
			http.Error(w, "kioskmon: too many writes in progress; retry later", http.StatusServiceUnavailable)
			return
		}
		status, msg, wait := h.process(w, r, proto, decode, kiosk, ctx)
		h.ctxPool.Put(ctx)
		<-h.slots
		// The rows are in storage; wait until the log has them on disk before
		// acknowledging, without holding a slot or the request's buffers.
		if wait != nil {
			if err := wait(); err != nil {
				h.metrics.writeErrors.Inc()
				level.Error(h.logger).Log("msg", "cannot make samples durable", "kiosk", kiosk.ID, "err", err)
				http.Error(w, "kioskmon: cannot store samples now, retry later: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		switch {
		case status == http.StatusNoContent:
			w.WriteHeader(status)
		case status == http.StatusServiceUnavailable:
			http.Error(w, msg, status)
		default:
			writeError(w, r, proto, status, msg)
		}
	})
}

// acquire takes a processing slot, waiting at most MaxQueueDuration.
func (h *Handler) acquire(ctx context.Context) bool {
	select {
	case h.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(h.cfg.MaxQueueDuration)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// process decodes the body in ctx, applies the limits and hands the accepted
// rows to the writer. It returns the reply's status and message, and the
// function that waits for durability (nil if nothing was written).
func (h *Handler) process(w http.ResponseWriter, r *http.Request, proto string, decode decodeFunc, kiosk *inventory.Kiosk, ctx *requestCtx) (int, string, func() error) {
	now := h.now()
	b := &ctx.batch
	b.reset(h, kiosk, now)
	k := h.limiter.get(kiosk.ID, now)
	b.budget = h.limiter.lockSeries(k, now)
	rerr := decode(r, ctx)
	b.budget.unlock()
	if rerr != nil {
		h.metrics.rejected[rerr.reason].Inc()
		return rerr.reason.status(), rerr.msg, nil
	}
	if len(b.rows) > 0 {
		if ok, wait := h.limiter.take(k, len(b.rows), now); !ok {
			b.refuseAll(reasonRateLimited, func() string {
				return fmt.Sprintf("kiosk %q exceeded its rate of %g samples/s; retry after %s", kiosk.ID, h.cfg.KioskRateLimit, wait)
			})
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())))
		}
	}
	rows := b.finish()
	var durable func() error
	if len(rows) > 0 {
		var err error
		durable, err = h.writer.Write(rows)
		if err != nil {
			h.metrics.writeErrors.Inc()
			level.Error(h.logger).Log("msg", "cannot store samples", "kiosk", kiosk.ID, "samples", len(rows), "err", err)
			// Nothing was acknowledged; the client should retry.
			return http.StatusServiceUnavailable, "kioskmon: cannot store samples now, retry later: " + err.Error(), nil
		}
		h.metrics.samples[proto].Add(len(rows) - b.copies)
		h.metrics.copies.Add(b.copies)
		if len(b.updates) > 0 {
			h.conditions.Commit(b.updates)
		}
	}
	if b.tally.total == 0 {
		return http.StatusNoContent, "", durable
	}
	for r := range numReasons {
		if n := b.tally.samples[r]; n > 0 {
			h.metrics.rejected[r].Inc()
			h.metrics.rejectedSamples[r].Add(n)
		}
	}
	msg := b.tally.message(kiosk.ID, len(rows)-b.copies)
	level.Debug(h.logger).Log("msg", "refused samples", "kiosk", kiosk.ID, "detail", msg)
	return b.tally.status(), msg, durable
}

func (h *Handler) replyRefused(w http.ResponseWriter, r *http.Request, proto string, e *requestError) {
	h.metrics.rejected[e.reason].Inc()
	writeError(w, r, proto, e.reason.status(), e.msg)
}

// writeError replies in the form each protocol's clients log: InfluxDB's JSON
// error objects for the Influx paths, plain text otherwise.
func writeError(w http.ResponseWriter, r *http.Request, proto string, status int, msg string) {
	msg = "kioskmon: " + msg
	if proto != protoInflux {
		http.Error(w, msg, status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Influxdb-Error", msg)
	w.WriteHeader(status)
	if r.URL.Path == "/api/v2/write" {
		code := "invalid"
		switch status {
		case http.StatusUnauthorized:
			code = "unauthorized"
		case http.StatusRequestEntityTooLarge:
			code = "request too large"
		case http.StatusTooManyRequests:
			code = "too many requests"
		}
		fmt.Fprintf(w, `{"code":%q,"message":%q}`+"\n", code, msg)
		return
	}
	fmt.Fprintf(w, `{"error":%q}`+"\n", msg)
}

// readBody reads the request body into ctx.body, refusing it past the limit
// before reading it whole.
func (h *Handler) readBody(r *http.Request, ctx *requestCtx) *requestError {
	limit := h.cfg.MaxRequestBytes
	if r.ContentLength > limit {
		return refuse(reasonBodyTooLarge, "request body of %d bytes is larger than the limit of %d bytes; send smaller batches", r.ContentLength, limit)
	}
	ctx.body.Reset()
	n, err := ctx.body.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return refuse(reasonMalformed, "cannot read request body: %s", err)
	}
	if n > limit {
		return refuse(reasonBodyTooLarge, "request body is larger than the limit of %d bytes; send smaller batches", limit)
	}
	return nil
}

// decodedBody returns the body, gunzipped when the client says so.
func (h *Handler) decodedBody(r *http.Request, ctx *requestCtx) ([]byte, *requestError) {
	switch enc := strings.ToLower(r.Header.Get("Content-Encoding")); enc {
	case "", "identity":
		return ctx.body.Bytes(), nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(ctx.body.Bytes()))
		if err != nil {
			return nil, refuse(reasonMalformed, "body says Content-Encoding: gzip but is not gzip: %s", err)
		}
		buf := bytes.NewBuffer(ctx.decoded[:0])
		n, err := buf.ReadFrom(io.LimitReader(zr, h.cfg.MaxDecodedBytes+1))
		ctx.decoded = buf.Bytes()
		if err != nil {
			return nil, refuse(reasonMalformed, "cannot gunzip body: %s", err)
		}
		if n > h.cfg.MaxDecodedBytes {
			return nil, refuse(reasonBodyTooLarge, "gunzipped body is larger than the limit of %d bytes; send smaller batches", h.cfg.MaxDecodedBytes)
		}
		return ctx.decoded, nil
	default:
		return nil, refuse(reasonUnsupportedMediaType, "Content-Encoding %q is not supported; use gzip or none", enc)
	}
}

// authenticate finds the kiosk whose token the request carries: Bearer or
// Token (InfluxDB v2) authorization, Basic auth with the kiosk id as user, or
// InfluxDB v1's u and p query parameters.
func (h *Handler) authenticate(r *http.Request) (*inventory.Kiosk, *requestError) {
	ix := h.kiosks.Index()
	auth := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(auth, " ")
	var (
		k  *inventory.Kiosk
		ok bool
		id string
	)
	switch {
	case strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "Token"):
		k, ok = ix.AuthenticateBearer(strings.TrimSpace(cred))
	case strings.EqualFold(scheme, "Basic"):
		var token string
		id, token, ok = r.BasicAuth()
		if ok {
			k, ok = ix.AuthenticateBasic(id, token)
		}
	case auth == "" && r.URL.Query().Get("u") != "":
		id = r.URL.Query().Get("u")
		k, ok = ix.AuthenticateBasic(id, r.URL.Query().Get("p"))
	default:
		return nil, refuse(reasonUnauthorized, "no kiosk credentials: send the kiosk's push token as a Bearer token, or Basic auth with the kiosk id as user and the token as password")
	}
	if !ok {
		if id != "" {
			return nil, refuse(reasonUnauthorized, "wrong credentials for kiosk %q: unknown kiosk id or wrong token (a new token is made by `kioskmon kiosks token`)", id)
		}
		return nil, refuse(reasonUnauthorized, "the token matches no kiosk in the inventory (a new token is made by `kioskmon kiosks token`)")
	}
	return k, nil
}

// ForgetRemovedKiosks drops limit state of kiosks not in the current inventory.
func (h *Handler) ForgetRemovedKiosks() {
	ix := h.kiosks.Index()
	h.limiter.forget(func(id string) bool { _, ok := ix.Kiosk(id); return ok })
}
