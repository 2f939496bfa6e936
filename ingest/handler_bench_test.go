package ingest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"

	"github.com/kioskmon/kioskmon/ingest/store"
)

type discardWriter struct{}

func (discardWriter) Write([]store.Row) (func() error, error) {
	return func() error { return nil }, nil
}

// kioskSeries returns n series shaped like a kiosk's: few metric names, a
// handful of labels each.
func kioskSeries(n, points int) []series {
	names := []string{"kiosk_paper_level_ratio", "kiosk_peripheral_up", "kiosk_network_rtt_seconds", "kiosk_app_requests_total", "kiosk_host_cpu_ratio"}
	out := make([]series, n)
	for i := range out {
		s := series{labels: []prompb.Label{{Name: "__name__", Value: names[i%len(names)]}, {Name: "instance", Value: "kiosk:9100"}, {Name: "job", Value: "kiosk"}, {Name: "device", Value: fmt.Sprintf("dev%d", i)}}}
		for p := range points {
			s.samples = append(s.samples, prompb.Sample{Timestamp: now - int64(points-p)*15000, Value: float64(i + p)})
		}
		out[i] = s
	}
	return out
}

// BenchmarkIngest measures the handler alone (auth, decode, validation,
// labels, limits), with storage replaced by a discarding writer.
func BenchmarkIngest(b *testing.B) {
	shapes := []struct {
		name           string
		series, points int
	}{{"live", 60, 1}, {"backlog", 200, 50}}
	for _, shape := range shapes {
		ss := kioskSeries(shape.series, shape.points)
		samples := shape.series * shape.points
		var text strings.Builder
		for _, s := range ss {
			for _, p := range s.samples {
				fmt.Fprintf(&text, "%s,device=%s,instance=kiosk:9100 value=%g %d\n", s.labels[0].Value, s.labels[3].Value, p.Value, p.Timestamp)
			}
		}
		bodies := []struct {
			proto, path string
			body        []byte
		}{
			{"remote_write", "/api/v1/write", remoteWriteBody(ss...)},
			{"influx", "/write?precision=ms", []byte(text.String())},
		}
		for _, bb := range bodies {
			b.Run(shape.name+"/"+bb.proto, func(b *testing.B) {
				fx := newFixture(b, Config{KioskRateLimit: -1, KioskSeriesLimit: -1})
				fx.h.writer = discardWriter{}
				mux := http.NewServeMux()
				fx.h.Register(mux)
				b.ReportAllocs()
				b.SetBytes(int64(len(bb.body)))
				for b.Loop() {
					req := httptest.NewRequest(http.MethodPost, bb.path, bytes.NewReader(bb.body))
					req.Header.Set("Authorization", "Bearer "+tokenK1)
					rec := httptest.NewRecorder()
					mux.ServeHTTP(rec, req)
					if rec.Code != 204 {
						b.Fatalf("%d %s", rec.Code, rec.Body)
					}
				}
				b.ReportMetric(float64(b.N*samples)/b.Elapsed().Seconds(), "samples/s")
			})
		}
	}
}
