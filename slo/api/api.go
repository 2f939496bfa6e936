// Package api serves the incident ledger over HTTP: incidents and their
// evidence timelines, as JSON. Ledger errors map to status codes here, in
// one place.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/kioskmon/kioskmon/slo/ledger"
)

// Handler serves /api/v1/incidents.
type Handler struct {
	Ledger *ledger.Ledger
}

// Register adds the routes to mux, each wrapped by wrap (authentication).
func (h *Handler) Register(mux *http.ServeMux, wrap func(http.Handler) http.Handler) {
	mux.Handle("GET /api/v1/incidents", wrap(http.HandlerFunc(h.list)))
	mux.Handle("GET /api/v1/incidents/{id}", wrap(http.HandlerFunc(h.show)))
}

func writeJSON(w http.ResponseWriter, status int, data any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": data})
}

// writeError answers err with its status: the one place ledger errors
// become HTTP.
func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ledger.ErrConflict):
		status = http.StatusConflict
	case errors.Is(err, ledger.ErrInvalid), errors.Is(err, errBadRequest):
		status = http.StatusBadRequest
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"status": "error", "error": err.Error()})
}

var errBadRequest = errors.New("bad request")

func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Unix(0, int64(f*1e9)).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s %q: give RFC 3339 or Unix seconds", errBadRequest, name, s)
	}
	return t, nil
}

// list serves GET /api/v1/incidents?kiosk=&site=&district=&provider=&fault=
// &severity=&state=&open=true&from=&to=&limit= (newest first).
func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := ledger.Filter{Kiosk: q.Get("kiosk"), Site: q.Get("site"), District: q.Get("district"), Provider: q.Get("provider"),
		Fault: q.Get("fault"), Severity: q.Get("severity"), State: q.Get("state"), Open: q.Get("open") == "true"}
	var err error
	if f.From, err = parseTime("from", q.Get("from")); err != nil {
		writeError(w, err)
		return
	}
	if f.To, err = parseTime("to", q.Get("to")); err != nil {
		writeError(w, err)
		return
	}
	if s := q.Get("limit"); s != "" {
		if f.Limit, err = strconv.Atoi(s); err != nil || f.Limit < 1 || f.Limit > 100000 {
			writeError(w, fmt.Errorf("%w: limit %q: give 1 to 100000", errBadRequest, s))
			return
		}
	}
	incs, err := h.Ledger.Incidents(r.Context(), f)
	if err != nil {
		writeError(w, err)
		return
	}
	if incs == nil {
		incs = []ledger.Incident{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"incidents": incs})
}

// show serves GET /api/v1/incidents/{id}: the incident and its events.
func (h *Handler) show(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, fmt.Errorf("%w: incident id %q is not a number", errBadRequest, r.PathValue("id")))
		return
	}
	inc, events, err := h.Ledger.Incident(r.Context(), id)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"incident": inc, "events": events})
}
