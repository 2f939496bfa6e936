package server

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestReadTokenGuardsQueries: with a read token configured, a query needs
// it as a Bearer token or as the Basic auth password (what Grafana sends).
func TestReadTokenGuardsQueries(t *testing.T) {
	sum := sha256.Sum256([]byte("s3cret"))
	h := newReadAuth(hex.EncodeToString(sum[:])).wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, c := range []struct {
		name string
		set  func(*http.Request)
		want int
	}{
		{"none", func(*http.Request) {}, http.StatusUnauthorized},
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer s3cret") }, http.StatusOK},
		{"basic", func(r *http.Request) { r.SetBasicAuth("grafana", "s3cret") }, http.StatusOK},
		{"wrong", func(r *http.Request) { r.Header.Set("Authorization", "Bearer s3cre") }, http.StatusUnauthorized},
	} {
		req := httptest.NewRequest("GET", "/api/v1/query", nil)
		c.set(req)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s: %d, want %d", c.name, rec.Code, c.want)
		}
	}
	// Without a token configured the API is open.
	rec := httptest.NewRecorder()
	newReadAuth("").wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("no token configured: %d", rec.Code)
	}
}
