package notifier

import (
	"os/exec"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/kioskmon/kioskmon/alerting/evaluator"
	"github.com/kioskmon/kioskmon/internal/peertest"
)

type alerts []evaluator.Alert

func (a alerts) Alerts() []evaluator.Alert { return a }

func TestPostable(t *testing.T) {
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	src := alerts{
		{Labels: map[string]string{"alertname": "hw_paper_out", "kiosk": "k1"}, State: evaluator.StateFiring, ActiveAt: now.Add(-time.Hour)},
		{Labels: map[string]string{"alertname": "hw_paper_jam", "kiosk": "k2"}, State: evaluator.StatePending, ActiveAt: now},
		{Labels: map[string]string{"alertname": "sw_page_tampered", "kiosk": "k3"}, State: evaluator.StateInactive,
			ActiveAt: now.Add(-2 * time.Hour), ResolvedAt: now.Add(-time.Minute)},
	}
	n, err := New(Config{Alertmanagers: []string{"http://127.0.0.1:9093"}, ExternalURL: "http://kioskmon:8428"}, src, log.NewNopLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := n.postable(now)
	if len(got) != 2 {
		t.Fatalf("%d alerts posted, want the firing and the resolved one (a pending alert does not page)", len(got))
	}
	firing, resolved := got[0], got[1]
	if time.Time(firing.StartsAt) != now.Add(-time.Hour) || !time.Time(firing.EndsAt).After(now) || firing.Labels["kiosk"] != "k1" {
		t.Fatalf("firing: %+v", firing)
	}
	if time.Time(resolved.EndsAt) != now.Add(-time.Minute) {
		t.Fatalf("resolved: ends %v", resolved.EndsAt)
	}
	if _, err := New(Config{Alertmanagers: []string{"alertmanager:9093"}}, src, log.NewNopLogger(), nil); err == nil {
		t.Fatal("an Alertmanager address without a scheme was accepted")
	}
}

// TestDeployConfig checks the shipped Alertmanager configuration with
// Alertmanager's own amtool, and that its routes send what they promise.
func TestDeployConfig(t *testing.T) {
	amtool := peertest.Tool(t, "amtool", "prometheus-alertmanager")
	const cfg = "../../deploy/alertmanager/alertmanager.yml"
	if out, err := exec.Command(amtool, "check-config", cfg).CombinedOutput(); err != nil {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
	f := func(want string, labels ...string) {
		t.Helper()
		args := append([]string{"config", "routes", "test", "--config.file=" + cfg}, labels...)
		out, err := exec.Command(amtool, args...).Output()
		if err != nil {
			t.Fatalf("amtool routes test %v: %v", labels, err)
		}
		if got := string(out); got != want+"\n" {
			t.Fatalf("%v routed to %q, want %q", labels, got, want)
		}
	}
	f("sla-ledger,acme-om-pager", "severity=urgent", "provider=acme-om", "fault=kiosk.offline")
	f("sla-ledger,oncall-pager", "severity=urgent", "provider=haixi-tech", "fault=sw.page_tampered")
	f("sla-ledger,oncall-chat", "severity=moderate", "fault=hw.paper_jam")
	f("sla-ledger,noc-ticket-queue", "severity=minor", "fault=hw.lights_dim")
}
