// Package ledger is the incident ledger: every incident's lifecycle as an
// append-only, hash-chained event log, in SQLite (embedded, the default) or
// PostgreSQL, migrated by the same SQL files. It is the only package that
// writes SQL. A call that returns without error has committed: with SQLite
// in WAL mode and synchronous=FULL, and PostgreSQL's synchronous commit, an
// acknowledged event survives kill -9 and power loss.
package ledger

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver "pgx"
	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // SQLite driver "sqlite", pure Go
)

//go:embed migrations/*.sql
var migrations embed.FS

// Incident is an incident as its events leave it.
type Incident struct {
	ID       int64  `json:"id"`
	Kiosk    string `json:"kiosk"`
	Site     string `json:"site"`
	District string `json:"district"`
	Provider string `json:"provider"`
	Fault    string `json:"fault"`
	Category string `json:"category"`
	Severity string `json:"severity"`
	// Source: alert, alertmanager or person; Channel: how it reached the provider.
	Source   string `json:"source"`
	Channel  string `json:"channel"`
	AlertKey string `json:"alert_key,omitempty"`
	State    string `json:"state"`
	Paused   bool   `json:"paused"`
	// OpenedAt is when the fault began; UpdatedAt the last event's time.
	OpenedAt   time.Time `json:"opened_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	ClearedAt  time.Time `json:"cleared_at,omitzero"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	ClosedAt   time.Time `json:"closed_at,omitzero"`
}

// Ledger is an open incident ledger.
type Ledger struct {
	db       *sql.DB
	postgres bool
	// mu serialises writers of this process; across processes the chain
	// head's row lock (PostgreSQL) or the immediate transaction (SQLite) does.
	mu  sync.Mutex
	now func() time.Time
}

// Open opens the ledger named by dsn, migrating it to the current schema:
// "" is SQLite in dataDir/ledger.db; postgres://... (or postgresql://) is
// PostgreSQL; a path ending in .db is SQLite there.
func Open(ctx context.Context, dsn, dataDir string) (*Ledger, error) {
	l := &Ledger{now: time.Now}
	var err error
	switch {
	case strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://"):
		l.postgres = true
		l.db, err = sql.Open("pgx", dsn)
	default:
		path := dsn
		if path == "" {
			path = filepath.Join(dataDir, "ledger.db")
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("ledger directory: %w", err)
		}
		// WAL with synchronous=FULL: a commit is on disk when it returns.
		// Immediate transactions take the write lock at BEGIN, so two
		// writers never both read the chain head.
		q := url.Values{}
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_txlock", "immediate")
		l.db, err = sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	}
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	if err := l.db.PingContext(ctx); err != nil {
		l.db.Close()
		return nil, fmt.Errorf("open ledger %s: %w", redact(dsn), err)
	}
	if err := l.migrate(ctx); err != nil {
		l.db.Close()
		return nil, err
	}
	return l, nil
}

// redact hides a DSN's password in messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	return u.Redacted()
}

func (l *Ledger) migrate(ctx context.Context) error {
	dialect := goose.DialectSQLite3
	if l.postgres {
		dialect = goose.DialectPostgres
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(dialect, l.db, sub, goose.WithGoMigrations(
		goose.NewGoMigration(2, &goose.GoFunc{RunTx: l.eventsByRowid}, nil)))
	if err != nil {
		return fmt.Errorf("ledger migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate the ledger: %w", err)
	}
	return nil
}

// eventsByRowid is migration 2. SQLite makes a column the table's own key
// (the rowid) only when it is declared INTEGER PRIMARY KEY; events.seq was
// BIGINT, so SQLite kept a separate index of it, and reading the chain in
// order looked every event up twice. The table is rebuilt with seq as its
// rowid: a month's report reads a fifth less. PostgreSQL's BIGINT key is
// already what it should be. On a large ledger this copies every event
// once, in one transaction (tens of seconds for millions).
func (l *Ledger) eventsByRowid(ctx context.Context, tx *sql.Tx) error {
	if l.postgres {
		return nil
	}
	for _, stmt := range []string{
		`CREATE TABLE events_by_seq (
			seq         INTEGER PRIMARY KEY,
			incident_id BIGINT NOT NULL REFERENCES incidents (id),
			kind        TEXT   NOT NULL,
			at          BIGINT NOT NULL,
			recorded_at BIGINT NOT NULL,
			actor       TEXT   NOT NULL,
			source      TEXT   NOT NULL,
			data        TEXT   NOT NULL,
			prev_hash   TEXT   NOT NULL,
			hash        TEXT   NOT NULL
		)`,
		`INSERT INTO events_by_seq SELECT seq, incident_id, kind, at, recorded_at, actor, source, data, prev_hash, hash
			FROM events ORDER BY seq`,
		`DROP TABLE events`,
		`ALTER TABLE events_by_seq RENAME TO events`,
		`CREATE INDEX events_incident ON events (incident_id, seq)`,
		`CREATE INDEX events_at ON events (at)`,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("key the events by seq: %w", err)
		}
	}
	return nil
}

// Close closes the database.
func (l *Ledger) Close() error { return l.db.Close() }

// Backend names the database: sqlite or postgres.
func (l *Ledger) Backend() string {
	if l.postgres {
		return "postgres"
	}
	return "sqlite"
}

type head struct {
	seq      int64
	hash     string
	incident int64
}

// write runs fn in a transaction holding the chain head, then stores the head.
func (l *Ledger) write(ctx context.Context, fn func(tx *sql.Tx, h *head) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("ledger: begin: %w", err)
	}
	defer tx.Rollback()
	lock := ""
	if l.postgres {
		lock = " FOR UPDATE"
	}
	var h head
	if err := tx.QueryRowContext(ctx, "SELECT last_seq, last_hash, last_incident FROM ledger_head WHERE id = 1"+lock).
		Scan(&h.seq, &h.hash, &h.incident); err != nil {
		return fmt.Errorf("ledger: read the chain head: %w", err)
	}
	if err := fn(tx, &h); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE ledger_head SET last_seq = $1, last_hash = $2, last_incident = $3 WHERE id = 1",
		h.seq, h.hash, h.incident); err != nil {
		return fmt.Errorf("ledger: move the chain head: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("ledger: commit: %w", err)
	}
	return nil
}

const insertEvent = `INSERT INTO events (seq, incident_id, kind, at, recorded_at, actor, source, data, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`

// appendEvent chains e after h and inserts it.
func appendEvent(ctx context.Context, tx *sql.Tx, h *head, e *Event) error {
	data, err := chainEvent(h, e)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, insertEvent, eventRow(nil, e, data)...); err != nil {
		return fmt.Errorf("ledger: insert event: %w", err)
	}
	return nil
}

// chainEvent gives e the next seq after h and its hash, and moves h on to
// it. It returns e's data as it is to be stored: the bytes stored are the
// bytes hashed.
func chainEvent(h *head, e *Event) (string, error) {
	h.seq++
	e.Seq, e.PrevHash = h.seq, h.hash
	data, err := jsonData(e.Data)
	if err != nil {
		return "", err
	}
	e.Hash = chainHashData(h.hash, e, []byte(data))
	h.hash = e.Hash
	return data, nil
}

// eventRow appends to args the values of insertEvent's columns for e, in
// their order.
func eventRow(args []any, e *Event, data string) []any {
	return append(args, e.Seq, e.Incident, e.Kind, e.At.UnixMilli(), e.RecordedAt.UnixMilli(), e.Actor, e.Source, data,
		e.PrevHash, e.Hash)
}

// OpenRequest opens an incident.
type OpenRequest struct {
	Kiosk, Site, District, Provider string
	Fault, Category, Severity       string
	// Source: alert (in process), alertmanager (webhook), person.
	Source string
	// Channel: system for alerts; phone, web, wechat, sms, app for people.
	Channel string
	Actor   string
	// At is when the fault began (the alert's start).
	At time.Time
	// AlertKey is fingerprint@start of the alert, "" for a person's report.
	AlertKey string
}

// OpenIncident opens an incident, or returns the one already open: the same
// alert delivered again (same AlertKey), or any open incident of the kiosk
// and fault (a recurrence of a cleared fault is recorded on it; a person's
// report is recorded as reported). created says which.
func (l *Ledger) OpenIncident(ctx context.Context, req OpenRequest) (inc Incident, created bool, err error) {
	if err := req.check(l.now().UTC()); err != nil {
		return Incident{}, false, err
	}
	if req.AlertKey != "" {
		// The common case of a repeated delivery needs no write transaction.
		existing, err := scanIncident(l.db.QueryRowContext(ctx, selectIncident+" WHERE alert_key = $1", req.AlertKey))
		if err == nil {
			return existing, false, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return Incident{}, false, err
		}
	}
	err = l.write(ctx, func(tx *sql.Tx, h *head) error {
		now := l.now().UTC()
		if req.AlertKey != "" {
			existing, err := scanIncident(tx.QueryRowContext(ctx, selectIncident+" WHERE alert_key = $1", req.AlertKey))
			if err == nil {
				inc = existing
				return nil
			}
			if !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		existing, err := scanIncident(tx.QueryRowContext(ctx, selectIncident+" WHERE open_key = $1", openKey(req.Kiosk, req.Fault)))
		switch {
		case err == nil:
			inc = existing
			e := Event{Incident: inc.ID, At: maxTime(req.At, inc.UpdatedAt), RecordedAt: now, Actor: req.Actor, Source: req.Source}
			switch {
			case req.AlertKey == "":
				e.Kind, e.Data.Channel = KindReported, req.Channel
			case !inc.ClearedAt.IsZero():
				e.Kind, e.Data.AlertKey = KindRecurred, req.AlertKey
			default:
				return nil // the fault is still open: nothing new
			}
			if err := apply(&inc, &e); err != nil {
				return err
			}
			if err := appendEvent(ctx, tx, h, &e); err != nil {
				return err
			}
			return l.saveIncident(ctx, tx, &inc)
		case !errors.Is(err, ErrNotFound):
			return err
		}
		created = true
		inc, err = insertIncident(ctx, tx, h, req, now)
		return err
	})
	return inc, created, err
}

func (req *OpenRequest) check(now time.Time) error {
	if err := notInFuture("opened", req.At, now); err != nil {
		return err
	}
	switch {
	case req.Kiosk == "" || req.Fault == "":
		return fmt.Errorf("%w: kiosk and fault are required", ErrInvalid)
	case req.Severity == "":
		return fmt.Errorf("%w: severity is required", ErrInvalid)
	case req.Actor == "" || req.Source == "":
		return fmt.Errorf("%w: actor and source are required", ErrInvalid)
	case !containsString(Channels, req.Channel):
		return fmt.Errorf("%w: channel %q is not one of %v", ErrInvalid, req.Channel, Channels)
	case req.At.IsZero():
		return fmt.Errorf("%w: the fault's start is required", ErrInvalid)
	}
	return nil
}

// maxAhead is how far ahead of the ledger's clock an event may be, for
// clocks that disagree a little.
const maxAhead = 5 * time.Minute

// notInFuture refuses an event of kind at a time after now (and maxAhead).
func notInFuture(kind string, at, now time.Time) error {
	if at.After(now.Add(maxAhead)) {
		return fmt.Errorf("%w: %s at %s is in the future", ErrInvalid, kind, at.UTC().Format(time.RFC3339))
	}
	return nil
}

// insertIncident inserts a new open incident and its opened event.
func insertIncident(ctx context.Context, tx *sql.Tx, h *head, req OpenRequest, now time.Time) (Incident, error) {
	inc, e := newIncident(h, req, now)
	var alertKey any
	if req.AlertKey != "" {
		alertKey = req.AlertKey
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO incidents (id, kiosk, site, district, provider, fault, category, severity,
		source, channel, alert_key, open_key, state, paused, opened_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $14, $15)`,
		inc.ID, inc.Kiosk, inc.Site, inc.District, inc.Provider, inc.Fault, inc.Category, inc.Severity, inc.Source,
		inc.Channel, alertKey, openKey(inc.Kiosk, inc.Fault), inc.State, inc.OpenedAt.UnixMilli(), inc.UpdatedAt.UnixMilli()); err != nil {
		return Incident{}, fmt.Errorf("ledger: insert incident: %w", err)
	}
	return inc, appendEvent(ctx, tx, h, &e)
}

// newIncident takes the next incident id after h for the incident req
// opens, and returns it with its opened event, not yet chained.
func newIncident(h *head, req OpenRequest, now time.Time) (Incident, Event) {
	h.incident++
	inc := Incident{ID: h.incident, Kiosk: req.Kiosk, Site: req.Site, District: req.District, Provider: req.Provider,
		Fault: req.Fault, Category: req.Category, Severity: req.Severity, Source: req.Source, Channel: req.Channel,
		AlertKey: req.AlertKey, State: StateOpen, OpenedAt: req.At.UTC(), UpdatedAt: req.At.UTC()}
	e := Event{Incident: inc.ID, Kind: KindOpened, At: inc.OpenedAt, RecordedAt: now, Actor: req.Actor, Source: req.Source,
		Data: EventData{Kiosk: req.Kiosk, Site: req.Site, District: req.District, Provider: req.Provider, Fault: req.Fault,
			Category: req.Category, Severity: req.Severity, Channel: req.Channel, AlertKey: req.AlertKey}}
	return inc, e
}

// Record appends an event to incident id, if the lifecycle allows it.
func (l *Ledger) Record(ctx context.Context, id int64, e Event) (Event, error) {
	err := l.write(ctx, func(tx *sql.Tx, h *head) error {
		inc, err := scanIncident(tx.QueryRowContext(ctx, selectIncident+" WHERE id = $1", id))
		if err != nil {
			return fmt.Errorf("incident %d: %w", id, err)
		}
		e.Incident, e.RecordedAt = id, l.now().UTC()
		if e.At.IsZero() {
			e.At = e.RecordedAt
		}
		e.At = e.At.UTC()
		if err := notInFuture(e.Kind, e.At, e.RecordedAt); err != nil {
			return err
		}
		if err := apply(&inc, &e); err != nil {
			return err
		}
		if err := appendEvent(ctx, tx, h, &e); err != nil {
			return err
		}
		return l.saveIncident(ctx, tx, &inc)
	})
	return e, err
}

func (l *Ledger) saveIncident(ctx context.Context, tx *sql.Tx, inc *Incident) error {
	_, err := tx.ExecContext(ctx, `UPDATE incidents SET severity = $1, state = $2, paused = $3, open_key = $4, updated_at = $5,
		cleared_at = $6, resolved_at = $7, closed_at = $8 WHERE id = $9`,
		inc.Severity, inc.State, pausedColumn(inc), heldOpenKey(inc), inc.UpdatedAt.UnixMilli(), nullTime(inc.ClearedAt),
		nullTime(inc.ResolvedAt), nullTime(inc.ClosedAt), inc.ID)
	if err != nil {
		return fmt.Errorf("ledger: update incident %d: %w", inc.ID, err)
	}
	return nil
}

func openKey(kiosk, fault string) string { return kiosk + "/" + fault }

// heldOpenKey is inc's open_key column: its open key until it is resolved,
// then NULL, which frees the kiosk and fault for a new incident.
func heldOpenKey(inc *Incident) any {
	if inc.State == StateResolved || inc.State == StateClosed {
		return nil
	}
	return openKey(inc.Kiosk, inc.Fault)
}

// pausedColumn is inc's paused column, 0 or 1: both databases store it as
// an integer.
func pausedColumn(inc *Incident) int {
	if inc.Paused {
		return 1
	}
	return 0
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
