package ingest

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
	promtext "github.com/VictoriaMetrics/VictoriaMetrics/lib/protoparser/prometheus"
	"github.com/golang/snappy"

	"github.com/kioskmon/kioskmon/ingest/lineprotocol"
	"github.com/kioskmon/kioskmon/ingest/store"
)

// protoState is the pooled parser state of the protocols.
type protoState struct {
	remoteWrite prompb.WriteRequestUnmarshaler
	line        lineprotocol.Parser
	name        []byte
	labels      []store.Label
	text        promtext.Rows
	textErrs    int
	textErr     string
}

// remoteWrite decodes a Prometheus remote write 1.0 request: a snappy block
// holding a protobuf WriteRequest.
func (h *Handler) remoteWrite(r *http.Request, ctx *requestCtx) *requestError {
	if ct := r.Header.Get("Content-Type"); strings.Contains(ct, "io.prometheus.write.v2.Request") {
		return refuse(reasonUnsupportedMediaType, "remote write 2.0 (%s) is not supported; send remote write 1.0 (in Prometheus: protobuf_message: prometheus.WriteRequest)", ct)
	}
	body := ctx.body.Bytes()
	switch enc := strings.ToLower(r.Header.Get("Content-Encoding")); enc {
	case "", "snappy":
		// The decoded length is declared in the block header: check it before
		// allocating anything for it.
		n, err := snappy.DecodedLen(body)
		if err != nil {
			return refuse(reasonMalformed, "body is not snappy-compressed protobuf (remote write 1.0): %s", err)
		}
		if int64(n) > h.cfg.MaxDecodedBytes {
			return refuse(reasonBodyTooLarge, "snappy block declares %d decoded bytes, more than the limit of %d; send smaller batches (Prometheus: queue_config.max_samples_per_send)", n, h.cfg.MaxDecodedBytes)
		}
		if cap(ctx.decoded) < n {
			ctx.decoded = make([]byte, n)
		}
		decoded, err := snappy.Decode(ctx.decoded[:n], body)
		if err != nil {
			return refuse(reasonMalformed, "cannot snappy-decode body: %s", err)
		}
		body = decoded
	default:
		return refuse(reasonUnsupportedMediaType, "Content-Encoding %q is not supported for remote write; use snappy", enc)
	}
	wr, err := ctx.proto.remoteWrite.UnmarshalProtobuf(body)
	if err != nil {
		return refuse(reasonMalformed, "cannot decode remote write protobuf: %s", err)
	}
	b := &ctx.batch
	for i := range wr.Timeseries {
		ts := &wr.Timeseries[i]
		b.series(ts.Labels)
		for _, s := range ts.Samples {
			b.sample(s.Timestamp, s.Value)
		}
	}
	return nil
}

// influxV1 serves InfluxDB 1.x /write: precision is n, ns, u, ms, s, m or h.
func (h *Handler) influxV1(r *http.Request, ctx *requestCtx) *requestError {
	return h.influx(r, ctx, r.URL.Query().Get("precision"))
}

// influxV2 serves InfluxDB 2.x /api/v2/write: precision is ns, us, ms or s.
func (h *Handler) influxV2(r *http.Request, ctx *requestCtx) *requestError {
	return h.influx(r, ctx, r.URL.Query().Get("precision"))
}

// influx stores each numeric field of a line as a series named
// measurement_field, or measurement alone for a field named "value" (as
// Telegraf's Prometheus outputs do); tags become labels.
func (h *Handler) influx(r *http.Request, ctx *requestCtx, precision string) *requestError {
	toMs, ok := precisionToMs(precision)
	if !ok {
		return refuse(reasonMalformed, "precision %q is not one of ns, n, us, u, ms, s, m, h", precision)
	}
	body, rerr := h.decodedBody(r, ctx)
	if rerr != nil {
		return rerr
	}
	b := &ctx.batch
	ps := &ctx.proto
	p := &ps.line
	p.Reset(body)
	for p.Next() {
		if err := p.Err(); err != nil {
			line := p.LineNumber()
			b.tally.add(reasonMalformed, 1, func() string { return fmt.Sprintf("line %d: %s", line, err) })
			continue
		}
		l := p.Line()
		tsMs := b.nowMs
		if l.HasTimestamp {
			tsMs = toMs(l.Timestamp)
		}
		ps.name = appendSanitized(ps.name[:0], l.Measurement)
		measurementLen := len(ps.name)
		for _, f := range l.Fields {
			ps.name = ps.name[:measurementLen]
			if string(f.Key) != "value" {
				ps.name = append(ps.name, '_')
				ps.name = appendSanitized(ps.name, f.Key)
			}
			ps.labels = append(ps.labels[:0], store.Label{Name: "__name__", Value: unsafeString(ps.name)})
			for _, t := range l.Tags {
				ps.labels = append(ps.labels, store.Label{Name: unsafeString(t.Key), Value: unsafeString(t.Value)})
			}
			b.series(ps.labels)
			b.sample(tsMs, f.Value)
		}
	}
	return nil
}

// precisionToMs returns a converter from the precision's unit to milliseconds.
func precisionToMs(precision string) (func(int64) int64, bool) {
	switch precision {
	case "", "n", "ns":
		return func(t int64) int64 { return t / 1e6 }, true
	case "u", "us":
		return func(t int64) int64 { return t / 1e3 }, true
	case "ms":
		return func(t int64) int64 { return t }, true
	case "s":
		return func(t int64) int64 { return t * 1e3 }, true
	case "m":
		return func(t int64) int64 { return t * 60e3 }, true
	case "h":
		return func(t int64) int64 { return t * 3600e3 }, true
	}
	return nil, false
}

// appendSanitized appends s with every byte a Prometheus name cannot hold
// replaced by '_', as Telegraf's Prometheus serializer does.
func appendSanitized(dst, s []byte) []byte {
	start := len(dst)
	dst = append(dst, s...)
	for i := start; i < len(dst); i++ {
		if c := dst[i]; !(c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && i > 0) {
			dst[i] = '_'
		}
	}
	return dst
}

// prometheusText decodes Prometheus text exposition format (what a target
// serves on /metrics), pushed as a body. Samples without a timestamp get the
// time of arrival.
func (h *Handler) prometheusText(r *http.Request, ctx *requestCtx) *requestError {
	body, rerr := h.decodedBody(r, ctx)
	if rerr != nil {
		return rerr
	}
	ps := &ctx.proto
	ps.textErrs, ps.textErr = 0, ""
	ps.text.UnmarshalWithErrLogger(unsafeString(body), func(msg string) {
		if ps.textErrs == 0 {
			ps.textErr = msg
		}
		ps.textErrs++
	})
	b := &ctx.batch
	if ps.textErrs > 0 {
		msg := ps.textErr
		b.tally.add(reasonMalformed, ps.textErrs, func() string { return msg })
	}
	for i := range ps.text.Rows {
		row := &ps.text.Rows[i]
		ps.labels = append(ps.labels[:0], store.Label{Name: "__name__", Value: row.Metric})
		for _, t := range row.Tags {
			ps.labels = append(ps.labels, store.Label{Name: t.Key, Value: t.Value})
		}
		b.series(ps.labels)
		ts := row.Timestamp
		if ts == 0 {
			ts = b.nowMs
		}
		b.sample(ts, row.Value)
	}
	return nil
}
