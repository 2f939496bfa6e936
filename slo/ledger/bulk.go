package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// History is a whole incident: how it opened and what happened after.
type History struct {
	Open   OpenRequest
	Events []Event
}

// Import appends whole incidents in one transaction, each opened and then
// taken through its events under the same lifecycle checks as Record, on
// the same hash chain: for bringing history over from another system, and
// for benchmarks. Either every incident is imported or none is. It returns
// the new incidents' ids.
func (l *Ledger) Import(ctx context.Context, histories []History) ([]int64, error) {
	ids := make([]int64, 0, len(histories))
	err := l.write(ctx, func(tx *sql.Tx, h *head) error {
		now := l.now().UTC()
		stmt, err := tx.PrepareContext(ctx, insertEvent)
		if err != nil {
			return fmt.Errorf("ledger: prepare: %w", err)
		}
		defer stmt.Close()
		for i, hist := range histories {
			if err := hist.Open.check(); err != nil {
				return fmt.Errorf("history %d: %w", i, err)
			}
			if hist.Open.AlertKey != "" {
				return fmt.Errorf("%w: history %d: imported incidents carry no alert key", ErrInvalid, i)
			}
			inc, err := insertIncident(ctx, tx, h, hist.Open, now)
			if err != nil {
				return fmt.Errorf("history %d (%s on %s): %w", i, hist.Open.Fault, hist.Open.Kiosk, err)
			}
			for _, e := range hist.Events {
				e.Incident, e.RecordedAt = inc.ID, now
				e.At = e.At.UTC()
				if err := apply(&inc, &e); err != nil {
					return fmt.Errorf("history %d (%s on %s): %w", i, hist.Open.Fault, hist.Open.Kiosk, err)
				}
				if err := appendEventWith(ctx, tx, stmt, h, &e); err != nil {
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
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// Histories streams the incidents opened in [from, to), each with its whole
// event log, in incident order: what compliance is computed from. Only one
// incident's events are held at a time.
func (l *Ledger) Histories(ctx context.Context, from, to time.Time, fn func(Incident, []Event) error) error {
	incRows, err := l.db.QueryContext(ctx, selectIncident+" WHERE opened_at >= $1 AND opened_at < $2 ORDER BY id",
		from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return fmt.Errorf("ledger: read incidents: %w", err)
	}
	defer incRows.Close()
	evRows, err := l.db.QueryContext(ctx, `SELECT e.seq, e.incident_id, e.kind, e.at, e.recorded_at, e.actor, e.source, e.data,
		e.prev_hash, e.hash FROM events e JOIN incidents i ON e.incident_id = i.id
		WHERE i.opened_at >= $1 AND i.opened_at < $2 ORDER BY e.incident_id, e.seq`, from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return fmt.Errorf("ledger: read events: %w", err)
	}
	defer evRows.Close()
	var pending *Event // the first event of the next incident, read ahead
	var events []Event
	for incRows.Next() {
		inc, err := scanIncident(incRows)
		if err != nil {
			return err
		}
		events = events[:0]
		if pending != nil {
			if pending.Incident != inc.ID {
				return fmt.Errorf("ledger: events of incident %d out of order", pending.Incident)
			}
			events = append(events, *pending)
			pending = nil
		}
		for evRows.Next() {
			e, err := scanEvent(evRows)
			if err != nil {
				return err
			}
			if e.Incident != inc.ID {
				pending = &e
				break
			}
			events = append(events, e)
		}
		if err := fn(inc, events); err != nil {
			return err
		}
	}
	if err := incRows.Err(); err != nil {
		return fmt.Errorf("ledger: read incidents: %w", err)
	}
	return evRows.Err()
}
