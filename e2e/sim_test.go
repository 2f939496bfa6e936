package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskmon/kioskmon/exporter/sim"
)

// TestSimulatorScriptedFaults runs kiosk-sim against a real kioskmon with a
// fast clock and a fault script, and checks what kioskmon stored against
// the truth file: each fault shows exactly over its injected window, the
// gathers made while a kiosk's link was down arrive after the repair, an
// offline kiosk leaves a gap, no gather is missing or stored twice, and no
// sample is from the future.
func TestSimulatorScriptedFaults(t *testing.T) {
	dir := t.TempDir()
	inv := emptyInventory(t, dir)
	s := newServer(t, inv)
	// Kiosks 15-19 stand in a police station, open around the clock: the
	// time of day the test runs at does not switch them off.
	paperKiosk, linkKiosk, offKiosk := sim.KioskID(15), sim.KioskID(16), sim.KioskID(17)
	script := filepath.Join(dir, "faults.yml")
	os.WriteFile(script, []byte(fmt.Sprintf(`
- {at: 20m, kiosk: %s, fault: hw.paper_out, for: 30m}
- {at: 30m, kiosk: %s, fault: net.link_down, for: 20m}
- {at: 10m, kiosk: %s, fault: kiosk.offline, for: 15m}
`, paperKiosk, linkKiosk, offKiosk)), 0o600)
	truthPath := filepath.Join(dir, "truth.jsonl")
	before := time.Now()
	cmd := exec.Command(simBin, "--kiosks", "20", "--inventory", inv, "--push", s.url(""), "--seed", "3",
		"--speed", "900", "--duration", "90m", "--faults", script, "--truth", truthPath, "--drain-timeout", "2m")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kiosk-sim: %v\n%s%s\nserver:\n%s", err, stdout.String(), stderr.String(), s.stderr.String())
	}
	after := time.Now()
	t.Logf("kiosk-sim: %s", stdout.String())
	if st, err := os.Stat(sim.TokensPath(inv)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("tokens file beside the inventory: %v", err)
	}

	type line struct {
		Kiosk, Fault string
		Start, End   time.Time
	}
	truth := map[string]line{}
	f, err := os.Open(truthPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("truth line %q: %v", sc.Text(), err)
		}
		truth[l.Fault] = l
	}
	if len(truth) != 3 {
		t.Fatalf("truth has %d faults, want the 3 scripted: %v", len(truth), truth)
	}
	paper, link, off := truth["hw.paper_out"], truth["net.link_down"], truth["kiosk.offline"]
	runStart := paper.Start.Add(-20 * time.Minute)
	if !link.Start.Add(-30*time.Minute).Equal(runStart) || !off.Start.Add(-10*time.Minute).Equal(runStart) ||
		paper.End.Sub(paper.Start) != 30*time.Minute || link.End.Sub(link.Start) != 20*time.Minute {
		t.Fatalf("truth does not match the script: %+v", truth)
	}
	if d := before.Sub(runStart); d < 89*time.Minute || d > 91*time.Minute {
		t.Fatalf("a 90m run at speed 900 started %s before now, want 90m", d)
	}

	// samples returns one series' samples, checking each gather is there once.
	samples := func(selector string) (ts []time.Time, vs []float64) {
		t.Helper()
		s.flush()
		got := s.export(selector)
		if len(got) != 1 {
			t.Fatalf("%s: %d series, want 1", selector, len(got))
		}
		for i, ms := range got[0].Timestamps {
			at := time.UnixMilli(ms)
			if i > 0 && !at.After(ts[i-1]) {
				t.Fatalf("%s: sample at %s stored twice or out of order", selector, at)
			}
			if at.After(after) {
				t.Fatalf("%s: sample at %s is from the future", selector, at)
			}
			if at.Before(runStart) {
				t.Fatalf("%s: sample at %s before the run's start %s", selector, at, runStart)
			}
			ts, vs = append(ts, at), append(vs, got[0].Values[i])
		}
		return ts, vs
	}
	inWindow := func(at time.Time, l line) bool { return !at.Before(l.Start) && at.Before(l.End) }

	ts, vs := samples(fmt.Sprintf(`kiosk_paper_state{kiosk=%q,state="empty"}`, paperKiosk))
	if n := len(ts); n < 359 || n > 361 {
		t.Fatalf("%s: %d gathers stored, want 360 (90m at 15s)", paperKiosk, n)
	}
	for i, at := range ts {
		if want := inWindow(at, paper); (vs[i] == 1) != want {
			t.Fatalf("%s at %s: paper empty = %g, want %v (fault %s..%s)", paperKiosk, at, vs[i], want, paper.Start, paper.End)
		}
	}

	ts, vs = samples(fmt.Sprintf(`kiosk_network_link_up{kiosk=%q}`, linkKiosk))
	down := 0
	for i, at := range ts {
		if inWindow(at, link) {
			down++
			if vs[i] != 0 {
				t.Fatalf("%s at %s: link up during the outage", linkKiosk, at)
			}
		} else if vs[i] != 1 {
			t.Fatalf("%s at %s: link down outside the outage", linkKiosk, at)
		}
	}
	if down < 79 || down > 81 || len(ts) < 359 {
		t.Fatalf("%s: %d of %d gathers in the 20m outage, want 80 delivered after the repair", linkKiosk, down, len(ts))
	}

	ts, _ = samples(fmt.Sprintf(`kiosk_app_up{kiosk=%q}`, offKiosk))
	for _, at := range ts {
		if inWindow(at, off) {
			t.Fatalf("%s gathered at %s while switched off", offKiosk, at)
		}
	}
	if n := len(ts); n < 299 || n > 301 {
		t.Fatalf("%s: %d gathers, want 300 (90m less the 15m off)", offKiosk, n)
	}
}

// TestSimulatorCatchesUpThenRunsLive: with --catch-up the simulator fills
// in the last half hour fast and then carries the same fleet on live, as
// make run does: a fault injected in the history is still there in the
// live gathers, and a kiosk's gathers run on every 15 s across the moment
// the clock caught up, neither missing nor repeated.
func TestSimulatorCatchesUpThenRunsLive(t *testing.T) {
	dir := t.TempDir()
	inv := emptyInventory(t, dir)
	s := newServer(t, inv)
	// A police kiosk (15-19), open around the clock; the fault starts 10
	// minutes before now and lasts 30.
	paperKiosk := sim.KioskID(15)
	script := filepath.Join(dir, "faults.yml")
	os.WriteFile(script, []byte(fmt.Sprintf("- {at: 20m, kiosk: %s, fault: hw.paper_out, for: 30m}\n", paperKiosk)), 0o600)
	truthPath, logPath := filepath.Join(dir, "truth.jsonl"), filepath.Join(dir, "sim.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(simBin, "--kiosks", "20", "--inventory", inv, "--push", s.url(""), "--seed", "3",
		"--speed", "600", "--catch-up", "30m", "--faults", script, "--truth", truthPath, "--progress", "1s")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	before := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	simLog := func() string { data, _ := os.ReadFile(logPath); return string(data) }
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(simLog(), "caught up with the wall clock") {
		if time.Now().After(deadline) {
			t.Fatalf("kiosk-sim did not catch up in 2 minutes:\n%s", simLog())
		}
		time.Sleep(100 * time.Millisecond)
	}
	caughtUp := time.Now()
	// Two live gathers of every kiosk at the least.
	time.Sleep(35 * time.Second)
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("kiosk-sim stopped with %v (it delivers what it queued before it exits):\n%s", err, simLog())
	}
	stopped := time.Now()

	truth, err := os.ReadFile(truthPath)
	if err != nil {
		t.Fatal(err)
	}
	var paper struct {
		Kiosk, Fault string
		Start, End   time.Time
	}
	if err := json.Unmarshal(bytes.TrimSpace(truth), &paper); err != nil {
		t.Fatalf("truth %q: %v", truth, err)
	}
	// The fault was repaired when the run stopped, not when it caught up.
	if d := before.Sub(paper.Start); d < 9*time.Minute || d > 11*time.Minute || paper.End.Before(caughtUp.Add(30*time.Second)) || paper.End.After(stopped) {
		t.Fatalf("truth %+v: want a start 10m before the run and an end when it stopped (caught up %s, stopped %s)", paper, caughtUp, stopped)
	}

	s.flush()
	got := s.export(fmt.Sprintf(`kiosk_paper_state{kiosk=%q,state="empty"}`, paperKiosk))
	if len(got) != 1 {
		t.Fatalf("%d series of the paper state, want 1", len(got))
	}
	var live, liveEmpty int
	for i, ms := range got[0].Timestamps {
		at := time.UnixMilli(ms)
		if at.After(stopped) {
			t.Fatalf("sample at %s, after the run stopped", at)
		}
		if i > 0 {
			if gap := at.Sub(time.UnixMilli(got[0].Timestamps[i-1])); gap < 14*time.Second || gap > 16*time.Second {
				t.Fatalf("gathers at %s and %s: a gap of %s, want 15s throughout", time.UnixMilli(got[0].Timestamps[i-1]), at, gap)
			}
		}
		if empty := got[0].Values[i] == 1; empty != (!at.Before(paper.Start) && at.Before(paper.End)) {
			t.Fatalf("paper empty = %v at %s, fault %s..%s", empty, at, paper.Start, paper.End)
		}
		if at.After(caughtUp) {
			live++
			if got[0].Values[i] == 1 {
				liveEmpty++
			}
		}
	}
	if n := len(got[0].Timestamps); n < 120 || live < 2 || liveEmpty != live {
		t.Fatalf("%d gathers, %d after the clock caught up, %d of them with the paper out: want 30m of history and the fault carried on live", n, live, liveEmpty)
	}
}
