package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

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
// real kioskmon evaluating the default rulebook, and scores the firing
// alerts against the simulator's truth: each injected fault fires with its
// grade, nothing else fires, and a restart keeps the alerts' start times.
func TestInjectedFaultsBecomeGradedAlerts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about three minutes")
	}
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.yml")
	os.WriteFile(inv, []byte("version: v1\nkiosks: []\n"), 0o600)
	s := newServer(t, inv)
	// Kiosks 15-19 stand in a police station, open around the clock.
	injected := map[string]string{ // kiosk -> fault
		sim.KioskID(15): "hw.paper_out",
		sim.KioskID(16): "sw.page_tampered",
		sim.KioskID(17): "hw.paper_jam",
	}
	script := ""
	for k, f := range injected {
		script += fmt.Sprintf("- {at: 5s, kiosk: %s, fault: %s, for: 30m}\n", k, f)
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

	// A restart neither forgets the alerts nor moves their start.
	s.stop()
	s.start()
	after := firing()
	for k, a := range got {
		if b, ok := after[k]; !ok || !b.ActiveAt.Equal(a.ActiveAt) {
			t.Errorf("after a restart %s: %+v, was %+v", k, b, a)
		}
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
