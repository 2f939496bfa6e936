package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kioskmon/kioskmon/internal/peertest"

	"github.com/kioskmon/kioskmon/alerting/rulebook"
	"github.com/kioskmon/kioskmon/exporter/sim"
)

type apiAlert struct {
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"`
	ActiveAt time.Time         `json:"activeAt"`
}

func (s *server) alerts() []apiAlert {
	s.t.Helper()
	resp, err := http.Get(s.url("/api/v1/alerts"))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var reply struct {
		Data struct{ Alerts []apiAlert }
	}
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		s.t.Fatal(err)
	}
	return reply.Data.Alerts
}

// TestInjectedFaultsBecomeGradedAlerts runs the simulator live against a
// real kioskmon evaluating the default rulebook and sending to a real
// Alertmanager, and scores the alerts against the simulator's truth: each
// injected fault fires with its grade, nothing else fires, the alerts reach
// Alertmanager and its receiver, a repaired fault resolves there too, and a
// restart keeps the alerts' start times.
func TestInjectedFaultsBecomeGradedAlerts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about three minutes")
	}
	dir := t.TempDir()
	inv := emptyInventory(t, dir)
	am := startAlertmanager(t)
	s := newServer(t, inv, "--alertmanager", am.url, "--sla.check-interval", "2s")
	// Kiosks 15-19 stand in a police station, open around the clock.
	injected := map[string]string{ // kiosk -> fault
		sim.KioskID(15): "power.mains_lost",
		sim.KioskID(16): "sw.page_tampered",
		sim.KioskID(17): "hw.paper_jam",
	}
	script := ""
	for k, f := range injected {
		// The jam is cleared after 2 minutes: its alert must resolve.
		d := "30m"
		if f == "hw.paper_jam" {
			d = "2m"
		}
		script += fmt.Sprintf("- {at: 5s, kiosk: %s, fault: %s, for: %s}\n", k, f, d)
	}
	faultsFile := filepath.Join(dir, "faults.yml")
	os.WriteFile(faultsFile, []byte(script), 0o600)
	truth := filepath.Join(dir, "truth.jsonl")
	simCmd := exec.Command(simBin, "--kiosks", "20", "--inventory", inv, "--push", s.url(""), "--faults", faultsFile,
		"--truth", truth, "--drain-timeout", "10s")
	simLog := &syncBuffer{}
	simCmd.Stdout, simCmd.Stderr = simLog, simLog
	if err := simCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { simCmd.Process.Kill(); simCmd.Wait() }()

	grades := map[string]string{}
	for _, f := range rulebook.Default().Faults {
		grades[f.ID] = f.Severity["db12-1060"]
	}
	firing := func() map[string]apiAlert {
		got := map[string]apiAlert{}
		for _, a := range s.alerts() {
			if a.State == "firing" {
				got[a.Labels["kiosk"]+" "+a.Labels["fault"]] = a
			}
		}
		return got
	}
	var got map[string]apiAlert
	deadline := time.Now().Add(4 * time.Minute)
	for time.Now().Before(deadline) {
		if got = firing(); len(got) >= len(injected) {
			break
		}
		time.Sleep(5 * time.Second)
	}
	for kiosk, fault := range injected {
		a, ok := got[kiosk+" "+fault]
		if !ok {
			t.Errorf("injected %s on %s: no firing alert (firing: %v)\nsimulator:\n%s", fault, kiosk, keys(got), simLog.String())
			continue
		}
		if a.Labels["severity"] != grades[fault] || a.Labels["site"] == "" || a.Labels["provider"] == "" {
			t.Errorf("%s on %s: labels %v, want severity %s and the inventory's site and provider", fault, kiosk, a.Labels, grades[fault])
		}
	}
	for k := range got {
		kiosk, fault := splitKey(k)
		if injected[kiosk] != fault {
			t.Errorf("%s fired on %s, which the simulator did not inject", fault, kiosk)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	checkInspections(t, s, sim.KioskID(16), sim.KioskID(18))
	checkIncidents(t, s, got)

	// The same alerts reached the real Alertmanager, with their labels, and
	// the urgent one was routed to its receiver.
	amAlerts := am.waitAlerts(t, func(a map[string]map[string]string) bool { return len(a) >= len(injected) })
	for kiosk, fault := range injected {
		l, ok := amAlerts[kiosk+" "+fault]
		if !ok || l["severity"] != grades[fault] || l["alertname"] != rulebook.AlertName(fault) {
			t.Errorf("Alertmanager has %s on %s as %v; all: %v", fault, kiosk, l, amAlerts)
		}
	}
	am.waitNotification(t, "firing", "sw.page_tampered")
	checkBreachWarning(t, s, am, sim.KioskID(19))
	// The jam is cleared: the alert resolves in kioskmon and in Alertmanager.
	am.waitAlerts(t, func(a map[string]map[string]string) bool {
		_, jam := a[sim.KioskID(17)+" hw.paper_jam"]
		return !jam
	})
	am.waitNotification(t, "resolved", "hw.paper_jam")
	delete(got, sim.KioskID(17)+" hw.paper_jam")

	// A restart neither forgets the alerts nor moves their start, nor
	// opens their incidents again.
	s.stop()
	s.start()
	after := firing()
	for k, a := range got {
		if b, ok := after[k]; !ok || !b.ActiveAt.Equal(a.ActiveAt) {
			t.Errorf("after a restart %s: %+v, was %+v", k, b, a)
		}
	}
	checkIncidents(t, s, got)
}

// checkIncidents: each firing alert opened exactly one incident in the
// ledger, at the alert's start.
func checkIncidents(t *testing.T, s *server, firing map[string]apiAlert) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url("/api/v1/incidents"), nil)
	req.Header.Set("Authorization", "Bearer "+s.adminToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var reply struct {
		Data struct {
			Incidents []struct {
				Kiosk, Fault, Severity, Source string
				OpenedAt                       time.Time `json:"opened_at"`
			}
		}
	}
	json.NewDecoder(resp.Body).Decode(&reply)
	count := map[string]int{}
	for _, inc := range reply.Data.Incidents {
		k := inc.Kiosk + " " + inc.Fault
		count[k]++
		if a, ok := firing[k]; ok && (!inc.OpenedAt.Equal(a.ActiveAt.Truncate(time.Millisecond)) || inc.Severity != a.Labels["severity"] || inc.Source != "alert") {
			t.Errorf("incident of %s: %+v, want opened at %s with severity %s by the alert", k, inc, a.ActiveAt, a.Labels["severity"])
		}
	}
	for k := range firing {
		if count[k] != 1 {
			t.Errorf("%d incidents for %s, want 1 (all: %+v)", count[k], k, reply.Data.Incidents)
		}
	}
}

// checkInspections inspects a kiosk with a firing fault and a healthy one
// on demand: the first fails the item of its fault, and the record names the
// firing alert (no second fault is raised for it); the second passes.
func checkInspections(t *testing.T, s *server, faulty, healthy string) {
	t.Helper()
	resp, err := http.Post(s.url("/api/v1/inspections/run?kiosk="+faulty+"&kiosk="+healthy), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var reply struct {
		Data struct {
			Records []struct {
				Kiosk, Result string
				Items         []struct {
					Item, Result string
					Findings     []struct{ Fault, Alert, Detail string }
				}
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil || resp.StatusCode != 200 || len(reply.Data.Records) != 2 {
		t.Fatalf("inspection: %d %v %+v", resp.StatusCode, err, reply)
	}
	for _, r := range reply.Data.Records {
		switch r.Kiosk {
		case faulty:
			found := false
			for _, it := range r.Items {
				for _, f := range it.Findings {
					found = found || it.Item == "client_pages" && it.Result == "fail" && f.Fault == "sw.page_tampered" && f.Alert == "firing"
				}
			}
			if r.Result != "fail" || !found {
				t.Errorf("inspection of %s with a tampered page: %+v", faulty, r)
			}
		case healthy:
			if r.Result != "pass" {
				t.Errorf("inspection of healthy %s: %+v", healthy, r)
			}
		}
	}
	var cov struct {
		Data struct{ Inspected, Kiosks int }
	}
	if resp, err := http.Get(s.url("/api/v1/inspections/coverage")); err == nil {
		json.NewDecoder(resp.Body).Decode(&cov)
		resp.Body.Close()
	}
	if cov.Data.Inspected != 2 || cov.Data.Kiosks != 20 {
		t.Errorf("coverage after inspecting 2 of 20 kiosks: %+v", cov.Data)
	}
}

func keys(m map[string]apiAlert) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func splitKey(k string) (string, string) {
	for i := range k {
		if k[i] == ' ' {
			return k[:i], k[i+1:]
		}
	}
	return k, ""
}

// alertmanager is a real Alertmanager (Debian's prometheus-alertmanager) on
// loopback, routing everything to a webhook the test reads.
type alertmanager struct {
	url      string
	mu       sync.Mutex
	received []webhookMessage
}

type webhookMessage struct {
	Status string `json:"status"`
	Alerts []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

func startAlertmanager(t *testing.T) *alertmanager {
	t.Helper()
	bin := peertest.Tool(t, "prometheus-alertmanager", "prometheus-alertmanager")
	am := &alertmanager{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m webhookMessage
		json.NewDecoder(r.Body).Decode(&m)
		am.mu.Lock()
		am.received = append(am.received, m)
		am.mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`route:
  receiver: hook
  group_by: [kiosk, fault]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs: [{url: %q, send_resolved: true}]
`, hook.URL)
	os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(cfg), 0o600)
	addr := freePort(t)
	am.url = "http://" + addr
	cmd := exec.Command(bin, "--config.file", filepath.Join(dir, "alertmanager.yml"), "--storage.path", dir,
		"--web.listen-address", addr, "--cluster.listen-address=")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager:\n%s", out.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(am.url + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return am
			}
		}
	}
	t.Fatalf("alertmanager not ready:\n%s", out.String())
	return nil
}

// waitAlerts polls Alertmanager's API v2 until ok accepts its active alerts,
// keyed "kiosk fault".
func (am *alertmanager) waitAlerts(t *testing.T, ok func(map[string]map[string]string) bool) map[string]map[string]string {
	t.Helper()
	var got map[string]map[string]string
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
		resp, err := http.Get(am.url + "/api/v2/alerts")
		if err != nil {
			t.Fatal(err)
		}
		var alerts []struct {
			Labels map[string]string `json:"labels"`
		}
		json.NewDecoder(resp.Body).Decode(&alerts)
		resp.Body.Close()
		got = map[string]map[string]string{}
		for _, a := range alerts {
			got[a.Labels["kiosk"]+" "+a.Labels["fault"]] = a.Labels
		}
		if ok(got) {
			return got
		}
	}
	t.Fatalf("Alertmanager's alerts never became what the test waits for: %v", got)
	return nil
}

// waitNotification waits for the webhook to receive fault with status.
func (am *alertmanager) waitNotification(t *testing.T, status, fault string) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		am.mu.Lock()
		for _, m := range am.received {
			for _, a := range m.Alerts {
				if a.Status == status && a.Labels["fault"] == fault {
					am.mu.Unlock()
					return
				}
			}
		}
		am.mu.Unlock()
	}
	t.Fatalf("no %s notification for %s reached the receiver", status, fault)
}

// checkBreachWarning: a fault a citizen reported 20 minutes ago by phone,
// not acknowledged since, has used two thirds of its 30-minute response
// time, and the breach warning reaches the real Alertmanager, routed by the
// incident's provider.
func checkBreachWarning(t *testing.T, s *server, am *alertmanager, kiosk string) {
	t.Helper()
	out := kioskmonCLI(t, "incidents", "report-fault", "--server", "http://"+s.addr, "--token", s.adminToken(), "--kiosk", kiosk,
		"--fault", "hw.id_reader_fault", "--channel", "phone", "--at", "-20m")
	id := lastLine(out)
	warned := am.waitAlerts(t, func(a map[string]map[string]string) bool {
		l := a[kiosk+" "]
		return l["alertname"] == "SLATargetAtRisk" && l["incident"] == id && l["target"] == "response"
	})
	l := warned[kiosk+" "]
	if l["escalation"] != "50%" || l["incident_fault"] != "hw.id_reader_fault" || l["provider"] == "" || l["urgency"] != "warning" {
		t.Errorf("breach warning in Alertmanager: %v", l)
	}
}

// TestBreachWarningsWithoutInProcessRules: with the rules evaluated
// elsewhere (vmalert and the webhook), kioskmon still sends the SLA breach
// warnings to Alertmanager.
func TestBreachWarningsWithoutInProcessRules(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Alertmanager")
	}
	dir := t.TempDir()
	inv := emptyInventory(t, dir)
	addKiosk(t, inv, "k-warn", "hall-1")
	am := startAlertmanager(t)
	s := newServer(t, inv, "--rules.disable", "--alertmanager", am.url, "--sla.check-interval", "2s")
	checkBreachWarning(t, s, am, "k-warn")
}
