-- Keys, teams and budget definitions (JSON records, as in the embedded
-- SQLite store), stored Responses answers, and the usage ledger shared by
-- every instance of a cluster.
CREATE TABLE keys (
    id     TEXT PRIMARY KEY,
    hash   TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL
);
CREATE TABLE teams (
    name   TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
CREATE TABLE budgets (
    pool TEXT PRIMARY KEY,
    spec TEXT NOT NULL
);
CREATE TABLE responses (
    id         TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    record     TEXT NOT NULL
);
CREATE INDEX responses_created ON responses (created_ms);

-- `seq` is commit order across instances (ties of one millisecond in
-- exports); `id` (a UUIDv7 made at admission) makes a replayed or retried
-- row count once.
CREATE TABLE ledger (
    seq               BIGSERIAL PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    request_id        TEXT NOT NULL,
    ts_ms             BIGINT NOT NULL,
    key_id            TEXT,
    team              TEXT,
    provider          TEXT,
    model             TEXT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    cached_tokens     BIGINT NOT NULL,
    cost_nanos        BIGINT,
    latency_ms        BIGINT NOT NULL,
    ttft_ms           BIGINT,
    status            INTEGER NOT NULL,
    cache_hit         BOOLEAN NOT NULL,
    route             TEXT NOT NULL,
    audio_ms          BIGINT NOT NULL DEFAULT 0,
    instance          TEXT
);
CREATE INDEX ledger_ts ON ledger (ts_ms);
CREATE INDEX ledger_key_ts ON ledger (key_id, ts_ms);
CREATE INDEX ledger_team_ts ON ledger (team, ts_ms);
