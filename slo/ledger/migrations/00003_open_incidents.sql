-- The open incidents, listed every minute by the intake's sweep and the
-- breach warnings: without an index of their own, a listing walks every
-- incident of the ledger (a million and more) by opened_at to find the few
-- open. Both databases take partial indexes.

-- +goose Up
CREATE INDEX incidents_open ON incidents (opened_at, id) WHERE open_key IS NOT NULL;

-- +goose Down
DROP INDEX incidents_open;
