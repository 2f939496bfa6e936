package ledger

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kioskmon/kioskmon/internal/peertest"
)

// eachBackend runs f on a fresh SQLite ledger and on a fresh PostgreSQL 15
// one (a real server on loopback).
func eachBackend(t *testing.T, f func(t *testing.T, l *Ledger)) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			dsn := ""
			if backend == "postgres" {
				if testing.Short() {
					t.Skip("starts PostgreSQL")
				}
				dsn = peertest.Postgres(t)
			}
			l, err := Open(context.Background(), dsn, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			if l.Backend() != backend {
				t.Fatalf("backend %s, want %s", l.Backend(), backend)
			}
			f(t, l)
		})
	}
}

var t0 = time.Date(2026, 10, 2, 9, 0, 0, 0, time.UTC)

func alertOpen(kiosk, fault, key string, at time.Time) OpenRequest {
	return OpenRequest{Kiosk: kiosk, Site: "s1", District: "d1", Provider: "p1", Fault: fault, Category: "hardware",
		Severity: "moderate", Source: "alert", Channel: "system", Actor: "kioskmon", At: at, AlertKey: key}
}

func TestLifecycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		inc, created, err := l.OpenIncident(ctx, alertOpen("k1", "hw.paper_jam", "fp1@t0", t0))
		if err != nil || !created || inc.ID != 1 || inc.State != StateOpen {
			t.Fatalf("open: %+v created=%v err=%v", inc, created, err)
		}
		// The same alert again (the webhook after the sink), or another
		// alert of the same open fault: the same incident, no new event.
		for _, key := range []string{"fp1@t0", "fp2@t0"} {
			again, created, err := l.OpenIncident(ctx, alertOpen("k1", "hw.paper_jam", key, t0.Add(time.Minute)))
			if err != nil || created || again.ID != inc.ID {
				t.Fatalf("open %s again: %+v created=%v err=%v", key, again, created, err)
			}
		}
		// A citizen phones about it: recorded on the open incident.
		phoned := alertOpen("k1", "hw.paper_jam", "", t0.Add(2*time.Minute))
		phoned.Source, phoned.Channel, phoned.Actor = "person", "phone", "hotline"
		if _, created, err := l.OpenIncident(ctx, phoned); err != nil || created {
			t.Fatalf("report of an open fault: created=%v err=%v", created, err)
		}

		step := func(kind string, minutes int, data EventData, wantState string) {
			t.Helper()
			e, err := l.Record(ctx, inc.ID, Event{Kind: kind, At: t0.Add(time.Duration(minutes) * time.Minute), Actor: "wang.lei", Source: "api", Data: data})
			if err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
			got, _, err := l.Incident(ctx, inc.ID)
			if err != nil || got.State != wantState || e.Hash == "" {
				t.Fatalf("after %s: %+v (err %v), want state %s", kind, got, err, wantState)
			}
		}
		refuse := func(kind string, minutes int, data EventData, want error, wantMsg string) {
			t.Helper()
			_, err := l.Record(ctx, inc.ID, Event{Kind: kind, At: t0.Add(time.Duration(minutes) * time.Minute), Actor: "wang.lei", Source: "api", Data: data})
			if !errors.Is(err, want) || !strings.Contains(err.Error(), wantMsg) {
				t.Errorf("%s: %v, want %v with %q", kind, err, want, wantMsg)
			}
		}
		step(KindAcknowledged, 10, EventData{}, StateAcknowledged)
		refuse(KindAcknowledged, 11, EventData{}, ErrConflict, "incident 1 is acknowledged; acknowledged is not possible")
		refuse(KindDispatched, 12, EventData{}, ErrInvalid, "committed_arrival is required")
		step(KindDispatched, 12, EventData{CommittedArrival: t0.Add(2 * time.Hour)}, StateDispatched)
		refuse(KindArrived, 5, EventData{Proof: ProofAPI}, ErrInvalid, "before the incident's last event")
		step(KindArrived, 70, EventData{Proof: ProofServiceMode}, StateOnSite)
		refuse(KindPaused, 80, EventData{Reason: PauseForceMajeure}, ErrInvalid, "needs its approver")
		refuse(KindPaused, 80, EventData{Reason: "lunch"}, ErrInvalid, `reason "lunch" is not one of`)
		step(KindPaused, 80, EventData{Reason: PauseAwaitingParts}, StateOnSite)
		refuse(KindPaused, 81, EventData{Reason: PauseAwaitingParts}, ErrConflict, "(paused)")
		step(KindResumed, 200, EventData{}, StateOnSite)
		step(KindSeverity, 201, EventData{Severity: "urgent"}, StateOnSite)
		refuse(KindClosed, 202, EventData{Satisfaction: 5}, ErrConflict, "closed is not possible")
		step(KindResolved, 230, EventData{Reason: "repaired"}, StateResolved)
		refuse(KindSeverity, 235, EventData{Severity: "minor"}, ErrConflict, "incident 1 is resolved; severity_changed is not possible")
		refuse(KindClosed, 240, EventData{Satisfaction: 9}, ErrInvalid, "satisfaction 9")
		step(KindClosed, 24*60, EventData{Satisfaction: 4, Note: "follow-up call"}, StateClosed)
		refuse(KindSpare, 24*60+1, EventData{}, ErrConflict, "incident 1 is closed")
		if _, err := l.Record(ctx, 99, Event{Kind: KindAcknowledged, Actor: "a"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("event on a missing incident: %v", err)
		}

		got, events, err := l.Incident(ctx, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, e := range events {
			kinds = append(kinds, e.Kind)
		}
		want := "opened reported acknowledged dispatched arrived paused resumed severity_changed resolved closed"
		if strings.Join(kinds, " ") != want || got.Severity != "urgent" || !got.ResolvedAt.Equal(t0.Add(230*time.Minute)) {
			t.Errorf("events %q, severity %s, resolved %s; want %q, urgent, +230m", kinds, got.Severity, got.ResolvedAt, want)
		}
		// Resolved: the same fault again is a new incident.
		next, created, err := l.OpenIncident(ctx, alertOpen("k1", "hw.paper_jam", "fp1@t1", t0.Add(48*time.Hour)))
		if err != nil || !created || next.ID != 2 {
			t.Errorf("the fault again after resolution: %+v created=%v err=%v", next, created, err)
		}
		if n, err := l.Verify(ctx); err != nil || n != int64(len(events)+1) {
			t.Errorf("verify: %d events, %v", n, err)
		}
	})
}

func TestClearedFaultRecurs(t *testing.T) {
	eachBackend(t, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		inc, _, err := l.OpenIncident(ctx, alertOpen("k2", "net.link_down", "a@1", t0))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Record(ctx, inc.ID, Event{Kind: KindCleared, At: t0.Add(10 * time.Minute), Actor: "kioskmon", Source: "alert"}); err != nil {
			t.Fatal(err)
		}
		again, created, err := l.OpenIncident(ctx, alertOpen("k2", "net.link_down", "a@2", t0.Add(12*time.Minute)))
		if err != nil || created || again.ID != inc.ID || !again.ClearedAt.IsZero() {
			t.Fatalf("recurrence: %+v created=%v err=%v, want the same incident, no longer cleared", again, created, err)
		}
		open, err := l.Incidents(ctx, Filter{Open: true, Kiosk: "k2"})
		if err != nil || len(open) != 1 {
			t.Errorf("open incidents of k2: %v %v", open, err)
		}
	})
}

func TestVerifyDetectsTampering(t *testing.T) {
	eachBackend(t, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		for i := range 3 {
			inc, _, err := l.OpenIncident(ctx, alertOpen(fmt.Sprintf("k%d", i), "hw.paper_out", fmt.Sprintf("f%d", i), t0))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Record(ctx, inc.ID, Event{Kind: KindAcknowledged, At: t0.Add(time.Minute), Actor: "li.na", Source: "api"}); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := l.Verify(ctx); err != nil || n != 6 {
			t.Fatalf("verify an honest log: %d %v", n, err)
		}
		// Someone moves an acknowledgement earlier, straight in the database.
		if _, err := l.db.ExecContext(ctx, "UPDATE events SET at = at - 600000 WHERE seq = 4"); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Verify(ctx); !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "event 4") {
			t.Errorf("verify after editing event 4: %v", err)
		}
	})
}

func TestConcurrentWritersKeepOneChain(t *testing.T) {
	eachBackend(t, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 8 {
			wg.Go(func() {
				for i := range 10 {
					inc, _, err := l.OpenIncident(ctx, alertOpen(fmt.Sprintf("w%d-%d", w, i), "hw.paper_out", fmt.Sprintf("w%d-%d", w, i), t0))
					if err == nil {
						_, err = l.Record(ctx, inc.ID, Event{Kind: KindAcknowledged, At: t0.Add(time.Minute), Actor: "x", Source: "api"})
					}
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n, err := l.Verify(ctx); err != nil || n != 160 {
			t.Errorf("verify after 8 concurrent writers: %d events, %v", n, err)
		}
	})
}

// TestAcknowledgedEventsSurviveKill9 runs a writer in a child process,
// kills it with SIGKILL in the middle of writing, and checks that every
// event it was told was committed is in the ledger, chain intact.
func TestAcknowledgedEventsSurviveKill9(t *testing.T) {
	if dsn := os.Getenv("KIOSKMON_LEDGER_CHILD"); dsn != "" {
		childWriter(dsn, os.Getenv("KIOSKMON_LEDGER_DIR"))
		return
	}
	eachBackend(t, func(t *testing.T, l *Ledger) {
		dsn, dir := "sqlite", t.TempDir()
		if l.Backend() == "postgres" {
			dsn = l.dsnForChild(t)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestAcknowledgedEventsSurviveKill9$")
		cmd.Env = append(os.Environ(), "KIOSKMON_LEDGER_CHILD="+dsn, "KIOSKMON_LEDGER_DIR="+dir)
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := 0
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "acked ")); err == nil {
				acked = n
				if acked >= 40 {
					break
				}
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if acked < 40 {
			t.Fatalf("the writer acknowledged only %d incidents", acked)
		}
		reopened := l
		if l.Backend() == "sqlite" {
			var err error
			if reopened, err = Open(context.Background(), "", dir); err != nil {
				t.Fatal(err)
			}
			defer reopened.Close()
		}
		n, err := reopened.Verify(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		all, err := reopened.Incidents(context.Background(), Filter{Limit: 100000})
		if err != nil || len(all) < acked || n < int64(2*acked) {
			t.Errorf("after kill -9: %d incidents and %d events for %d acknowledged (err %v)", len(all), n, acked, err)
		}
	})
}

// childWriter opens incidents and acknowledges them, printing each commit.
func childWriter(dsn, dir string) {
	if dsn == "sqlite" {
		dsn = ""
	}
	l, err := Open(context.Background(), dsn, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for i := 1; ; i++ {
		inc, _, err := l.OpenIncident(context.Background(), alertOpen(fmt.Sprintf("k%d", i), "hw.paper_out", fmt.Sprint(i), t0))
		if err == nil {
			_, err = l.Record(context.Background(), inc.ID, Event{Kind: KindAcknowledged, At: t0.Add(time.Minute), Actor: "x", Source: "api"})
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("acked %d\n", i)
	}
}

// dsnForChild is the DSN the test's PostgreSQL ledger was opened with.
func (l *Ledger) dsnForChild(t *testing.T) string {
	t.Helper()
	var port int
	if err := l.db.QueryRow("SELECT inet_server_port()").Scan(&port); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("postgres://kioskmon@127.0.0.1:%d/postgres?sslmode=disable", port)
}
