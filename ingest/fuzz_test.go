package ingest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/golang/snappy"
)

// fuzzEndpoint posts each input to path through the handler in-process and
// checks what holds for any input: a known status with a message, and stored
// samples that carry the authenticated kiosk's labels and nobody else's.
func fuzzEndpoint(f *testing.F, path string, encode func([]byte) []byte, headers ...string) {
	fx := newFixture(f, Config{MaxLabels: 10, KioskRateLimit: -1})
	mux := http.NewServeMux()
	fx.h.Register(mux)
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(encode(body)))
		req.Header.Set("Authorization", "Bearer "+tokenK1)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		switch rec.Code {
		case 204, 400, 413, 415, 429:
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.String())
		}
		if rec.Code != 204 && rec.Body.Len() == 0 {
			t.Fatalf("status %d without a message", rec.Code)
		}
		for _, s := range fx.writer.take() {
			if !hasOwnLabels(s) || foreignKiosk.MatchString(s) {
				t.Fatalf("stored %q without exactly the kiosk's labels", s)
			}
		}
	})
}

var (
	ownLabels = []*regexp.Regexp{
		regexp.MustCompile(`[{,]kiosk=k1[,}]`), regexp.MustCompile(`[{,]site=hall-1[,}]`),
		regexp.MustCompile(`[{,]district=gulou[,}]`), regexp.MustCompile(`[{,]provider=acme[,}]`),
	}
	foreignKiosk = regexp.MustCompile(`[{,]kiosk=k2[,}]`)
)

func hasOwnLabels(s string) bool {
	for _, re := range ownLabels {
		if !re.MatchString(s) {
			return false
		}
	}
	return true
}

func FuzzRemoteWrite(f *testing.F) {
	f.Add(remoteWriteProto(ts("kiosk_up", now, 1, "tray", "1"), ts("x", now, 2, "kiosk", "k2")))
	f.Add(remoteWriteProto(ts("bad-name", now, 1), ts("y", now+int64(3600e3), 1)))
	f.Add([]byte{0x0a, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0x61})
	fuzzEndpoint(f, "/api/v1/write", func(b []byte) []byte { return snappy.Encode(nil, b) })
}

func FuzzInflux(f *testing.F) {
	f.Add([]byte(fmt.Sprintf("kiosk_ups,ups=main,kiosk=k2 charge=0.9,on=t,s=\"x\" %d\nbad\n", now)))
	f.Add([]byte("a\\ b,c\\,d=e\\=f v=1i,w=2u 1\n# comment\n"))
	fuzzEndpoint(f, "/write?precision=ms", func(b []byte) []byte { return b })
}

func FuzzPrometheusText(f *testing.F) {
	f.Add([]byte(fmt.Sprintf("# TYPE a gauge\na{b=\"c\",kiosk=\"k2\"} 1 %d\nb 2\n", now)))
	f.Add([]byte("x{y=\"\\\"z\"} NaN\nbad{ 1\n"))
	fuzzEndpoint(f, "/api/v1/import/prometheus", func(b []byte) []byte { return b })
}
