package inspection

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"
)

func writeJSON(w http.ResponseWriter, status int, data any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": data})
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"status": "error", "errorType": "bad_data", "error": fmt.Sprintf(format, args...)})
}

// parseTime reads an RFC 3339 time or Unix seconds, as the Prometheus API does.
func parseTime(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Unix(0, int64(f*1e9)).UTC(), nil
	}
	return time.Parse(time.RFC3339, s)
}

// RecordsHandler serves GET /api/v1/inspections: the records of [from, to)
// (default: the last interval), filtered by kiosk, site, district, provider
// and result, the newest limit of them (default 1000), newest first.
func (in *Inspector) RecordsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			writeError(w, http.StatusMethodNotAllowed, "%s: use GET", r.Method)
			return
		}
		q := r.URL.Query()
		now := time.Now()
		to, err := parseTime(q.Get("to"), now)
		if err != nil {
			writeError(w, http.StatusBadRequest, "to %q: give RFC 3339 or Unix seconds", q.Get("to"))
			return
		}
		from, err := parseTime(q.Get("from"), to.Add(-in.cfg.Interval))
		if err != nil {
			writeError(w, http.StatusBadRequest, "from %q: give RFC 3339 or Unix seconds", q.Get("from"))
			return
		}
		if !from.Before(to) {
			writeError(w, http.StatusBadRequest, "from %s is not before to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
			return
		}
		limit := 1000
		if s := q.Get("limit"); s != "" {
			if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 100000 {
				writeError(w, http.StatusBadRequest, "limit %q: give 1 to 100000", s)
				return
			}
		}
		if res := q.Get("result"); res != "" && res != Pass && res != Fail && res != Unreachable {
			writeError(w, http.StatusBadRequest, "result %q is not one of pass, fail, unreachable", res)
			return
		}
		match := func(rec Record) bool {
			for k, v := range map[string]string{"kiosk": rec.Kiosk, "site": rec.Site, "district": rec.District, "provider": rec.Provider, "result": rec.Result} {
				if want := q.Get(k); want != "" && want != v {
					return false
				}
			}
			return true
		}
		// Keep the newest limit: a ring over the scan, which runs oldest first.
		ring := make([]Record, 0, min(limit, 1024))
		next, total := 0, 0
		if _, err := in.ledger.Scan(from, to, func(rec Record) bool {
			if !match(rec) {
				return true
			}
			total++
			if len(ring) < limit {
				ring = append(ring, rec)
			} else {
				ring[next] = rec
				next = (next + 1) % limit
			}
			return true
		}); err != nil {
			writeError(w, http.StatusInternalServerError, "read the inspection ledger: %v", err)
			return
		}
		out := append(append([]Record{}, ring[next:]...), ring[:next]...)
		sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
		writeJSON(w, http.StatusOK, map[string]any{"records": out, "matched": total, "truncated": total > len(out)})
	})
}

// Coverage is how much of the fleet was inspected within the interval.
type Coverage struct {
	At        time.Time `json:"at"`
	Interval  string    `json:"interval"`
	Kiosks    int       `json:"kiosks"`
	Inspected int       `json:"inspected"`
	Ratio     float64   `json:"ratio"`
	// ByProvider and ByDistrict: [kiosks, inspected].
	ByProvider map[string][2]int `json:"by_provider"`
	ByDistrict map[string][2]int `json:"by_district"`
	// Overdue lists the kiosks not inspected within the interval (the
	// first 1000 by id) with their last inspection, if any.
	Overdue []OverdueKiosk `json:"overdue"`
}

// OverdueKiosk is a kiosk not inspected within the interval.
type OverdueKiosk struct {
	Kiosk string    `json:"kiosk"`
	Last  time.Time `json:"last,omitzero"`
}

// Coverage computes the fleet's inspection coverage at at.
func (in *Inspector) Coverage(at time.Time) Coverage {
	last := in.LastInspections()
	c := Coverage{At: at.UTC(), Interval: in.cfg.Interval.String(), ByProvider: map[string][2]int{}, ByDistrict: map[string][2]int{},
		Overdue: []OverdueKiosk{}}
	for _, k := range in.cfg.Kiosks() {
		c.Kiosks++
		p, d := c.ByProvider[k.Provider], c.ByDistrict[k.District]
		p[0]++
		d[0]++
		l := last[k.ID]
		if !l.IsZero() && !l.After(at) && at.Sub(l) <= in.cfg.Interval {
			c.Inspected++
			p[1]++
			d[1]++
		} else {
			c.Overdue = append(c.Overdue, OverdueKiosk{Kiosk: k.ID, Last: l})
		}
		c.ByProvider[k.Provider], c.ByDistrict[k.District] = p, d
	}
	if c.Kiosks > 0 {
		c.Ratio = float64(c.Inspected) / float64(c.Kiosks)
	}
	sort.Slice(c.Overdue, func(i, j int) bool { return c.Overdue[i].Kiosk < c.Overdue[j].Kiosk })
	c.Overdue = c.Overdue[:min(len(c.Overdue), 1000)]
	return c
}

// CoverageHandler serves GET /api/v1/inspections/coverage[?at=].
func (in *Inspector) CoverageHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at, err := parseTime(r.URL.Query().Get("at"), time.Now())
		if err != nil {
			writeError(w, http.StatusBadRequest, "at %q: give RFC 3339 or Unix seconds", r.URL.Query().Get("at"))
			return
		}
		writeJSON(w, http.StatusOK, in.Coverage(at))
	})
}

// RunHandler serves POST /api/v1/inspections/run?kiosk=ID (repeatable): an
// inspection now, due or not, as after a repair.
func (in *Inspector) RunHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeError(w, http.StatusMethodNotAllowed, "%s: use POST", r.Method)
			return
		}
		ids := r.URL.Query()["kiosk"]
		if len(ids) == 0 || len(ids) > 1000 {
			writeError(w, http.StatusBadRequest, "name 1 to 1000 kiosks: ?kiosk=ID&kiosk=ID2")
			return
		}
		recs, err := in.InspectNow(r.Context(), ids, time.Now())
		switch {
		case errors.Is(err, ErrUnknownKiosk):
			writeError(w, http.StatusNotFound, "%v", err)
		case err != nil:
			writeError(w, http.StatusServiceUnavailable, "inspection failed: %v; try again (kiosks inspected before the failure keep their records)", err)
		default:
			writeJSON(w, http.StatusOK, map[string]any{"records": recs})
		}
	})
}
