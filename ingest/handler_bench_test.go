package ingest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"

	"github.com/kioskmon/kioskmon/ingest/sparse"
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

// benchConditions are rule conditions on four of kioskSeries' five metric
// names, so four series in five are matched against them; as in a fleet, a
// few samples in ten thousand meet one and are copied.
var benchConditions = []string{
	`max by (kiosk) (kiosk_peripheral_up == 0)`,
	`max by (kiosk) (kiosk_network_rtt_seconds > 240)`,
	`max by (kiosk) (kiosk_host_cpu_ratio > 0.9e9)`,
	`min by (kiosk) (kiosk_paper_level_ratio < 0) unless on (kiosk) (max by (kiosk) (kiosk_app_requests_total{x="y"} < 0))`,
}

// BenchmarkIngest measures the handler alone (auth, decode, validation,
// labels, limits), with storage replaced by a discarding writer; "copies"
// also copies the samples of benchConditions (ingest/sparse).
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
			for _, copies := range []bool{false, true} {
				name := shape.name + "/" + bb.proto
				if copies {
					name += "/copies"
				}
				b.Run(name, func(b *testing.B) {
					fx := newFixture(b, Config{KioskRateLimit: -1, KioskSeriesLimit: -1})
					fx.h.writer = discardWriter{}
					if copies {
						conds, err := sparse.Open(filepath.Join(b.TempDir(), "c.json"), benchConditions, time.Time{})
						if err != nil {
							b.Fatal(err)
						}
						fx.h.CopyConditions(conds)
					}
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
}
