-- The incident ledger. Portable SQL: the same file migrates SQLite and
-- PostgreSQL. Times are Unix milliseconds (UTC); ids are assigned by the
-- ledger under the chain head's lock, so no dialect's sequences are needed.

-- +goose Up
CREATE TABLE ledger_head (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq      BIGINT  NOT NULL,
    last_hash     TEXT    NOT NULL,
    last_incident BIGINT  NOT NULL
);
INSERT INTO ledger_head (id, last_seq, last_hash, last_incident) VALUES (1, 0, '', 0);

-- incidents is a projection of events, kept for listing; figures are
-- computed from events.
CREATE TABLE incidents (
    id          BIGINT PRIMARY KEY,
    kiosk       TEXT   NOT NULL,
    site        TEXT   NOT NULL,
    district    TEXT   NOT NULL,
    provider    TEXT   NOT NULL,
    fault       TEXT   NOT NULL,
    category    TEXT   NOT NULL,
    severity    TEXT   NOT NULL,
    source      TEXT   NOT NULL,
    channel     TEXT   NOT NULL,
    -- alert_key is fingerprint@start of the alert that opened it: the same
    -- alert delivered twice (sink and webhook, retries) opens one incident.
    alert_key   TEXT   UNIQUE,
    -- open_key is kiosk/fault until resolved, then NULL: one open incident
    -- per kiosk and fault (NULLs do not collide in either database).
    open_key    TEXT   UNIQUE,
    state       TEXT   NOT NULL,
    -- paused: the clocks are stopped (site closed, awaiting parts, force majeure).
    paused      INTEGER NOT NULL,
    opened_at   BIGINT NOT NULL,
    -- cleared_at: the fault's alert resolved; the incident resolves once it
    -- stays clear long enough, and a recurrence before that clears it.
    cleared_at  BIGINT,
    updated_at  BIGINT NOT NULL,
    resolved_at BIGINT,
    closed_at   BIGINT
);
CREATE INDEX incidents_opened_at ON incidents (opened_at);
CREATE INDEX incidents_kiosk ON incidents (kiosk, opened_at);

-- events is the append-only log: each row's hash covers its content and the
-- previous row's hash, so editing or deleting any row breaks the chain.
CREATE TABLE events (
    seq         BIGINT PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    kind        TEXT   NOT NULL,
    at          BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    actor       TEXT   NOT NULL,
    source      TEXT   NOT NULL,
    data        TEXT   NOT NULL,
    prev_hash   TEXT   NOT NULL,
    hash        TEXT   NOT NULL
);
CREATE INDEX events_incident ON events (incident_id, seq);
CREATE INDEX events_at ON events (at);

-- +goose Down
DROP TABLE events;
DROP TABLE incidents;
DROP TABLE ledger_head;
