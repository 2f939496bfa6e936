package ingest

import (
	"fmt"
	"net/http"
	"strings"
)

// reason is why a request or some of its samples were refused. Each has a
// counter kioskmon_ingest_rejected_total{reason="..."} and an HTTP status.
type reason uint8

const (
	reasonUnauthorized reason = iota
	reasonMethodNotAllowed
	reasonBodyTooLarge
	reasonUnsupportedMediaType
	reasonMalformed
	reasonMissingMetricName
	reasonInvalidName
	reasonTooManyLabels
	reasonLabelNameTooLong
	reasonLabelValueTooLong
	reasonTimestampInFuture
	reasonTimestampTooOld
	reasonRateLimited
	reasonSeriesLimit
	numReasons
)

var reasonNames = [numReasons]string{
	reasonUnauthorized:         "unauthorized",
	reasonMethodNotAllowed:     "method_not_allowed",
	reasonBodyTooLarge:         "body_too_large",
	reasonUnsupportedMediaType: "unsupported_media_type",
	reasonMalformed:            "malformed",
	reasonMissingMetricName:    "missing_metric_name",
	reasonInvalidName:          "invalid_name",
	reasonTooManyLabels:        "too_many_labels",
	reasonLabelNameTooLong:     "label_name_too_long",
	reasonLabelValueTooLong:    "label_value_too_long",
	reasonTimestampInFuture:    "timestamp_in_future",
	reasonTimestampTooOld:      "timestamp_too_old",
	reasonRateLimited:          "rate_limited",
	reasonSeriesLimit:          "series_limit",
}

func (r reason) String() string { return reasonNames[r] }

func (r reason) status() int {
	switch r {
	case reasonUnauthorized:
		return http.StatusUnauthorized
	case reasonMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case reasonBodyTooLarge:
		return http.StatusRequestEntityTooLarge
	case reasonUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case reasonRateLimited, reasonSeriesLimit:
		return http.StatusTooManyRequests
	default:
		return http.StatusBadRequest
	}
}

// requestError refuses a whole request.
type requestError struct {
	reason reason
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func refuse(r reason, format string, args ...any) *requestError {
	return &requestError{reason: r, msg: fmt.Sprintf(format, args...)}
}

// tally counts the samples of one request refused by reason, keeping the first
// message of each reason as its example.
type tally struct {
	samples [numReasons]int
	example [numReasons]string
	total   int
}

func (t *tally) reset() { *t = tally{} }

func (t *tally) add(r reason, n int, example func() string) {
	if n == 0 {
		return
	}
	if t.example[r] == "" && example != nil {
		t.example[r] = example()
	}
	t.samples[r] += n
	t.total += n
}

// status is the reply's status when samples were refused: 429 when a limit of
// the kiosk was hit (the client should slow down and retry), else 400 (the
// client should not retry what it sent).
func (t *tally) status() int {
	if t.samples[reasonRateLimited] > 0 || t.samples[reasonSeriesLimit] > 0 {
		return http.StatusTooManyRequests
	}
	return http.StatusBadRequest
}

// message tells how many samples were kept and refused, and why.
func (t *tally) message(kiosk string, accepted int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "kiosk %q: accepted %d samples, rejected %d:", kiosk, accepted, t.total)
	for r := range numReasons {
		if t.samples[r] == 0 {
			continue
		}
		fmt.Fprintf(&b, " %s=%d (e.g. %s);", reason(r), t.samples[r], t.example[r])
	}
	return strings.TrimSuffix(b.String(), ";")
}
