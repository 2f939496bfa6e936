package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/kioskmon/kioskmon/exporter/catalog"
)

// Batch is the body of POST /v1/events.
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
	eventTypes     = []string{EventPageLoad, EventRequest, EventError, EventTransaction, EventHeartbeat, EventAlive, EventRestart, EventDevice, EventReceiptPaper}
	errorKinds     = []string{"http_4xx", "http_5xx", "timeout", "no_data", "wrong_data", "client"}
	restartReasons = []string{"crash", "hang", "update", "manual"}
	// The middleware reports what it sees; not_responding is the exporter's
	// own verdict when the middleware stops reporting.
	postedDeviceStates = []string{catalog.StateOK, catalog.StateDegraded, catalog.StateFault, catalog.StateAbsent}
)

// Event is one thing the application or the middleware reports.
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
			return fmt.Errorf("%s: %q is not a name (letters, digits, _ . - /; up to 64)", field, v)
		}
		return nil
	}
	switch e.Type {
	case EventPageLoad:
		if err := label("page", e.Page); err != nil {
			return err
		}
		if e.Seconds == nil {
			return fmt.Errorf("seconds: required for type page_load")
		}
		if s := *e.Seconds; math.IsNaN(s) || s < 0 || s > 3600 {
			return fmt.Errorf("seconds: %g is not between 0 and 3600", s)
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
		if len(e.Code) > 32 || strings.ContainsAny(e.Code, "\"\\\n") {
			return fmt.Errorf("code: %q is not a vendor error code (up to 32 characters)", e.Code)
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

// PostServiceMode switches service mode through a running exporter's
// endpoint at baseURL (kiosk-exporter service-mode on|off).
func PostServiceMode(ctx context.Context, baseURL, token string, on bool, engineer, reason string) (ServiceMode, error) {
	body, _ := json.Marshal(map[string]any{"on": on, "engineer": engineer, "reason": reason})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(baseURL, "/")+"/v1/service-mode", bytes.NewReader(body))
	if err != nil {
		return ServiceMode{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ServiceMode{}, fmt.Errorf("reach the kiosk exporter at %s: %w (is it running, with the app collector on?)", baseURL, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return ServiceMode{}, fmt.Errorf("kiosk exporter refused: %s: %s", resp.Status, strings.TrimSpace(string(data)))
	}
	var sm ServiceMode
	if err := json.Unmarshal(data, &sm); err != nil {
		return ServiceMode{}, fmt.Errorf("kiosk exporter answered %q: %w", data, err)
	}
	return sm, nil
}
