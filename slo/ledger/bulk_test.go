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
		at := t0.AddDate(0, 0, 10*i) // 2 Oct, 12 Oct, ... 11 Nov
		hist = append(hist, History{Open: personOpen(fmt.Sprintf("k%d", i), "hw.paper_out", at),
			Events: []Event{{Kind: KindAcknowledged, At: at.Add(time.Minute), Actor: "li", Source: "api"}}})
	}
	if _, err := l.Import(ctx, hist); err != nil {
		t.Fatal(err)
	}
	monthFrom, monthTo := time.Date(2026, 10, 10, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	scan := func() ([]string, ChainCheck, error) {
		var got []string
		c, err := l.ScanChecked(ctx, monthFrom, monthTo, func(e Event) error {
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

// importOneByOne is Import as it was before it batched its inserts: each
// incident inserted open, its events inserted one statement each, then the
// incident updated to where they leave it. TestImportStoresWhatOneByOneDoes
// holds Import to the rows it stores.
func importOneByOne(ctx context.Context, l *Ledger, histories []History) ([]int64, error) {
	var ids []int64
	err := l.write(ctx, func(tx *sql.Tx, h *head) error {
		now := l.now().UTC()
		for i, hist := range histories {
			if err := hist.Open.check(now); err != nil {
				return fmt.Errorf("history %d: %w", i, err)
			}
			if hist.Open.AlertKey != "" {
				return fmt.Errorf("%w: history %d: imported incidents carry no alert key", ErrInvalid, i)
			}
			inc, err := insertIncident(ctx, tx, h, hist.Open, now)
			if err != nil {
				return fmt.Errorf("history %d: %w", i, err)
			}
			for _, e := range hist.Events {
				e.Incident, e.RecordedAt = inc.ID, now
				e.At = e.At.UTC()
				if err := apply(&inc, &e); err != nil {
					return fmt.Errorf("history %d: %w", i, err)
				}
				if err := appendEvent(ctx, tx, h, &e); err != nil {
					return err
				}
			}
			if err := l.saveIncident(ctx, tx, &inc); err != nil {
				return err
			}
			ids = append(ids, inc.ID)
		}
		return nil
	})
	return ids, err
}

// mixedHistories is n incidents of every lifecycle: left open, paused and
// resumed, cleared and recurred, severity changed, resolved, closed; on
// few kiosks, so that a kiosk's fault is often opened again once resolved.
// Their events vary in number, so that batches end mid-incident.
func mixedHistories(n int) []History {
	ev := func(kind string, at time.Time, d EventData) Event {
		return Event{Kind: kind, At: at, Actor: "eng-7", Source: "itsm", Data: d}
	}
	var hist []History
	for i := range n {
		at := t0.Add(time.Duration(i) * 17 * time.Minute).In(time.FixedZone("CST", 8*3600))
		o := personOpen(fmt.Sprintf("k%d", i%40), []string{"hw.paper_out", "hw.printer"}[i%2], at)
		step := func(m int) time.Time { return at.Add(time.Duration(m) * time.Minute) }
		var events []Event
		switch i % 7 {
		case 0: // opened, nothing else
		case 1:
			events = []Event{ev(KindAcknowledged, step(3), EventData{}), ev(KindResolved, step(40), EventData{Note: "reset \"it\" 好"})}
		case 2:
			events = []Event{ev(KindReported, step(1), EventData{Channel: "wechat"}),
				ev(KindDispatched, step(5), EventData{CommittedArrival: step(125)}),
				ev(KindArrived, step(60), EventData{Proof: ProofServiceMode}),
				ev(KindPaused, step(70), EventData{Reason: PauseAwaitingParts}),
				ev(KindResumed, step(400), EventData{}),
				ev(KindSpare, step(410), EventData{}),
				ev(KindResolved, step(420), EventData{}),
				ev(KindClosed, step(1860), EventData{Satisfaction: 4})}
		case 3:
			events = []Event{ev(KindCleared, step(2), EventData{}), ev(KindRecurred, step(9), EventData{AlertKey: "x@y"}),
				ev(KindSeverity, step(10), EventData{Severity: "urgent"}), ev(KindCleared, step(30), EventData{})}
		case 4:
			events = []Event{ev(KindPaused, step(1), EventData{Reason: PauseForceMajeure, Approver: "chen"}),
				ev(KindResolved, step(90), EventData{Reason: "remote"})}
		case 5:
			events = []Event{ev(KindAcknowledged, step(3), EventData{}), ev(KindResolved, step(4), EventData{}),
				ev(KindClosed, step(5), EventData{Satisfaction: 1})}
		case 6:
			events = []Event{ev(KindResolved, step(0), EventData{})}
		}
		if i%7 == 0 || i%7 == 3 {
			// Left open: no other incident of the kiosk and fault may open.
			o.Kiosk = fmt.Sprintf("open-%d", i)
		}
		hist = append(hist, History{Open: o, Events: events})
	}
	return hist
}

// dumpLedger is every row of the ledger's tables, each value with its type.
func dumpLedger(t *testing.T, l *Ledger) []string {
	t.Helper()
	var out []string
	for _, q := range []string{
		"SELECT * FROM ledger_head",
		"SELECT * FROM incidents ORDER BY id",
		"SELECT * FROM events ORDER BY seq",
	} {
		rows, err := l.db.QueryContext(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for i, v := range vals {
				if raw, ok := v.([]byte); ok {
					v = string(raw)
				}
				fmt.Fprintf(&b, "%s=%T:%v ", cols[i], v, v)
			}
			out = append(out, b.String())
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return out
}

// TestImportStoresWhatOneByOneDoes: Import, which inserts thousands of rows
// a statement and each incident once as its events leave it, stores the
// very rows (values and types) that inserting them one at a time stored,
// on a ledger that already holds incidents; the chain verifies and the
// incidents read back alike.
func TestImportStoresWhatOneByOneDoes(t *testing.T) {
	eachBackend(t, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		l.now = func() time.Time { return time.Date(2026, 12, 1, 3, 4, 5, 678_000_000, time.UTC) }
		hist := mixedHistories(2*importIncidentRows + 321)
		fill := func(do func(context.Context, *Ledger, []History) ([]int64, error)) ([]string, []string) {
			t.Helper()
			for _, q := range []string{"DELETE FROM events", "DELETE FROM incidents",
				"UPDATE ledger_head SET last_seq = 0, last_hash = '', last_incident = 0"} {
				if _, err := l.db.ExecContext(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			if _, _, err := l.OpenIncident(ctx, alertOpen("k0", "hw.paper_jam", "k0@x", t0)); err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, part := range [][]History{hist[:5], hist[5:]} {
				got, err := do(ctx, l, part)
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, got...)
			}
			if n, err := l.Verify(ctx); err != nil || n != int64(len(dumpLedger(t, l))-1-len(hist)-1) {
				t.Fatalf("Verify: %d events, %v", n, err)
			}
			var read []string
			for _, id := range ids {
				inc, events, err := l.Incident(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				read = append(read, fmt.Sprintf("%+v %+v", inc, events))
			}
			return dumpLedger(t, l), read
		}
		wantRows, wantRead := fill(importOneByOne)
		gotRows, gotRead := fill(func(ctx context.Context, l *Ledger, h []History) ([]int64, error) { return l.Import(ctx, h) })
		if len(gotRows) != len(wantRows) || len(gotRead) != len(wantRead) {
			t.Fatalf("%d rows, %d incidents read back; want %d, %d", len(gotRows), len(gotRead), len(wantRows), len(wantRead))
		}
		for i := range wantRows {
			if gotRows[i] != wantRows[i] {
				t.Fatalf("row %d:\n got %s\nwant %s", i, gotRows[i], wantRows[i])
			}
		}
		for i := range wantRead {
			if gotRead[i] != wantRead[i] {
				t.Fatalf("incident %d read back:\n got %s\nwant %s", i, gotRead[i], wantRead[i])
			}
		}
	})
}

// TestImportRefusesAnIncidentOfAnOpenFault: an incident whose kiosk and
// fault an incident holds open, from before the import or earlier in it,
// is refused even if its own events resolve it (as inserting it open
// refused it), and nothing of the import is stored.
func TestImportRefusesAnIncidentOfAnOpenFault(t *testing.T) {
	eachBackend(t, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		if _, _, err := l.OpenIncident(ctx, alertOpen("k1", "hw.paper_out", "k1@x", t0)); err != nil {
			t.Fatal(err)
		}
		resolved := func(kiosk string, at time.Time) History {
			return History{Open: personOpen(kiosk, "hw.paper_out", at),
				Events: []Event{{Kind: KindResolved, At: at.Add(time.Hour), Actor: "li", Source: "api"}}}
		}
		open := func(kiosk string, at time.Time) History { return History{Open: personOpen(kiosk, "hw.paper_out", at)} }
		f := func(hist []History, wantErr string) {
			t.Helper()
			_, errOld := importOneByOne(ctx, l, hist)
			_, err := l.Import(ctx, hist)
			if (errOld == nil) != (err == nil) {
				t.Fatalf("one by one: %v; Import: %v", errOld, err)
			}
			if wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("Import: %v, want ErrConflict naming %q", err, wantErr)
			}
		}
		f([]History{resolved("k2", t0), resolved("k1", t0)}, "history 1 (hw.paper_out on k1)")
		f([]History{open("k3", t0), resolved("k3", t0.Add(time.Hour))}, "history 1 (hw.paper_out on k3)")
		f([]History{open("k3", t0), open("k3", t0.Add(time.Hour))}, "history 1 (hw.paper_out on k3)")
		if n, err := l.Verify(ctx); err != nil || n != 1 {
			t.Fatalf("refused imports left %d events: %v", n, err)
		}
		// Once resolved, the kiosk's fault may open again.
		f([]History{resolved("k3", t0), resolved("k3", t0.Add(time.Hour))}, "")
		if _, err := l.Import(ctx, []History{resolved("k3", t0), open("k3", t0.Add(time.Hour))}); err != nil {
			t.Fatal(err)
		}
		f([]History{resolved("k3", t0.Add(2*time.Hour))}, "history 0 (hw.paper_out on k3)")
	})
}
