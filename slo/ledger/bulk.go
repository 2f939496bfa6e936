package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// History is a whole incident: how it opened and what happened after.
type History struct {
	Open   OpenRequest
	Events []Event
}

// Rows per multi-row INSERT of an import. One statement a row cost a round
// trip each (a month of a million incidents took 12 minutes on PostgreSQL
// over loopback); a statement of thousands of rows costs one. Each stays
// well under the bind parameters a statement may carry: 65535 in
// PostgreSQL, 32766 in SQLite as modernc.org/sqlite builds it.
const (
	importIncidentRows = 1000 // of incidentColumns: 18000 parameters
	importEventRows    = 2000 // of eventColumns: 20000 parameters
)

const (
	incidentColumns = 18
	eventColumns    = 10
)

// Import appends whole incidents in one transaction, each opened and then
// taken through its events under the same lifecycle checks as Record, on
// the same hash chain: for bringing history over from another system, and
// for benchmarks. Either every incident is imported or none is. It returns
// the new incidents' ids.
//
// The rows stored are those OpenIncident and Record would store for the
// same incidents and events, one at a time, at the same instant; but an
// incident is taken through its events in memory and inserted once, as
// they leave it, and rows are inserted thousands to a statement.
func (l *Ledger) Import(ctx context.Context, histories []History) ([]int64, error) {
	ids := make([]int64, 0, len(histories))
	err := l.write(ctx, func(tx *sql.Tx, h *head) error {
		now := l.now().UTC()
		b := bulkInsert{tx: tx, postgres: l.postgres}
		defer b.close()
		// The open keys of the imported incidents left open. Inserted one at
		// a time, an incident whose kiosk and fault another holds open is
		// refused by open_key's uniqueness when it is inserted, even if its
		// events then resolve it; inserted as its events leave it, it must
		// be refused here (and for the incidents open before the import,
		// by openKeysHeld).
		held := map[string]bool{}
		for start := 0; start < len(histories); start += importIncidentRows {
			group := histories[start:min(start+importIncidentRows, len(histories))]
			before, err := openKeysHeld(ctx, tx, l.postgres, group)
			if err != nil {
				return err
			}
			for j, hist := range group {
				i := start + j
				if err := hist.Open.check(now); err != nil {
					return fmt.Errorf("history %d: %w", i, err)
				}
				if hist.Open.AlertKey != "" {
					return fmt.Errorf("%w: history %d: imported incidents carry no alert key", ErrInvalid, i)
				}
				key := openKey(hist.Open.Kiosk, hist.Open.Fault)
				if held[key] || before[key] {
					return fmt.Errorf("history %d (%s on %s): %w: an incident of this kiosk and fault is open",
						i, hist.Open.Fault, hist.Open.Kiosk, ErrConflict)
				}
				inc, opened := newIncident(h, hist.Open, now)
				if err := b.event(h, &opened); err != nil {
					return err
				}
				for _, e := range hist.Events {
					e.Incident, e.RecordedAt = inc.ID, now
					e.At = e.At.UTC()
					if err := notInFuture(e.Kind, e.At, now); err != nil {
						return fmt.Errorf("history %d (%s on %s): %w", i, hist.Open.Fault, hist.Open.Kiosk, err)
					}
					if err := apply(&inc, &e); err != nil {
						return fmt.Errorf("history %d (%s on %s): %w", i, hist.Open.Fault, hist.Open.Kiosk, err)
					}
					if err := b.event(h, &e); err != nil {
						return err
					}
				}
				b.incident(&inc)
				if heldOpenKey(&inc) != nil {
					held[key] = true
				}
				ids = append(ids, inc.ID)
			}
			// The events refer to their incidents, which must be in first.
			if err := b.flushIncidents(ctx); err != nil {
				return err
			}
			if err := b.flushEvents(ctx, false); err != nil {
				return err
			}
		}
		return b.flushEvents(ctx, true)
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// openKeysHeld returns which of the open keys of group's incidents an
// incident in the ledger holds.
func openKeysHeld(ctx context.Context, tx *sql.Tx, postgres bool, group []History) (map[string]bool, error) {
	keys := make([]any, 0, len(group))
	seen := make(map[string]bool, len(group))
	for _, hist := range group {
		k := openKey(hist.Open.Kiosk, hist.Open.Fault)
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	held := map[string]bool{}
	if len(keys) == 0 {
		return held, nil
	}
	var q strings.Builder
	q.WriteString("SELECT open_key FROM incidents WHERE open_key IN ")
	writeValues(&q, postgres, len(keys), 1)
	rows, err := tx.QueryContext(ctx, q.String(), keys...)
	if err != nil {
		return nil, fmt.Errorf("ledger: read the open incidents: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("ledger: read the open incidents: %w", err)
		}
		held[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: read the open incidents: %w", err)
	}
	return held, nil
}

// bulkInsert collects an import's rows and inserts them many to a
// statement. The statement of a whole batch is prepared once per import.
type bulkInsert struct {
	tx                        *sql.Tx
	postgres                  bool
	incidents, events         []any // the rows' values, in column order
	fullIncidents, fullEvents *sql.Stmt
}

// event chains e after h and adds it.
func (b *bulkInsert) event(h *head, e *Event) error {
	data, err := chainEvent(h, e)
	if err != nil {
		return err
	}
	b.events = eventRow(b.events, e, data)
	return nil
}

// incident adds inc as its events left it: the row insertIncident and then
// saveIncident would leave. Imported incidents carry no alert key.
func (b *bulkInsert) incident(inc *Incident) {
	b.incidents = append(b.incidents, inc.ID, inc.Kiosk, inc.Site, inc.District, inc.Provider, inc.Fault, inc.Category,
		inc.Severity, inc.Source, inc.Channel, heldOpenKey(inc), inc.State, pausedColumn(inc), inc.OpenedAt.UnixMilli(),
		nullTime(inc.ClearedAt), inc.UpdatedAt.UnixMilli(), nullTime(inc.ResolvedAt), nullTime(inc.ClosedAt))
}

const (
	insertIncidents = `INSERT INTO incidents (id, kiosk, site, district, provider, fault, category, severity, source, channel,
		open_key, state, paused, opened_at, cleared_at, updated_at, resolved_at, closed_at) VALUES `
	insertEvents = `INSERT INTO events (seq, incident_id, kind, at, recorded_at, actor, source, data, prev_hash, hash) VALUES `
)

// flushIncidents inserts every incident added.
func (b *bulkInsert) flushIncidents(ctx context.Context) error {
	var err error
	b.incidents, err = b.flush(ctx, b.incidents, insertIncidents, incidentColumns, importIncidentRows, &b.fullIncidents, true)
	if err != nil {
		return fmt.Errorf("ledger: insert incidents: %w", err)
	}
	return nil
}

// flushEvents inserts the events added, in whole batches unless all.
func (b *bulkInsert) flushEvents(ctx context.Context, all bool) error {
	var err error
	b.events, err = b.flush(ctx, b.events, insertEvents, eventColumns, importEventRows, &b.fullEvents, all)
	if err != nil {
		return fmt.Errorf("ledger: insert events: %w", err)
	}
	return nil
}

// flush inserts the rows in args, of columns values each, batch rows to a
// statement through *full (prepared on first use); the rows left over,
// fewer than a batch, go in a statement of their own if all, else stay.
// It returns what stays, in args' array.
func (b *bulkInsert) flush(ctx context.Context, args []any, insert string, columns, batch int, full **sql.Stmt, all bool) ([]any, error) {
	n := batch * columns
	done := 0
	for ; len(args)-done >= n; done += n {
		if *full == nil {
			stmt, err := b.tx.PrepareContext(ctx, b.values(insert, columns, batch))
			if err != nil {
				return nil, err
			}
			*full = stmt
		}
		if _, err := (*full).ExecContext(ctx, args[done:done+n]...); err != nil {
			return nil, err
		}
	}
	if all && done < len(args) {
		if _, err := b.tx.ExecContext(ctx, b.values(insert, columns, (len(args)-done)/columns), args[done:]...); err != nil {
			return nil, err
		}
		done = len(args)
	}
	// Clear the values inserted, so that the strings they hold can go.
	rest := copy(args, args[done:])
	clear(args[rest:])
	return args[:rest], nil
}

// values is insert followed by rows tuples of columns parameters.
func (b *bulkInsert) values(insert string, columns, rows int) string {
	var q strings.Builder
	q.Grow(len(insert) + rows*columns*8)
	q.WriteString(insert)
	writeValues(&q, b.postgres, columns, rows)
	return q.String()
}

// writeValues writes rows tuples of columns parameters: ($1,$2),($3,$4)...
// for PostgreSQL, (?,?),(?,?)... for SQLite. SQLite keeps the names of
// numbered parameters in a list it reads from the start to name each one,
// and modernc.org/sqlite names every parameter it binds: with $n, binding
// a statement of 20000 parameters took most of a second, and the import
// ran ten times slower than with a statement a row. Unnumbered parameters
// have no name to look up.
func writeValues(q *strings.Builder, postgres bool, columns, rows int) {
	p := 1
	for r := range rows {
		if r > 0 {
			q.WriteByte(',')
		}
		q.WriteByte('(')
		for c := range columns {
			if c > 0 {
				q.WriteByte(',')
			}
			if postgres {
				q.WriteByte('$')
				q.WriteString(strconv.Itoa(p))
			} else {
				q.WriteByte('?')
			}
			p++
		}
		q.WriteByte(')')
	}
}

func (b *bulkInsert) close() {
	for _, stmt := range []*sql.Stmt{b.fullIncidents, b.fullEvents} {
		if stmt != nil {
			stmt.Close()
		}
	}
}
