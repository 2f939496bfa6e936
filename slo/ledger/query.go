package ledger

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

const selectIncident = `SELECT id, kiosk, site, district, provider, fault, category, severity, source, channel,
	COALESCE(alert_key, ''), state, paused, opened_at, updated_at, cleared_at, resolved_at, closed_at FROM incidents`

type rowScanner interface{ Scan(dest ...any) error }

func scanIncident(row rowScanner) (Incident, error) {
	var inc Incident
	var paused int
	var opened, updated int64
	var cleared, resolved, closed sql.NullInt64
	err := row.Scan(&inc.ID, &inc.Kiosk, &inc.Site, &inc.District, &inc.Provider, &inc.Fault, &inc.Category, &inc.Severity,
		&inc.Source, &inc.Channel, &inc.AlertKey, &inc.State, &paused, &opened, &updated, &cleared, &resolved, &closed)
	if errors.Is(err, sql.ErrNoRows) {
		return Incident{}, ErrNotFound
	}
	if err != nil {
		return Incident{}, fmt.Errorf("ledger: read incident: %w", err)
	}
	inc.Paused = paused != 0
	inc.OpenedAt, inc.UpdatedAt = fromMillis(opened), fromMillis(updated)
	inc.ClearedAt, inc.ResolvedAt, inc.ClosedAt = fromNull(cleared), fromNull(resolved), fromNull(closed)
	return inc, nil
}

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func fromNull(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMillis(v.Int64)
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func jsonData(d EventData) (string, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("ledger: encode event data: %w", err)
	}
	return string(b), nil
}

// Incident returns incident id and its events, oldest first.
func (l *Ledger) Incident(ctx context.Context, id int64) (Incident, []Event, error) {
	inc, err := scanIncident(l.db.QueryRowContext(ctx, selectIncident+" WHERE id = $1", id))
	if err != nil {
		return Incident{}, nil, fmt.Errorf("incident %d: %w", id, err)
	}
	events, err := l.events(ctx, "WHERE incident_id = $1 ORDER BY seq", id)
	return inc, events, err
}

// Filter selects incidents. Zero fields select all.
type Filter struct {
	Kiosk, Site, District, Provider, Fault, Severity, State string
	// Open: only incidents not resolved.
	Open bool
	// From, To: incidents opened in [From, To).
	From, To time.Time
	// Limit: at most this many, newest first (0: 1000).
	Limit int
}

// Incidents lists the incidents f selects, newest first.
func (l *Ledger) Incidents(ctx context.Context, f Filter) ([]Incident, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	for col, v := range map[string]string{"kiosk": f.Kiosk, "site": f.Site, "district": f.District, "provider": f.Provider,
		"fault": f.Fault, "severity": f.Severity, "state": f.State} {
		if v != "" {
			add(col+" = $%d", v)
		}
	}
	if f.Open {
		where = append(where, "open_key IS NOT NULL")
	}
	if !f.From.IsZero() {
		add("opened_at >= $%d", f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		add("opened_at < $%d", f.To.UnixMilli())
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	q := selectIncident
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	q += fmt.Sprintf(" ORDER BY opened_at DESC, id DESC LIMIT $%d", len(args))
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("ledger: list incidents: %w", err)
	}
	defer rows.Close()
	var out []Incident
	for rows.Next() {
		inc, err := scanIncident(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, inc)
	}
	return out, rows.Err()
}

// Events returns the events of [from, to) by event time, in chain order,
// calling fn for each: a month of a large fleet is streamed, not loaded.
func (l *Ledger) Events(ctx context.Context, from, to time.Time, fn func(Event) error) error {
	rows, err := l.db.QueryContext(ctx, selectEvents+" WHERE at >= $1 AND at < $2 ORDER BY seq", from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return fmt.Errorf("ledger: read events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

const selectEvents = `SELECT seq, incident_id, kind, at, recorded_at, actor, source, data, prev_hash, hash FROM events`

func scanEvent(row rowScanner) (Event, error) {
	var e Event
	var at, recorded int64
	var data string
	if err := row.Scan(&e.Seq, &e.Incident, &e.Kind, &at, &recorded, &e.Actor, &e.Source, &data, &e.PrevHash, &e.Hash); err != nil {
		return Event{}, fmt.Errorf("ledger: read event: %w", err)
	}
	e.At, e.RecordedAt = fromMillis(at), fromMillis(recorded)
	if err := json.Unmarshal([]byte(data), &e.Data); err != nil {
		return Event{}, fmt.Errorf("ledger: event %d data: %w", e.Seq, err)
	}
	return e, nil
}

func (l *Ledger) events(ctx context.Context, where string, args ...any) ([]Event, error) {
	rows, err := l.db.QueryContext(ctx, selectEvents+" "+where, args...)
	if err != nil {
		return nil, fmt.Errorf("ledger: read events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// ErrTampered is a broken hash chain: an event was edited, deleted or
// inserted outside the ledger.
var ErrTampered = errors.New("the event log's hash chain is broken")

// Verify walks the whole chain and replays the lifecycle, checking every
// hash, the head, and that the incidents table is what the events make of
// it. It returns the number of events checked.
func (l *Ledger) Verify(ctx context.Context) (int64, error) {
	rows, err := l.db.QueryContext(ctx, selectEvents+" ORDER BY seq")
	if err != nil {
		return 0, fmt.Errorf("ledger: read events: %w", err)
	}
	defer rows.Close()
	prev, n := "", int64(0)
	replayed := map[int64]*Incident{}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return n, err
		}
		n++
		if e.Seq != n || e.PrevHash != prev {
			return n, fmt.Errorf("%w at event %d: it does not follow event %d", ErrTampered, e.Seq, n-1)
		}
		want, err := chainHash(prev, &e)
		if err != nil {
			return n, err
		}
		if want != e.Hash {
			return n, fmt.Errorf("%w at event %d: its content does not match its hash", ErrTampered, e.Seq)
		}
		prev = e.Hash
		if e.Kind == KindOpened {
			d := e.Data
			replayed[e.Incident] = &Incident{ID: e.Incident, Kiosk: d.Kiosk, Site: d.Site, District: d.District, Provider: d.Provider,
				Fault: d.Fault, Category: d.Category, Severity: d.Severity, Channel: d.Channel, AlertKey: d.AlertKey, State: StateOpen,
				OpenedAt: e.At, UpdatedAt: e.At}
			continue
		}
		inc := replayed[e.Incident]
		if inc == nil {
			return n, fmt.Errorf("%w at event %d: incident %d was never opened", ErrTampered, e.Seq, e.Incident)
		}
		if err := apply(inc, &e); err != nil {
			return n, fmt.Errorf("%w at event %d: %v", ErrTampered, e.Seq, err)
		}
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	var headSeq int64
	var headHash string
	if err := l.db.QueryRowContext(ctx, "SELECT last_seq, last_hash FROM ledger_head WHERE id = 1").Scan(&headSeq, &headHash); err != nil {
		return n, fmt.Errorf("ledger: read the chain head: %w", err)
	}
	if headSeq != n || headHash != prev {
		return n, fmt.Errorf("%w: the head says %d events, the log has %d", ErrTampered, headSeq, n)
	}
	for id, want := range replayed {
		got, err := scanIncident(l.db.QueryRowContext(ctx, selectIncident+" WHERE id = $1", id))
		if err != nil {
			return n, fmt.Errorf("incident %d: %w", id, err)
		}
		if got.State != want.State || got.Severity != want.Severity || got.Paused != want.Paused || !got.ResolvedAt.Equal(want.ResolvedAt) ||
			!got.ClosedAt.Equal(want.ClosedAt) || got.Kiosk != want.Kiosk || got.Fault != want.Fault || !got.OpenedAt.Equal(want.OpenedAt) {
			return n, fmt.Errorf("%w: incident %d in the table is not what its events make of it", ErrTampered, id)
		}
	}
	return n, nil
}

// ChainCheck is what a checked scan verified: the events from FromSeq to
// the chain head, each hash recomputed and each link followed.
type ChainCheck struct {
	FromSeq, Events int64
}

// ScanChecked calls fn with the events of [from, to) by event time, in
// chain order, like Events, and verifies the chain on the way: it reads
// every event from the first of the period to the head (a contiguous
// stretch of the chain: events recorded after the period's first are
// there too, skipped for fn), recomputes each hash over the one before it,
// and compares the last with the head's. So a report proves the events it
// was computed from were not edited, removed or inserted since they were
// recorded, at the cost of one read. The verdict comes at the end: fn has
// seen the period's events when an error wrapping ErrTampered is returned;
// it names the first bad event.
func (l *Ledger) ScanChecked(ctx context.Context, from, to time.Time, fn func(Event) error) (ChainCheck, error) {
	return l.ScanCheckedRaw(ctx, from, to, func(e Event, data []byte) error {
		if data != nil {
			if err := DecodeData(data, &e); err != nil {
				return err
			}
		}
		return fn(e)
	})
}

// DecodeData decodes an event's stored data into e.Data.
func DecodeData(data []byte, e *Event) error {
	if err := json.Unmarshal(data, &e.Data); err != nil {
		return fmt.Errorf("ledger: event %d data: %w", e.Seq, err)
	}
	return nil
}

// ScanCheckedRaw is ScanChecked handing over each event's data still
// encoded (nil for an event without data; valid only during the call), for
// a caller that decodes it on another core (DecodeData).
//
// The events of both scans carry no Hash and PrevHash: the chain they
// belong to was verified, and a month is millions of them.
func (l *Ledger) ScanCheckedRaw(ctx context.Context, from, to time.Time, fn func(Event, []byte) error) (ChainCheck, error) {
	var first sql.NullInt64
	if err := l.db.QueryRowContext(ctx, "SELECT MIN(seq) FROM events WHERE at >= $1", from.UnixMilli()).Scan(&first); err != nil {
		return ChainCheck{}, fmt.Errorf("ledger: find the period's first event: %w", err)
	}
	var headSeq int64
	var headHash string
	if err := l.db.QueryRowContext(ctx, "SELECT last_seq, last_hash FROM ledger_head WHERE id = 1").Scan(&headSeq, &headHash); err != nil {
		return ChainCheck{}, fmt.Errorf("ledger: read the chain head: %w", err)
	}
	if !first.Valid {
		return ChainCheck{FromSeq: headSeq + 1}, nil
	}
	check := ChainCheck{FromSeq: first.Int64}
	prev := ""
	if first.Int64 > 1 {
		if err := l.db.QueryRowContext(ctx, "SELECT hash FROM events WHERE seq = $1", first.Int64-1).Scan(&prev); err != nil {
			return check, fmt.Errorf("%w: event %d, before the period, is missing: %v", ErrTampered, first.Int64-1, err)
		}
	}
	fromMs, toMs := from.UnixMilli(), to.UnixMilli()
	want := first.Int64
	var (
		scratch []byte
		sum     [2 * sha256.Size]byte
		actors  = interner{}
		sources = interner{}
	)
	prevHash := []byte(prev) // then each event's hash is computed over the last computed
	// Neither the stored hashes nor prev_hash are read, the columns read
	// being the cost here: each event's hash is recomputed over the one
	// computed before it, so the last must equal the head's, which any
	// change to a covered column, a removal or an insertion upsets. Only
	// then is the chain read again with the stored hashes, to name the
	// first bad event.
	//
	// The database is read on a goroutine of its own, a batch at a time,
	// and the hashes computed on this one: reading is most of the cost,
	// and a report has the second core for it.
	stop := make(chan struct{})
	defer close(stop)
	batches, free := make(chan *rawBatch, 4), make(chan *rawBatch, 6)
	read := make(chan error, 1)
	go func() {
		read <- l.readRaw(ctx, first.Int64, batches, free, stop)
		close(batches)
	}()
	for b := range batches {
		for i := range b.rows {
			r := &b.rows[i]
			e := Event{Seq: r.seq, Incident: r.incident, Kind: internKind(b.bytes(r.kind)),
				Actor: actors.get(b.bytes(r.actor)), Source: sources.get(b.bytes(r.source)),
				At: fromMillis(r.at), RecordedAt: fromMillis(r.recorded)}
			if e.Seq != want {
				return check, fmt.Errorf("%w at event %d: it does not follow event %d", ErrTampered, e.Seq, want-1)
			}
			data := b.bytes(r.data)
			sum = appendChainHash(&scratch, prevHash, &e, data)
			prevHash = sum[:]
			want++
			check.Events++
			if r.at < fromMs || r.at >= toMs {
				continue
			}
			// Most lifecycle events carry no data.
			if string(data) == "{}" {
				data = nil
			}
			if err := fn(e, data); err != nil {
				return check, err
			}
		}
		b.reset()
		free <- b
	}
	if err := <-read; err != nil {
		return check, err
	}
	if want-1 != headSeq {
		return check, fmt.Errorf("%w: the head says %d events, the log ends at %d", ErrTampered, headSeq, want-1)
	}
	if string(prevHash) != headHash {
		return check, l.firstBadEvent(ctx, first.Int64, prev)
	}
	return check, nil
}

// rawBatch is a batch of events as read, their text columns copied into
// one arena.
type rawBatch struct {
	rows  []rawRow
	arena []byte
}

type rawRow struct {
	seq, incident, at, recorded int64
	kind, actor, source, data   [2]int // [start, end) in arena
}

func (b *rawBatch) bytes(span [2]int) []byte { return b.arena[span[0]:span[1]] }

func (b *rawBatch) add(v driver.Value) ([2]int, error) {
	start := len(b.arena)
	switch v := v.(type) {
	case string:
		b.arena = append(b.arena, v...)
	case []byte:
		b.arena = append(b.arena, v...)
	default:
		return [2]int{}, fmt.Errorf("ledger: read events: a text column is %T", v)
	}
	return [2]int{start, len(b.arena)}, nil
}

func (b *rawBatch) reset() { b.rows, b.arena = b.rows[:0], b.arena[:0] }

const rawBatchSize = 4096

// readRaw reads the events from seq on into batches until the end, an
// error, or stop.
func (l *Ledger) readRaw(ctx context.Context, seq int64, batches chan<- *rawBatch, free <-chan *rawBatch, stop <-chan struct{}) error {
	next := func() *rawBatch {
		select {
		case b := <-free:
			return b
		default:
			return &rawBatch{rows: make([]rawRow, 0, rawBatchSize)}
		}
	}
	send := func(b *rawBatch) error {
		select {
		case batches <- b:
			return nil
		case <-stop:
			return errScanStopped
		}
	}
	cur := next()
	err := l.rawQuery(ctx, `SELECT seq, incident_id, kind, at, recorded_at, actor, source, data
		FROM events WHERE seq >= $1 ORDER BY seq`, []any{seq}, func(row []driver.Value) error {
		var r rawRow
		var err error
		for col, dest := range [...]*int64{0: &r.seq, 1: &r.incident, 3: &r.at, 4: &r.recorded} {
			if dest == nil {
				continue
			}
			v, ok := row[col].(int64)
			if !ok {
				return fmt.Errorf("ledger: read events: column %d is %T, not an integer", col+1, row[col])
			}
			*dest = v
		}
		if r.kind, err = cur.add(row[2]); err != nil {
			return err
		}
		if r.actor, err = cur.add(row[5]); err != nil {
			return err
		}
		if r.source, err = cur.add(row[6]); err != nil {
			return err
		}
		if r.data, err = cur.add(row[7]); err != nil {
			return err
		}
		cur.rows = append(cur.rows, r)
		if len(cur.rows) == rawBatchSize {
			if err := send(cur); err != nil {
				return err
			}
			cur = next()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return send(cur)
}

// errScanStopped ends a read whose reader has stopped taking batches; it
// is never returned to a caller (the reader's own error is).
var errScanStopped = errors.New("ledger: scan stopped")

// firstBadEvent reads the chain from seq on, after a checked scan found it
// does not end at the head's hash, and names the first event whose content
// does not match its stored hash.
func (l *Ledger) firstBadEvent(ctx context.Context, seq int64, prev string) error {
	rows, err := l.db.QueryContext(ctx, selectEvents+" WHERE seq >= $1 ORDER BY seq", seq)
	if err != nil {
		return fmt.Errorf("%w, and reading it again to find where failed: %v", ErrTampered, err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return fmt.Errorf("%w, and reading it again to find where failed: %v", ErrTampered, err)
		}
		if want, err := chainHash(prev, &e); err != nil || want != e.Hash {
			return fmt.Errorf("%w at event %d: its content does not match its hash, or it does not follow event %d",
				ErrTampered, e.Seq, e.Seq-1)
		}
		prev = e.Hash
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w, and reading it again to find where failed: %v", ErrTampered, err)
	}
	return fmt.Errorf("%w: the chain does not end at the head's hash", ErrTampered)
}

// rawQuery runs a query on the driver's connection and calls fn with each
// row's values, which are valid only during the call. A scan of millions
// of rows through database/sql spends a third of its time converting them.
func (l *Ledger) rawQuery(ctx context.Context, query string, args []any, fn func([]driver.Value) error) error {
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("ledger: read events: %w", err)
	}
	defer conn.Close()
	named := make([]driver.NamedValue, len(args))
	for i, a := range args {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	return conn.Raw(func(dc any) error {
		q, ok := dc.(driver.QueryerContext)
		if !ok {
			return fmt.Errorf("ledger: the %T driver cannot run queries directly", dc)
		}
		rows, err := q.QueryContext(ctx, query, named)
		if err != nil {
			return fmt.Errorf("ledger: read events: %w", err)
		}
		defer rows.Close()
		row := make([]driver.Value, len(rows.Columns()))
		for {
			if err := rows.Next(row); err == io.EOF {
				return nil
			} else if err != nil {
				return fmt.Errorf("ledger: read events: %w", err)
			}
			if err := fn(row); err != nil {
				return err
			}
		}
	})
}

// internKind returns the constant of a kind read from the database, so a
// scan does not allocate a string per event for it.
func internKind(b []byte) string {
	for _, k := range Kinds {
		if string(b) == k {
			return k
		}
	}
	return string(b)
}

// interner shares the strings of values that repeat (actors, sources), so
// a scan of millions of events allocates each once. One interner per
// field keeps each map small, and the value just seen is checked first:
// consecutive events are mostly one engineer's.
type interner struct {
	m    map[string]string
	last string
}

func (in *interner) get(b []byte) string {
	if string(b) == in.last {
		return in.last
	}
	if s, ok := in.m[string(b)]; ok {
		in.last = s
		return s
	}
	if in.m == nil {
		in.m = map[string]string{}
	}
	s := string(b)
	if len(in.m) < 10000 {
		in.m[s] = s
	}
	in.last = s
	return s
}
