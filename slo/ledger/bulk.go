package ledger

import (
	"context"
	"database/sql"
	"fmt"
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
