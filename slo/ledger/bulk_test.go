package ledger

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pressly/goose/v3"
)

func personOpen(kiosk, fault string, at time.Time) OpenRequest {
	o := alertOpen(kiosk, fault, "", at)
	o.Source, o.Channel, o.Actor = "person", "phone", "li.wei"
	return o
}

func TestImport(t *testing.T) {
	eachBackend(t, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		ev := func(kind string, at time.Time, d EventData) Event {
			return Event{Kind: kind, At: at, Actor: "import", Source: "itsm", Data: d}
		}
		good := []History{
			{Open: personOpen("k1", "hw.paper_out", t0), Events: []Event{
				ev(KindAcknowledged, t0.Add(10*time.Minute), EventData{}),
				ev(KindArrived, t0.Add(time.Hour), EventData{Proof: ProofAPI}),
				ev(KindResolved, t0.Add(2*time.Hour), EventData{}),
			}},
			{Open: personOpen("k2", "hw.paper_out", t0.Add(time.Minute))},
			{Open: personOpen("k3", "hw.paper_out", t0.AddDate(0, 1, 0))}, // next month
		}
		// An impossible history fails the whole batch: nothing is imported.
		bad := append(good[:2:2], History{Open: personOpen("k4", "hw.paper_out", t0), Events: []Event{
			ev(KindClosed, t0.Add(time.Hour), EventData{Satisfaction: 5})}})
		if _, err := l.Import(ctx, bad); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "history 2") {
			t.Fatalf("import of an impossible history: %v", err)
		}
		if incs, _ := l.Incidents(ctx, Filter{}); len(incs) != 0 {
			t.Fatalf("a failed import left %d incidents", len(incs))
		}
		ids, err := l.Import(ctx, good)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 3 {
			t.Fatalf("ids %v", ids)
		}
		// Imported incidents continue the chain: a live incident comes after.
		if _, _, err := l.OpenIncident(ctx, alertOpen("k9", "hw.paper_jam", "k9@x", t0.Add(3*time.Minute))); err != nil {
			t.Fatal(err)
		}
		if n, err := l.Verify(ctx); err != nil || n != 7 {
			t.Fatalf("Verify: %d events, %v", n, err)
		}
		var got []string
		incs, err := l.Incidents(ctx, Filter{From: t0.Add(-time.Hour), To: t0.AddDate(0, 0, 7)})
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(incs, func(a, b Incident) int { return cmp.Compare(a.ID, b.ID) })
		for _, inc := range incs {
			_, events, err := l.Incident(ctx, inc.ID)
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, e := range events {
				kinds = append(kinds, e.Kind)
			}
			got = append(got, inc.Kiosk+":"+inc.State+":"+strings.Join(kinds, ","))
		}
		want := "k1:resolved:opened,acknowledged,arrived,resolved k2:open:opened k9:open:opened"
		if strings.Join(got, " ") != want {
			t.Fatalf("imported:\n got %s\nwant %s", strings.Join(got, " "), want)
		}
	})
}

// TestScanCheckedFindsTampering: a checked scan hands over the period's
// events and fails on an edited, removed or appended-outside event.
func TestScanCheckedFindsTampering(t *testing.T) {
	eachBackend(t, testScanChecked)
}

func testScanChecked(t *testing.T, l *Ledger) {
	ctx := context.Background()
	var hist []History
	for i := range 5 {
		at := t0.AddDate(0, 0, 10*i) // 2 Nov, 12 Nov, ... 12 Dec
		hist = append(hist, History{Open: personOpen(fmt.Sprintf("k%d", i), "hw.paper_out", at),
			Events: []Event{{Kind: KindAcknowledged, At: at.Add(time.Minute), Actor: "li", Source: "api"}}})
	}
	if _, err := l.Import(ctx, hist); err != nil {
		t.Fatal(err)
	}
	novFrom, novTo := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	scan := func() ([]string, ChainCheck, error) {
		var got []string
		c, err := l.ScanChecked(ctx, novFrom, novTo, func(e Event) error {
			got = append(got, fmt.Sprintf("%d:%s:%s", e.Seq, e.Kind, e.Data.Kiosk))
			return nil
		})
		return got, c, err
	}
	got, c, err := scan()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "3:opened:k1 4:acknowledged: 5:opened:k2 6:acknowledged:" || c.FromSeq != 3 || c.Events != 8 {
		t.Fatalf("scan: %v %+v", got, c)
	}
	for _, tc := range []struct{ name, tamper, undo, want string }{
		{"edited", `UPDATE events SET actor = 'someone' WHERE seq = 6`, `UPDATE events SET actor = 'li' WHERE seq = 6`,
			"event 6: its content"},
		{"the last removed", `DELETE FROM events WHERE seq = 10`, "", "the head says 10 events, the log ends at 9"},
		{"one removed", `DELETE FROM events WHERE seq = 8`, "", "event 9: it does not follow event 7"},
	} {
		if _, err := l.db.ExecContext(ctx, tc.tamper); err != nil {
			t.Fatal(err)
		}
		if _, _, err := scan(); !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrTampered naming %q", tc.name, err, tc.want)
		}
		if tc.undo != "" {
			if _, err := l.db.ExecContext(ctx, tc.undo); err != nil {
				t.Fatal(err)
			}
			if _, _, err := scan(); err != nil {
				t.Fatalf("after undoing %s: %v", tc.name, err)
			}
		}
	}
}

// TestDataDecoderMatchesEncodingJSON: the fast decoder reads every field as
// encoding/json does, and refuses what it refuses.
func TestDataDecoderMatchesEncodingJSON(t *testing.T) {
	dec := NewDataDecoder()
	full := EventData{Kiosk: "k1", Site: "s1", District: "d1", Provider: "p1", Fault: "hw.paper_out", Category: "hardware",
		Severity: "urgent", Channel: "phone", AlertKey: "k1/hw.paper_out@2026-11-02T09:00:00Z",
		CommittedArrival: time.Date(2026, 11, 2, 11, 30, 15, 0, time.UTC), Proof: ProofAPI, Reason: PauseForceMajeure,
		Approver: "chen", Satisfaction: 4, Note: "typhoon \"Koinu\" 台风"}
	for _, d := range []EventData{full, {}, {Satisfaction: 5}, {CommittedArrival: time.Date(2026, 1, 1, 0, 0, 0, 5, time.FixedZone("", 8*3600))}} {
		raw, _ := json.Marshal(d)
		var want, got Event
		if err := json.Unmarshal(raw, &want.Data); err != nil {
			t.Fatal(err)
		}
		if err := dec.Decode(raw, &got); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if !got.Data.CommittedArrival.Equal(want.Data.CommittedArrival) {
			t.Errorf("%s: committed arrival %v, want %v", raw, got.Data.CommittedArrival, want.Data.CommittedArrival)
		}
		got.Data.CommittedArrival, want.Data.CommittedArrival = time.Time{}, time.Time{}
		if got.Data != want.Data {
			t.Errorf("%s:\n got %+v\nwant %+v", raw, got.Data, want.Data)
		}
	}
	for _, bad := range []string{`[]`, `{"satisfaction":"5"}`, `{"kiosk":1}`, `{"committed_arrival":"soon"}`, `{`} {
		if err := dec.Decode([]byte(bad), &Event{}); err == nil {
			t.Errorf("%s decoded", bad)
		}
	}
}

// TestEventsKeyedBySeqMigration: a ledger of the first schema, whose
// events.seq SQLite kept in an index of its own, is rebuilt by migration 2
// with seq as the rowid, every event and the chain intact.
func TestEventsKeyedBySeqMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v1, err := fs.ReadFile(migrations, "migrations/00001_ledger.sql")
	if err != nil {
		t.Fatal(err)
	}
	first, err := goose.NewProvider(goose.DialectSQLite3, db, fstest.MapFS{"00001_ledger.sql": {Data: v1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Up(ctx); err != nil {
		t.Fatal(err)
	}
	l := &Ledger{db: db, now: time.Now}
	var hist []History
	for i := range 20 {
		at := t0.Add(time.Duration(i) * time.Hour)
		hist = append(hist, History{Open: personOpen(fmt.Sprintf("k%d", i), "hw.paper_out", at),
			Events: []Event{{Kind: KindAcknowledged, At: at.Add(time.Minute), Actor: "li", Source: "api"}}})
	}
	if _, err := l.Import(ctx, hist); err != nil {
		t.Fatal(err)
	}
	pk := func() string {
		var typ string
		if err := db.QueryRowContext(ctx, "SELECT type FROM pragma_table_info('events') WHERE name = 'seq'").Scan(&typ); err != nil {
			t.Fatal(err)
		}
		return typ
	}
	if got := pk(); got != "BIGINT" {
		t.Fatalf("before: seq is %s", got)
	}
	if err := l.migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if got := pk(); got != "INTEGER" {
		t.Fatalf("after: seq is %s, want INTEGER (the rowid)", got)
	}
	if n, err := l.Verify(ctx); err != nil || n != 40 {
		t.Fatalf("verify after the migration: %d events, %v", n, err)
	}
	c, err := l.ScanChecked(ctx, t0, t0.AddDate(0, 1, 0), func(Event) error { return nil })
	if err != nil || c.Events != 40 {
		t.Fatalf("checked scan after the migration: %+v %v", c, err)
	}
	rows, err := db.QueryContext(ctx, "EXPLAIN QUERY PLAN SELECT seq, data FROM events WHERE seq >= 1 ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(detail, "INDEX") {
			t.Errorf("the chain is read through an index: %s", detail)
		}
	}
}

// TestOpenIncidentsListedByIndex: listing the open incidents, which the
// intake and the breach warnings do every minute, reads the partial index
// of open incidents, not every incident.
func TestOpenIncidentsListedByIndex(t *testing.T) {
	ctx := context.Background()
	l, err := Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var hist []History
	for i := range 30 {
		at := t0.Add(time.Duration(i) * time.Hour)
		h := History{Open: personOpen(fmt.Sprintf("k%d", i), "hw.paper_out", at)}
		if i%10 != 0 { // every tenth stays open
			h.Events = []Event{{Kind: KindResolved, At: at.Add(time.Hour), Actor: "li", Source: "api"}}
		}
		hist = append(hist, h)
	}
	if _, err := l.Import(ctx, hist); err != nil {
		t.Fatal(err)
	}
	open, err := l.Incidents(ctx, Filter{Open: true})
	if err != nil || len(open) != 3 {
		t.Fatalf("open incidents: %d, %v; want 3", len(open), err)
	}
	rows, err := l.db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+selectIncident+" WHERE open_key IS NOT NULL ORDER BY opened_at DESC, id DESC LIMIT 1000")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if p := strings.Join(plan, "; "); !strings.Contains(p, "incidents_open") {
		t.Errorf("the open incidents are listed without their index: %s", p)
	}
}
