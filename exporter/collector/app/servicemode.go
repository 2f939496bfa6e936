package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-kit/log/level"

	"github.com/kioskmon/kioskmon/internal/atomicfile"
)

// ServiceMode is the state an engineer switches on site.
type ServiceMode struct {
	On bool `json:"on"`
	// Since is when it was last switched on (while On), or off.
	Since    time.Time `json:"since,omitzero"`
	Engineer string    `json:"engineer,omitempty"`
	Reason   string    `json:"reason,omitempty"`
}

// ErrInvalidServiceMode is wrapped by SetServiceMode's errors about its
// arguments, as opposed to failures to persist.
var ErrInvalidServiceMode = errors.New("invalid service mode switch")

// Limits of the service mode's free text.
const (
	maxEngineer = 128
	maxReason   = 512
)

func (c *Collector) handleServiceMode(w http.ResponseWriter, r *http.Request) {
	if !c.allow(w, r, http.MethodGet, http.MethodPost) {
		return
	}
	if r.Method == http.MethodGet {
		c.mu.Lock()
		sm := c.service
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(sm)
		return
	}
	var req struct {
		On       *bool  `json:"on"`
		Engineer string `json:"engineer"`
		Reason   string `json:"reason"`
	}
	if !c.decode(w, r, &req) {
		return
	}
	if req.On == nil {
		c.refuse(w, http.StatusBadRequest, rejectInvalid, `on: required: {"on": true, "engineer": "name", "reason": "..."}`)
		return
	}
	sm, err := c.SetServiceMode(*req.On, req.Engineer, req.Reason)
	switch {
	case errors.Is(err, ErrInvalidServiceMode):
		c.refuse(w, http.StatusBadRequest, rejectInvalid, "%s", strings.TrimPrefix(err.Error(), ErrInvalidServiceMode.Error()+": "))
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(sm)
}

// SetServiceMode switches service mode and persists it to the state file
// before returning, so a switch that returns nil survives a restart.
// Switching it on while on keeps the first arrival time. An engineer is
// required to switch it on.
func (c *Collector) SetServiceMode(on bool, engineer, reason string) (ServiceMode, error) {
	engineer, reason = strings.TrimSpace(engineer), strings.TrimSpace(reason)
	switch {
	case on && engineer == "":
		return ServiceMode{}, fmt.Errorf("%w: engineer: required when switching service mode on: the arrival on site is recorded", ErrInvalidServiceMode)
	case len(engineer) > maxEngineer:
		return ServiceMode{}, fmt.Errorf("%w: engineer: over %d bytes", ErrInvalidServiceMode, maxEngineer)
	case len(reason) > maxReason:
		return ServiceMode{}, fmt.Errorf("%w: reason: over %d bytes", ErrInvalidServiceMode, maxReason)
	}
	// Held across the write, so that the file and memory switch in the
	// same order; a switch is rare and Collect can wait for one fsync.
	c.mu.Lock()
	defer c.mu.Unlock()
	sm := c.service
	switch {
	case on && !sm.On:
		sm = ServiceMode{On: true, Since: c.now().UTC().Truncate(time.Second), Engineer: engineer, Reason: reason}
	case on:
		sm.Engineer, sm.Reason = engineer, reason
	default:
		sm = ServiceMode{On: false, Since: c.now().UTC().Truncate(time.Second), Engineer: engineer, Reason: reason}
	}
	if c.cfg.StateFile != "" {
		data, err := json.Marshal(sm)
		if err == nil {
			err = atomicfile.Write(c.cfg.StateFile, data, 0o600)
		}
		if err != nil {
			return c.service, fmt.Errorf("persist service mode: %w", err)
		}
	}
	c.service = sm
	level.Info(c.logger).Log("msg", "service mode", "on", sm.On, "engineer", engineer, "reason", reason)
	return sm, nil
}

// PostServiceMode switches service mode through a running exporter's
// endpoint at baseURL ("http://127.0.0.1:9183"), as kiosk-exporter
// service-mode on|off does, and returns the mode the exporter now holds.
func PostServiceMode(ctx context.Context, baseURL, token string, on bool, engineer, reason string) (ServiceMode, error) {
	body, err := json.Marshal(map[string]any{"on": on, "engineer": engineer, "reason": reason})
	if err != nil {
		return ServiceMode{}, fmt.Errorf("encode service mode: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(baseURL, "/")+"/v1/service-mode", bytes.NewReader(body))
	if err != nil {
		return ServiceMode{}, fmt.Errorf("service mode request to %s: %w", baseURL, err)
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
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return ServiceMode{}, fmt.Errorf("read the kiosk exporter's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return ServiceMode{}, fmt.Errorf("kiosk exporter refused: %s: %s", resp.Status, strings.TrimSpace(string(data)))
	}
	var sm ServiceMode
	if err := json.Unmarshal(data, &sm); err != nil {
		return ServiceMode{}, fmt.Errorf("kiosk exporter answered %q: %w", data, err)
	}
	return sm, nil
}
