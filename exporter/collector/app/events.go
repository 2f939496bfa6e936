package app

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/kioskmon/kioskmon/exporter/catalog"
)

// Batch is the body of POST /v1/events. A body may also be one Event on
// its own.
type Batch struct {
	Events []Event `json:"events"`
}

// Event types.
const (
	EventPageLoad     = "page_load"
	EventRequest      = "request"
	EventError        = "error"
	EventTransaction  = "transaction"
	EventHeartbeat    = "heartbeat"
	EventAlive        = "alive"
	EventRestart      = "restart"
	EventDevice       = "device"
	EventReceiptPaper = "receipt_paper"
)

var (
	eventTypes = []string{EventPageLoad, EventRequest, EventError, EventTransaction, EventHeartbeat, EventAlive, EventRestart, EventDevice, EventReceiptPaper}
	// The kinds and reasons of the catalogue's Help of kiosk_app_errors_total
	// and kiosk_app_restarts_total.
	errorKinds     = []string{"http_4xx", "http_5xx", "timeout", "no_data", "wrong_data", "client"}
	restartReasons = []string{"crash", "hang", "update", "manual"}
	// The middleware reports what it sees; not_responding is the exporter's
	// own verdict when the middleware stops reporting.
	postedDeviceStates = []string{catalog.StateOK, catalog.StateDegraded, catalog.StateFault, catalog.StateAbsent}
)

// Limits of event fields that are not label names.
const (
	maxCode        = 32
	maxPageSeconds = 3600
)

// Event is one thing the application or the middleware reports. Which
// fields it needs depends on Type (see API.md).
type Event struct {
	Type    string   `json:"type"`
	Page    string   `json:"page,omitempty"`
	Seconds *float64 `json:"seconds,omitempty"`
	Kind    string   `json:"kind,omitempty"`
	Service string   `json:"service,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	Device  string   `json:"device,omitempty"`
	State   string   `json:"state,omitempty"`
	Code    string   `json:"code,omitempty"`
	Printer string   `json:"printer,omitempty"`
	// Time is when the poster saw it (RFC 3339), for its own logs. It must
	// parse but is not used: counters count on arrival and liveness is
	// timed by the exporter's clock, as a kiosk application's clock may
	// be wrong.
	Time string `json:"time,omitempty"`
}

// eventsBody decodes either form of POST /v1/events strictly: a batch, or
// one event on its own (its fields promoted from the embedded Event).
type eventsBody struct {
	Events *[]Event `json:"events"`
	Event
}

// events returns the events of the body, and how to name the i-th in an
// error ("events[3]." in a batch, nothing for a single event).
func (b *eventsBody) events() ([]Event, func(int) string, error) {
	single := b.Event != Event{}
	switch {
	case b.Events != nil && single:
		return nil, nil, errors.New(`a body is {"events": [...]} or one event, not both`)
	case b.Events != nil && len(*b.Events) > 0:
		return *b.Events, func(i int) string { return fmt.Sprintf("events[%d].", i) }, nil
	case single:
		return []Event{b.Event}, func(int) string { return "" }, nil
	}
	return nil, nil, errors.New(`no events: post {"events": [{"type": "heartbeat"}, ...]} or one event`)
}

// validate names the first bad field ("state: ...").
func (e *Event) validate() error {
	oneOf := func(field, v string, set []string) error {
		if v == "" {
			return fmt.Errorf("%s: required for type %s (one of %s)", field, e.Type, strings.Join(set, ", "))
		}
		if !slices.Contains(set, v) {
			return fmt.Errorf("%s: %q is not one of %s", field, v, strings.Join(set, ", "))
		}
		return nil
	}
	label := func(field, v string) error {
		if v == "" {
			return fmt.Errorf("%s: required for type %s", field, e.Type)
		}
		if !validLabel(v) {
			return fmt.Errorf("%s: %q is not a name (%s)", field, v, labelRule)
		}
		return nil
	}
	if e.Time != "" {
		if _, err := time.Parse(time.RFC3339, e.Time); err != nil {
			return fmt.Errorf("time: %q is not RFC 3339 (2026-11-24T10:00:00+08:00)", e.Time)
		}
	}
	switch e.Type {
	case EventPageLoad:
		if err := label("page", e.Page); err != nil {
			return err
		}
		if e.Seconds == nil {
			return errors.New("seconds: required for type page_load")
		}
		// JSON has no NaN or Inf; the check is for whoever builds an Event
		// in Go.
		if s := *e.Seconds; math.IsNaN(s) || s < 0 || s > maxPageSeconds {
			return fmt.Errorf("seconds: %g is not between 0 and %d", s, maxPageSeconds)
		}
	case EventRequest:
		return label("page", e.Page)
	case EventError:
		if err := label("page", e.Page); err != nil {
			return err
		}
		return oneOf("kind", e.Kind, errorKinds)
	case EventTransaction:
		return label("service", e.Service)
	case EventHeartbeat, EventAlive:
	case EventRestart:
		return oneOf("reason", e.Reason, restartReasons)
	case EventDevice:
		if err := label("device", e.Device); err != nil {
			return err
		}
		if err := oneOf("kind", e.Kind, catalog.PeripheralKinds); err != nil {
			return err
		}
		if err := oneOf("state", e.State, postedDeviceStates); err != nil {
			return err
		}
		if !validCode(e.Code) {
			return fmt.Errorf("code: %q is not a vendor error code (up to %d printable characters, no quotes or backslashes)", e.Code, maxCode)
		}
	case EventReceiptPaper:
		if err := label("printer", e.Printer); err != nil {
			return err
		}
		return oneOf("state", e.State, catalog.ReceiptStates)
	case "":
		return fmt.Errorf("type: required (one of %s)", strings.Join(eventTypes, ", "))
	default:
		return fmt.Errorf("type: %q is not one of %s", e.Type, strings.Join(eventTypes, ", "))
	}
	return nil
}

// validCode accepts a vendor error code: "" (none), or a short printable
// string ("0x41", "E-102", "纸将尽").
func validCode(s string) bool {
	if len(s) > maxCode {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || r == '"' || r == '\\' || r == unicode.ReplacementChar {
			return false
		}
	}
	return true
}
