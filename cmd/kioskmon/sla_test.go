package main

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskmon/kioskmon/slo/ledger"
)

// TestSLAVerify: `kioskmon sla verify` passes an intact ledger and names
// the event whose stored hash was edited, which a report does not read.
func TestSLAVerify(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := ledger.Open(ctx, path, "")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 10, 12, 9, 0, 0, 0, time.UTC)
	_, err = l.Import(ctx, []ledger.History{{
		Open: ledger.OpenRequest{Kiosk: "k1", Site: "s1", District: "d1", Provider: "p1", Fault: "hw.paper_out",
			Category: "consumables", Severity: "minor", Source: "person", Channel: "phone", Actor: "li", At: at},
		Events: []ledger.Event{{Kind: ledger.KindAcknowledged, At: at.Add(time.Minute), Actor: "li", Source: "api"}},
	}})
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	verify := func() (string, error) {
		var stdout, stderr bytes.Buffer
		err := runSLA([]string{"verify", "--ledger", path}, &stdout, &stderr)
		return stdout.String(), err
	}
	if out, err := verify(); err != nil || !strings.HasPrefix(out, "2 events verified") {
		t.Fatalf("intact ledger: %q, %v", out, err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `UPDATE events SET hash = 'beef' || substr(hash, 5) WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	if _, err := verify(); err == nil || !strings.Contains(err.Error(), "event 2") {
		t.Fatalf("edited hash: %v, want the failure naming event 2", err)
	}
}
