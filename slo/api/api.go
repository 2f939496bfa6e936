// Package api serves the incident ledger over HTTP: incidents and their
// evidence timelines as JSON, faults reported by people, and the lifecycle
// events engineers and managers record. Every route needs a token of the
// right role (package access); the token's name is recorded as the actor.
// Ledger errors map to status codes here, in one place.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kioskmon/kioskmon/slo/access"
	"github.com/kioskmon/kioskmon/slo/ledger"
)

// Handler serves /api/v1/incidents.
type Handler struct {
	Ledger *ledger.Ledger
	Access *access.Store
	// Describe fills in what a person's report of fault on kiosk opens:
	// the kiosk's site, district and provider from the inventory, the
	// fault's category and its severity for that provider. Its error names
	// what is unknown.
	Describe func(kiosk, fault string) (ledger.OpenRequest, error)
	// Severities are the levels an incident may be regraded to.
	Severities []string
	// Denied counts refused requests by reason, if not nil.
	Denied func(reason string)
}

// Register adds the routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/incidents", h.Access.Require(access.Viewer, h.Denied, http.HandlerFunc(h.list)))
	mux.Handle("GET /api/v1/incidents/{id}", h.Access.Require(access.Viewer, h.Denied, http.HandlerFunc(h.show)))
	mux.Handle("POST /api/v1/incidents", h.Access.Require(access.Engineer, h.Denied, http.HandlerFunc(h.report)))
	mux.Handle("POST /api/v1/incidents/{id}/events", h.Access.Require(access.Engineer, h.Denied, http.HandlerFunc(h.record)))
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
	case errors.Is(err, errForbidden):
		status = http.StatusForbidden
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"status": "error", "error": err.Error()})
}

var (
	errBadRequest = errors.New("bad request")
	errForbidden  = errors.New("forbidden")
)

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

// maxBody bounds a request's JSON body.
const maxBody = 64 << 10

func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: request body: %v", errBadRequest, err)
	}
	return nil
}

// ReportRequest is a fault reported by a person (POST /api/v1/incidents).
type ReportRequest struct {
	Kiosk   string `json:"kiosk"`
	Fault   string `json:"fault"`
	Channel string `json:"channel"`
	// At is when the fault was noticed; default now.
	At time.Time `json:"at,omitzero"`
}

// report serves POST /api/v1/incidents: 201 with a new incident, 200 with
// the open incident of the same kiosk and fault the report was added to.
func (h *Handler) report(w http.ResponseWriter, r *http.Request) {
	var req ReportRequest
	if err := decode(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Kiosk == "" || req.Fault == "" || req.Channel == "" {
		writeError(w, fmt.Errorf("%w: kiosk, fault and channel are required (fault: an id from kioskmon rules list; channel: one of %s)",
			errBadRequest, strings.Join(ledger.Channels, ", ")))
		return
	}
	open, err := h.Describe(req.Kiosk, req.Fault)
	if err != nil {
		writeError(w, fmt.Errorf("%w: %v", errBadRequest, err))
		return
	}
	id, _ := access.FromContext(r.Context())
	open.Source, open.Channel, open.Actor, open.At = "person", req.Channel, id.Name, req.At
	if open.At.IsZero() {
		open.At = time.Now().UTC()
	}
	if open.At.After(time.Now().Add(5 * time.Minute)) {
		writeError(w, fmt.Errorf("%w: at %s is in the future", errBadRequest, open.At.Format(time.RFC3339)))
		return
	}
	inc, created, err := h.Ledger.OpenIncident(r.Context(), open)
	if err != nil {
		writeError(w, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]any{"incident": inc, "created": created})
}

// EventRequest is a lifecycle event (POST /api/v1/incidents/{id}/events).
type EventRequest struct {
	Kind string `json:"kind"`
	// At is when it happened; default now.
	At               time.Time `json:"at,omitzero"`
	CommittedArrival time.Time `json:"committed_arrival,omitzero"`
	Reason           string    `json:"reason,omitempty"`
	Approver         string    `json:"approver,omitempty"`
	Severity         string    `json:"severity,omitempty"`
	Satisfaction     int       `json:"satisfaction,omitempty"`
	Note             string    `json:"note,omitempty"`
}

// recordable are the kinds people record; the others are the system's.
var recordable = []string{ledger.KindAcknowledged, ledger.KindDispatched, ledger.KindArrived, ledger.KindSpare,
	ledger.KindPaused, ledger.KindResumed, ledger.KindSeverity, ledger.KindResolved, ledger.KindClosed}

// needsManager says whether an event is a manager's decision: exempting an
// incident from its clocks, or regrading it, changes what the provider is
// measured against.
func needsManager(req EventRequest) bool {
	return req.Kind == ledger.KindSeverity || (req.Kind == ledger.KindPaused && req.Reason == ledger.PauseForceMajeure)
}

// record serves POST /api/v1/incidents/{id}/events.
func (h *Handler) record(w http.ResponseWriter, r *http.Request) {
	incident, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, fmt.Errorf("%w: incident id %q is not a number", errBadRequest, r.PathValue("id")))
		return
	}
	var req EventRequest
	if err := decode(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	if !slices.Contains(recordable, req.Kind) {
		writeError(w, fmt.Errorf("%w: kind %q: record one of %s", errBadRequest, req.Kind, strings.Join(recordable, ", ")))
		return
	}
	id, _ := access.FromContext(r.Context())
	if needsManager(req) {
		if id.Role < access.Manager {
			if h.Denied != nil {
				h.Denied("forbidden")
			}
			writeError(w, fmt.Errorf("%w: %s %s is a manager's decision; token %q has role %s", errForbidden, req.Kind, req.Reason, id.Name, id.Role))
			return
		}
		if req.Approver == "" {
			req.Approver = id.Name
		}
	}
	if req.Kind == ledger.KindSeverity && !slices.Contains(h.Severities, req.Severity) {
		writeError(w, fmt.Errorf("%w: severity %q is not one of %s", errBadRequest, req.Severity, strings.Join(h.Severities, ", ")))
		return
	}
	e := ledger.Event{Kind: req.Kind, At: req.At, Actor: id.Name, Source: "api", Data: ledger.EventData{
		CommittedArrival: req.CommittedArrival, Reason: req.Reason, Approver: req.Approver, Severity: req.Severity,
		Satisfaction: req.Satisfaction, Note: req.Note}}
	if req.Kind == ledger.KindArrived {
		e.Data.Proof = ledger.ProofAPI
	}
	e, err = h.Ledger.Record(r.Context(), incident, e)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"event": e})
}
