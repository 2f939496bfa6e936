package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestAcknowledgedSamplesSurviveKill9 writes under load from several clients,
// kills the server with SIGKILL in the middle, restarts it, and checks that
// every sample that got a 2xx is queryable.
func TestAcknowledgedSamplesSurviveKill9(t *testing.T) {
	inv := filepath.Join(t.TempDir(), "inventory.yml")
	const writers = 8
	tokens := make([]string, writers)
	for i := range writers {
		tokens[i] = addKiosk(t, inv, fmt.Sprintf("k%02d", i), "hall")
	}
	// A long checkpoint interval keeps the acknowledged samples in the log, so
	// the restart must replay it.
	s := newServer(t, inv, "--wal.checkpoint-interval", "1h")

	type ack struct{ ts, value int64 }
	acked := make([][]ack, writers)
	var sent atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	base := time.Now().Add(-time.Minute).UnixMilli()
	for w := range writers {
		wg.Go(func() {
			// Each request carries 50 series of this kiosk at one timestamp;
			// the value is the request number, so every sample is distinct.
			for i := int64(0); ctx.Err() == nil && i < 100000; i++ {
				var b strings.Builder
				ts := base + i
				for sIdx := range 50 {
					fmt.Fprintf(&b, "durability_probe{series=\"%d\"} %d %d\n", sIdx, i, ts)
				}
				sent.Add(1)
				status, _ := post(t, ctx, s.url("/api/v1/import/prometheus"), []byte(b.String()), "Authorization", "Bearer "+tokens[w])
				if status == 204 {
					acked[w] = append(acked[w], ack{ts, i})
				} else if status != 0 {
					t.Errorf("writer %d: status %d", w, status)
					return
				}
			}
		})
	}
	// Let the load run, then kill the server while requests are in flight.
	for sent.Load() < 4000 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	s.kill()
	cancel()
	wg.Wait()
	total := 0
	for _, a := range acked {
		total += len(a)
	}
	if total < 500 {
		t.Fatalf("only %d requests acknowledged before the kill; the load did not run", total)
	}
	t.Logf("acknowledged %d requests (%d samples) before kill -9", total, total*50)

	s.start()
	if !strings.Contains(s.stderr.String(), "replayed write-ahead log") {
		t.Errorf("restart did not replay the log:\n%s", s.stderr.String())
	}
	for w := range writers {
		kiosk := fmt.Sprintf("k%02d", w)
		got := s.waitExport(fmt.Sprintf(`durability_probe{kiosk=%q}`, kiosk), 60*time.Second, func(ss []exportedSeries) bool { return len(ss) == 50 })
		for _, es := range got {
			have := make(map[int64]float64, len(es.Timestamps))
			for i, ts := range es.Timestamps {
				have[ts] = es.Values[i]
			}
			for _, a := range acked[w] {
				if v, ok := have[a.ts]; !ok || v != float64(a.value) {
					t.Fatalf("kiosk %s series %s: acknowledged sample at %d (value %d) missing after kill -9 (have %v, %v)", kiosk, es.Metric["series"], a.ts, a.value, v, ok)
				}
			}
			// De-duplication after replay: one sample per timestamp.
			if len(es.Timestamps) != len(have) {
				t.Fatalf("kiosk %s: %d samples for %d timestamps: replay duplicated samples", kiosk, len(es.Timestamps), len(have))
			}
		}
	}
}

// TestSecondServerOnSameDataDirectory expects a clear error, not a crash trace.
func TestSecondServerOnSameDataDirectory(t *testing.T) {
	inv := filepath.Join(t.TempDir(), "inventory.yml")
	addKiosk(t, inv, "k1", "hall")
	s := newServer(t, inv)
	out, err := exec.Command(kioskmonBin, "serve", "--listen", freePort(t), "--data", s.dataDir, "--inventory", inv).CombinedOutput()
	if err == nil {
		t.Fatalf("second server started on the same data directory:\n%s", out)
	}
	msg := string(out)
	if !strings.Contains(msg, "is locked by pid") || strings.Contains(msg, "goroutine ") || strings.Contains(msg, "panic") {
		t.Fatalf("want a clear lock error, got:\n%s", msg)
	}
}

// TestInventoryReloadAndGracefulShutdown adds a kiosk while the server runs,
// expects its token to work without a restart, then stops the server with
// SIGTERM and expects a clean exit with an empty log.
func TestInventoryReloadAndGracefulShutdown(t *testing.T) {
	inv := filepath.Join(t.TempDir(), "inventory.yml")
	addKiosk(t, inv, "k1", "hall")
	s := newServer(t, inv)
	ctx := context.Background()
	token := addKiosk(t, inv, "k-new", "hall")
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, msg := post(t, ctx, s.url("/write"), []byte("reload_probe v=1"), "Authorization", "Bearer "+token)
		if status == 204 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new kiosk still refused after 20s: %d %s", status, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A broken inventory is reported and the previous one stays in force.
	good, err := os.ReadFile(inv)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(inv, []byte("version: v1\nkiosks:\n  - id: [oops\n"), 0o600)
	time.Sleep(time.Second)
	if status, msg := post(t, ctx, s.url("/write"), []byte("reload_probe v=2"), "Authorization", "Bearer "+token); status != 204 {
		t.Fatalf("a broken inventory file dropped the old one: %d %s", status, msg)
	}
	s.stop()
	log := s.stderr.String()
	if !strings.Contains(log, "inventory") || !strings.Contains(log, "closing storage") {
		t.Errorf("shutdown log incomplete:\n%s", log)
	}
	// After a clean shutdown the log holds nothing to replay.
	if err := os.WriteFile(inv, good, 0o600); err != nil {
		t.Fatal(err)
	}
	s.start()
	if strings.Contains(s.stderr.String(), "replayed write-ahead log") {
		t.Errorf("a clean shutdown left samples in the log:\n%s", s.stderr.String())
	}
}

// TestInventoryReloadOnSIGHUP: with polling effectively off, SIGHUP alone
// makes a new kiosk's token work.
func TestInventoryReloadOnSIGHUP(t *testing.T) {
	inv := filepath.Join(t.TempDir(), "inventory.yml")
	addKiosk(t, inv, "k1", "hall")
	s := newServer(t, inv, "--inventory.poll", "1h")
	token := addKiosk(t, inv, "k-hup", "hall")
	ctx := context.Background()
	if status, _ := post(t, ctx, s.url("/write"), []byte("hup_probe v=1"), "Authorization", "Bearer "+token); status != 401 {
		t.Fatalf("new kiosk accepted before SIGHUP (status %d): the poll interval was not honoured", status)
	}
	s.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, msg := post(t, ctx, s.url("/write"), []byte("hup_probe v=1"), "Authorization", "Bearer "+token)
		if status == 204 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new kiosk refused 10s after SIGHUP: %d %s", status, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
