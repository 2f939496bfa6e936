package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Formats a report is written in.
var Formats = []string{"html", "pdf", "csv"}

// Write renders m in format (html, pdf or csv) and lang (zh or en) to w and
// returns the content type. chromium is the browser PDF printing uses (""
// finds it).
func Write(ctx context.Context, w io.Writer, m *Month, format, lang, chromium string) (string, error) {
	if lang != "zh" && lang != "en" {
		return "", fmt.Errorf("%w: lang %q: give zh or en", ErrBadRequest, lang)
	}
	switch format {
	case "html":
		return "text/html; charset=utf-8", m.HTML(w, lang)
	case "csv":
		return "text/csv; charset=utf-8", m.CSV(w, lang)
	case "pdf":
		var page bytes.Buffer
		if err := m.HTML(&page, lang); err != nil {
			return "", err
		}
		pdf, err := PDF(ctx, chromium, page.Bytes())
		if err != nil {
			return "", err
		}
		_, err = w.Write(pdf)
		return "application/pdf", err
	}
	return "", fmt.Errorf("%w: format %q: give html, pdf or csv", ErrBadRequest, format)
}

// Handler serves GET /api/v1/sla/report?month=YYYY-MM&format=html|pdf|csv&lang=zh|en.
type Handler struct {
	// Sources returns what the report is built from, as of the request.
	Sources func() (Sources, error)
	// Chromium prints PDFs; "" finds it.
	Chromium string
	// Timeout bounds building and rendering one report. Default 2m.
	Timeout time.Duration
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	month, format, lang := q.Get("month"), q.Get("format"), q.Get("lang")
	if format == "" {
		format = "html"
	}
	if lang == "" {
		lang = "zh"
	}
	if month == "" {
		http.Error(w, "kioskmon: month is required: ?month=YYYY-MM", http.StatusBadRequest)
		return
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	src, err := h.Sources()
	if err != nil {
		http.Error(w, "kioskmon: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	m, err := Build(ctx, src, month, time.Now())
	if err != nil {
		http.Error(w, "kioskmon: report: "+err.Error(), statusOf(err))
		return
	}
	var body bytes.Buffer
	ctype, err := Write(ctx, &body, m, format, lang, h.Chromium)
	if err != nil {
		http.Error(w, "kioskmon: report: "+err.Error(), statusOf(err))
		return
	}
	w.Header().Set("Content-Type", ctype)
	if format != "html" {
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="kioskmon-sla-%s-%s.%s"`, month, lang, format))
	}
	w.Write(body.Bytes())
}

func statusOf(err error) int {
	if errors.Is(err, ErrBadRequest) {
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}
