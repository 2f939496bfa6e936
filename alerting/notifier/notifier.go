// Package notifier sends kioskmon's alerts to Alertmanager with its own API
// v2 client: to every configured Alertmanager (an HA cluster deduplicates),
// firing alerts again on every resend interval so they do not expire,
// resolved ones until they age out, with retries and a failure metric.
package notifier

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/go-openapi/strfmt"
	amclient "github.com/prometheus/alertmanager/api/v2/client"
	"github.com/prometheus/alertmanager/api/v2/client/alert"
	"github.com/prometheus/alertmanager/api/v2/models"

	"github.com/kioskmon/kioskmon/alerting/evaluator"
)

// Source lists the alerts to send (the evaluator).
type Source interface {
	Alerts() []evaluator.Alert
}

// Config configures the notifier.
type Config struct {
	// Alertmanagers are base URLs such as http://127.0.0.1:9093.
	Alertmanagers []string
	// ResendInterval: firing alerts are sent again this often. Default 1m.
	ResendInterval time.Duration
	// Timeout of one request. Default 10s.
	Timeout time.Duration
	// ExternalURL is kioskmon's URL, for the alerts' generator links.
	ExternalURL string
}

type target struct {
	url    string
	client *amclient.AlertmanagerAPI
	sent   *metrics.Counter
	failed *metrics.Counter
}

// Notifier sends alerts.
type Notifier struct {
	cfg     Config
	src     Source
	logger  log.Logger
	targets []*target
	kick    chan struct{}
	mu      sync.Mutex
}

// New returns a notifier for cfg.Alertmanagers; self receives its metrics.
func New(cfg Config, src Source, logger log.Logger, self *metrics.Set) (*Notifier, error) {
	if cfg.ResendInterval <= 0 {
		cfg.ResendInterval = time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if self == nil {
		self = metrics.NewSet()
	}
	n := &Notifier{cfg: cfg, src: src, logger: logger, kick: make(chan struct{}, 1)}
	for _, raw := range cfg.Alertmanagers {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("--alertmanager %q is not an http(s) URL such as http://127.0.0.1:9093", raw)
		}
		tc := amclient.DefaultTransportConfig().WithHost(u.Host).WithBasePath(path.Join("/", u.Path, "api/v2")).WithSchemes([]string{u.Scheme})
		n.targets = append(n.targets, &target{url: raw, client: amclient.NewHTTPClientWithConfig(strfmt.Default, tc),
			sent:   self.GetOrCreateCounter(fmt.Sprintf(`kioskmon_notifications_sent_total{alertmanager=%q}`, raw)),
			failed: self.GetOrCreateCounter(fmt.Sprintf(`kioskmon_notifications_failed_total{alertmanager=%q}`, raw))})
	}
	return n, nil
}

// Transition implements evaluator.Sink: a change is sent at once, not at
// the next resend.
func (n *Notifier) Transition(context.Context, evaluator.Transition) error {
	select {
	case n.kick <- struct{}{}:
	default:
	}
	return nil
}

// Run sends until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	tick := time.NewTicker(n.cfg.ResendInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-n.kick:
		}
		n.Send(ctx, time.Now())
	}
}

// Send posts the current firing and recently resolved alerts to every
// Alertmanager, retrying each a few times.
func (n *Notifier) Send(ctx context.Context, now time.Time) {
	batch := n.postable(now)
	if len(batch) == 0 {
		return
	}
	var wg sync.WaitGroup
	for _, t := range n.targets {
		wg.Go(func() {
			backoff := 500 * time.Millisecond
			for attempt := 1; ; attempt++ {
				params := alert.NewPostAlertsParamsWithContext(ctx).WithTimeout(n.cfg.Timeout).WithAlerts(batch)
				_, err := t.client.Alert.PostAlerts(params)
				if err == nil {
					t.sent.Add(len(batch))
					return
				}
				if attempt == 3 || ctx.Err() != nil {
					t.failed.Add(len(batch))
					level.Warn(n.logger).Log("msg", "cannot send alerts to Alertmanager; they are sent again at the next interval",
						"alertmanager", t.url, "alerts", len(batch), "err", err)
					return
				}
				select {
				case <-ctx.Done():
				case <-time.After(backoff):
				}
				backoff *= 2
			}
		})
	}
	wg.Wait()
}

func (n *Notifier) postable(now time.Time) models.PostableAlerts {
	var out models.PostableAlerts
	for _, a := range n.src.Alerts() {
		pa := &models.PostableAlert{Annotations: models.LabelSet(a.Annotations), StartsAt: strfmt.DateTime(a.ActiveAt),
			Alert: models.Alert{Labels: models.LabelSet(a.Labels)}}
		if n.cfg.ExternalURL != "" {
			pa.GeneratorURL = strfmt.URI(n.cfg.ExternalURL + "/api/v1/alerts")
		}
		switch a.State {
		case evaluator.StateFiring:
			// Valid for a few resends: if kioskmon dies, Alertmanager resolves it.
			pa.EndsAt = strfmt.DateTime(now.Add(4 * n.cfg.ResendInterval))
		case evaluator.StateInactive:
			pa.EndsAt = strfmt.DateTime(a.ResolvedAt)
		default:
			continue // pending alerts do not page
		}
		out = append(out, pa)
	}
	return out
}
