package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kioskmon/kioskmon/slo/ledger"
)

func TestIncidentsAPI(t *testing.T) {
	l, err := ledger.Open(context.Background(), "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	at := time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC)
	for _, k := range []string{"k1", "k2"} {
		if _, _, err := l.OpenIncident(context.Background(), ledger.OpenRequest{Kiosk: k, Site: "s1", District: "d1", Provider: "p" + k,
			Fault: "hw.paper_out", Category: "hardware", Severity: "moderate", Source: "alert", Channel: "system", Actor: "kioskmon", At: at}); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	(&Handler{Ledger: l}).Register(mux, func(h http.Handler) http.Handler { return h })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	f := func(path string, wantStatus int, wantBody string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		if resp.StatusCode != wantStatus || !strings.Contains(b.String(), wantBody) {
			t.Errorf("GET %s: %d %s, want %d with %q", path, resp.StatusCode, b.String(), wantStatus, wantBody)
		}
	}
	f("/api/v1/incidents?provider=pk2", 200, `"kiosk":"k2"`)
	f("/api/v1/incidents?provider=pk9", 200, `"incidents":[]`)
	f("/api/v1/incidents?from=2026-11-04T00:00:00Z", 200, `"incidents":[]`)
	f("/api/v1/incidents?from=monday", 400, `from \"monday\": give RFC 3339 or Unix seconds`)
	f("/api/v1/incidents?limit=0", 400, `limit \"0\": give 1 to 100000`)
	f("/api/v1/incidents/1", 200, `"kind":"opened"`)
	f("/api/v1/incidents/7", 404, "incident 7: no such incident")
	f("/api/v1/incidents/x", 400, `incident id \"x\" is not a number`)
}
