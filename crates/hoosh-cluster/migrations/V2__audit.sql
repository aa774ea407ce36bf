-- The cluster's one audit chain. Every instance appends to it; the single
-- row of `audit_lock`, locked FOR UPDATE for the length of a batch, is what
-- makes `seq` gap-free and each entry's prev_hash the hash of the entry
-- before it, whichever instance wrote that one. `json` is the entry exactly
-- as sealed (TEXT, not JSONB, so it reads back byte for byte).
CREATE TABLE audit (
    seq   BIGINT PRIMARY KEY,
    ts_ms BIGINT NOT NULL,
    json  TEXT NOT NULL
);
CREATE INDEX audit_ts ON audit (ts_ms);

CREATE TABLE audit_lock (
    one BOOLEAN PRIMARY KEY CHECK (one)
);
INSERT INTO audit_lock VALUES (TRUE);

-- How many of each writer's entries the chain holds: a batch retried after
-- a commit whose answer was lost, or replayed from a spill file, is not
-- taken twice. A writer is one process's audit log (random id).
CREATE TABLE audit_writers (
    writer   BIGINT PRIMARY KEY,
    taken    BIGINT NOT NULL,
    instance TEXT,
    ts_ms    BIGINT NOT NULL
);

-- Signed checkpoints of the chain's head, against truncation.
CREATE TABLE audit_checkpoints (
    seq  BIGINT PRIMARY KEY,
    json TEXT NOT NULL
);
