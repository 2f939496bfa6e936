package ingest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/golang/snappy"

	"github.com/kioskmon/kioskmon/ingest/sparse"
)

// fuzzEndpoint posts each input to path through the handler in-process and
// checks what holds for any input: a known status with a message, and stored
// samples that carry the authenticated kiosk's labels and nobody else's.
//
// Rule conditions on the seeds' names are copied too: each copy is of a
// sample stored in the same request, with its labels, time and value, or a
// staleness marker at one of its times.
func fuzzEndpoint(f *testing.F, path string, encode func([]byte) []byte, headers ...string) {
	fx := newFixture(f, Config{MaxLabels: 10, KioskRateLimit: -1})
	conds, err := sparse.Open(filepath.Join(f.TempDir(), "c.json"), []string{
		`max by (kiosk) (kiosk_up == 1 or x > 0 or a{b="c"} >= 1)`,
		`max by (kiosk) (abs(kiosk_ups_charge) < 1) unless on (kiosk) (max by (kiosk) (y{z=~"w|"} <= 0))`,
	}, time.Time{})
	if err != nil {
		f.Fatal(err)
	}
	fx.h.CopyConditions(conds)
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
		stored := fx.writer.take()
		originals := map[string]bool{}
		for _, s := range stored {
			if !hasOwnLabels(s) || foreignKiosk.MatchString(s) {
				t.Fatalf("stored %q without exactly the kiosk's labels", s)
			}
			if m := storedSample.FindStringSubmatch(s); m != nil && m[1] == "" {
				originals[m[2]+m[3]+" "+m[4]+" "+m[5]] = true
				originals[m[2]+m[3]+" NaN "+m[5]] = true
			}
		}
		for _, s := range stored {
			if m := storedSample.FindStringSubmatch(s); m != nil && m[1] != "" && !originals[m[1]+m[3]+" "+m[4]+" "+m[5]] {
				t.Fatalf("copy %q of no sample stored: %q", s, stored)
			}
		}
	})
}

var (
	// a copy's original name, or a sample's name; labels; value; time: as
	// recordingWriter writes.
	storedSample = regexp.MustCompile(`^(?:kioskmon:(.+):when_[0-9a-f]{8}|(.*?))(\{.*\}) (\S+) @(-?\d+)$`)
	ownLabels    = []*regexp.Regexp{
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
	f.Add(remoteWriteProto(ts("kiosk_up", now, 1), ts("kiosk_up", now+1, 0), ts("kioskmon:kiosk_up:when_1ef88d31", now, 1)))
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
	f.Add([]byte("x 1 1000\nx 0 2000\nx 3 1500\nkiosk_ups_charge -0.5\n"))
	fuzzEndpoint(f, "/api/v1/import/prometheus", func(b []byte) []byte { return b })
}
