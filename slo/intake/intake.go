// Package intake feeds the incident ledger from what kioskmon sees: graded
// faults from the in-process evaluator (a sink) or from Alertmanager (its
// webhook, for rules a vmalert evaluates), arrivals proved by a kiosk
// entering service mode, and resolutions once a cleared fault stays clear.
package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/kioskmon/kioskmon/alerting/evaluator"
	"github.com/kioskmon/kioskmon/slo/ledger"
)

// Config configures an Intake.
type Config struct {
	// ResolveAfter: an incident whose fault cleared resolves once the fault
	// stays clear this long (its repair ends when it cleared). Default 10m.
	ResolveAfter time.Duration
	// Every is how often cleared faults and service mode are looked at.
	// Default 30s.
	Every time.Duration
	// Firing lists the evaluator's alerts (nil without one): each sweep
	// opens the incident of any firing alert whose transition the sink
	// could not write (the database was down).
	Firing func() []evaluator.Alert
}

func (c *Config) defaults() {
	if c.ResolveAfter <= 0 {
		c.ResolveAfter = 10 * time.Minute
	}
	if c.Every <= 0 {
		c.Every = 30 * time.Second
	}
}

// Intake opens and moves incidents.
type Intake struct {
	cfg    Config
	l      *ledger.Ledger
	q      evaluator.Querier
	logger log.Logger
	self   *metrics.Set
}

var _ evaluator.Sink = (*Intake)(nil)

// New returns an Intake writing to l; q (the storage) tells which kiosks
// are in service mode, and may be nil.
func New(cfg Config, l *ledger.Ledger, q evaluator.Querier, logger log.Logger, self *metrics.Set) *Intake {
	cfg.defaults()
	if self == nil {
		self = metrics.NewSet()
	}
	return &Intake{cfg: cfg, l: l, q: q, logger: logger, self: self}
}

func (in *Intake) count(source, result string) {
	in.self.GetOrCreateCounter(fmt.Sprintf(`kioskmon_sla_intake_alerts_total{source=%q,result=%q}`, source, result)).Inc()
}

// alertKey names one firing of a fault the same way whichever path it came
// by: the in-process sink and Alertmanager's webhook carry the same start.
func alertKey(kiosk, fault string, start time.Time) string {
	return kiosk + "/" + fault + "@" + start.UTC().Format(time.RFC3339)
}

// firing opens (or finds) the incident of a firing fault.
func (in *Intake) firing(ctx context.Context, source string, labels map[string]string, start time.Time) error {
	kiosk, fault := labels["kiosk"], labels["fault"]
	if kiosk == "" || fault == "" || labels["severity"] == "" {
		in.count(source, "ignored")
		return nil // not a graded kiosk fault
	}
	_, created, err := in.l.OpenIncident(ctx, ledger.OpenRequest{Kiosk: kiosk, Site: labels["site"], District: labels["district"],
		Provider: labels["provider"], Fault: fault, Category: labels["category"], Severity: labels["severity"], Source: source,
		Channel: "system", Actor: "kioskmon", At: start, AlertKey: alertKey(kiosk, fault, start)})
	if err != nil {
		in.count(source, "failed")
		return fmt.Errorf("open the incident of %s on %s: %w", fault, kiosk, err)
	}
	if created {
		in.count(source, "opened")
	} else {
		in.count(source, "known")
	}
	return nil
}

// cleared records that the fault of an open incident cleared.
func (in *Intake) cleared(ctx context.Context, source string, labels map[string]string, at time.Time) error {
	kiosk, fault := labels["kiosk"], labels["fault"]
	if kiosk == "" || fault == "" {
		return nil
	}
	open, err := in.l.Incidents(ctx, ledger.Filter{Kiosk: kiosk, Fault: fault, Open: true, Limit: 1})
	if err != nil {
		return err
	}
	if len(open) == 0 || !open[0].ClearedAt.IsZero() {
		return nil // resolved by a person already, or cleared already (a retry)
	}
	inc := open[0]
	if at.Before(inc.UpdatedAt) {
		at = inc.UpdatedAt
	}
	if _, err := in.l.Record(ctx, inc.ID, ledger.Event{Kind: ledger.KindCleared, At: at, Actor: "kioskmon", Source: source}); err != nil {
		in.count(source, "failed")
		return fmt.Errorf("record that %s on %s cleared: %w", fault, kiosk, err)
	}
	in.count(source, "cleared")
	return nil
}

// Transition opens an incident when a graded fault fires, and records its
// clearing when it resolves.
func (in *Intake) Transition(ctx context.Context, t evaluator.Transition) error {
	switch {
	case t.To == evaluator.StateFiring:
		return in.firing(ctx, "alert", t.Alert.Labels, t.Alert.ActiveAt)
	case t.From == evaluator.StateFiring && t.To == evaluator.StateInactive:
		return in.cleared(ctx, "alert", t.Alert.Labels, t.At)
	}
	return nil
}

// webhookMessage is Alertmanager's webhook payload (version 4), the part
// the ledger reads.
type webhookMessage struct {
	Version string `json:"version"`
	Alerts  []struct {
		Status   string            `json:"status"`
		Labels   map[string]string `json:"labels"`
		StartsAt time.Time         `json:"startsAt"`
		EndsAt   time.Time         `json:"endsAt"`
	} `json:"alerts"`
}

// WebhookHandler serves POST /api/v1/sla/alertmanager, Alertmanager's
// webhook receiver. It answers 2xx only once every alert of the message is
// committed; on an error Alertmanager retries, and a retry opens nothing
// twice.
func (in *Intake) WebhookHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, r.Method+": Alertmanager's webhook POSTs", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 8<<20))
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			in.count("alertmanager", "rejected")
			http.Error(w, "message over 8 MiB: lower max_alerts in the webhook_config", http.StatusRequestEntityTooLarge)
			return
		}
		var msg webhookMessage
		if err == nil {
			err = json.Unmarshal(body, &msg)
		}
		if err != nil || msg.Version != "4" {
			in.count("alertmanager", "rejected")
			http.Error(w, fmt.Sprintf("not an Alertmanager webhook message of version 4 (%v): point a webhook_config here", err), http.StatusBadRequest)
			return
		}
		for i, a := range msg.Alerts {
			switch a.Status {
			case "firing":
				err = in.firing(r.Context(), "alertmanager", a.Labels, a.StartsAt)
			case "resolved":
				err = in.cleared(r.Context(), "alertmanager", a.Labels, a.EndsAt)
			default:
				in.count("alertmanager", "rejected")
				http.Error(w, fmt.Sprintf("alerts[%d].status %q is not firing or resolved", i, a.Status), http.StatusBadRequest)
				return
			}
			if err != nil {
				level.Error(in.logger).Log("msg", "webhook alert not recorded; Alertmanager will retry", "err", err)
				http.Error(w, err.Error()+"; the ledger is unavailable, Alertmanager retries", http.StatusServiceUnavailable)
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// Run resolves incidents whose fault stayed clear, and records arrivals
// proved by service mode, every cfg.Every until ctx ends.
func (in *Intake) Run(ctx context.Context) {
	tick := time.NewTicker(in.cfg.Every)
	defer tick.Stop()
	for {
		if err := in.Sweep(ctx, time.Now()); err != nil && ctx.Err() == nil {
			level.Warn(in.logger).Log("msg", "incident sweep failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Sweep does one round of Run at now.
func (in *Intake) Sweep(ctx context.Context, now time.Time) error {
	if in.cfg.Firing != nil {
		for _, a := range in.cfg.Firing() {
			if a.State == evaluator.StateFiring {
				if err := in.firing(ctx, "alert", a.Labels, a.ActiveAt); err != nil {
					return err
				}
			}
		}
	}
	open, err := in.l.Incidents(ctx, ledger.Filter{Open: true, Limit: 1 << 30})
	if err != nil {
		return err
	}
	since, err := in.serviceModeSince(ctx, now)
	if err != nil {
		level.Warn(in.logger).Log("msg", "cannot read service mode; arrivals by service mode wait", "err", err)
	}
	// One incident's failure does not hold back the others'.
	var errs []error
	for _, inc := range open {
		switch {
		case !inc.ClearedAt.IsZero() && now.Sub(inc.ClearedAt) >= in.cfg.ResolveAfter:
			at := inc.ClearedAt
			if at.Before(inc.UpdatedAt) {
				at = inc.UpdatedAt
			}
			if _, err := in.l.Record(ctx, inc.ID, ledger.Event{Kind: ledger.KindResolved, At: at, Actor: "kioskmon", Source: "alert",
				Data: ledger.EventData{Reason: fmt.Sprintf("the fault cleared and stayed clear for %s", in.cfg.ResolveAfter)}}); err != nil {
				errs = append(errs, fmt.Errorf("resolve incident %d: %w", inc.ID, err))
			}
		case inc.State == ledger.StateOpen || inc.State == ledger.StateAcknowledged || inc.State == ledger.StateDispatched:
			t, ok := since[inc.Kiosk]
			if !ok {
				continue
			}
			// An engineer switched the kiosk to service mode: on site. Before
			// the fault, the engineer was there already; a kiosk whose clock
			// runs ahead says it began in the future: now, then.
			if t.After(now) {
				t = now
			}
			if t.Before(inc.UpdatedAt) {
				t = inc.UpdatedAt
			}
			if _, err := in.l.Record(ctx, inc.ID, ledger.Event{Kind: ledger.KindArrived, At: t, Actor: "kioskmon", Source: "service_mode",
				Data: ledger.EventData{Proof: ledger.ProofServiceMode}}); err != nil {
				errs = append(errs, fmt.Errorf("record the arrival on incident %d: %w", inc.ID, err))
			}
		}
	}
	return errors.Join(errs...)
}

// serviceModeSince maps the kiosks in service mode now to when it began.
func (in *Intake) serviceModeSince(ctx context.Context, now time.Time) (map[string]time.Time, error) {
	if in.q == nil {
		return nil, nil
	}
	samples, err := in.q.Query(ctx, `max by (kiosk) (kiosk_service_mode_since_timestamp_seconds and on (kiosk) (max by (kiosk) (kiosk_service_mode) == 1))`, now)
	if err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	for _, s := range samples {
		for _, l := range s.Labels {
			if l.Name == "kiosk" {
				out[l.Value] = time.Unix(int64(s.Value), 0).UTC()
			}
		}
	}
	return out, nil
}
