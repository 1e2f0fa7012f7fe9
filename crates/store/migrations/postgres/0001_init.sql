-- PostgreSQL schema of gureum's store; mirrors ../sqlite/0001_init.sql (BYTEA and BIGSERIAL instead
-- of BLOB and AUTOINCREMENT). Integers are BIGINT, times are ms since the Unix epoch.

-- latest_version is the counter deploys increment under the row's lock, so numbers are
-- never reused, even after a rollback moved "live" back.
CREATE TABLE functions (
    name TEXT PRIMARY KEY,
    created_at_ms BIGINT NOT NULL,
    latest_version BIGINT NOT NULL
);

CREATE TABLE versions (
    function TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    artifact_hash TEXT NOT NULL,
    manifest TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (function, version)
);

CREATE TABLE aliases (
    function TEXT NOT NULL,
    alias TEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (function, alias),
    FOREIGN KEY (function, version) REFERENCES versions (function, version) ON DELETE CASCADE
);

-- Content-addressed: no reference to functions, several versions may share one artifact.
CREATE TABLE artifacts (
    hash TEXT PRIMARY KEY,
    bytes BYTEA NOT NULL,
    size BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

-- Invocations and logs keep the function's name without a foreign key: the batch writer
-- may flush a record after its function was deleted, and that must not fail the batch.
CREATE TABLE invocations (
    id TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    version BIGINT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    duration_us BIGINT NOT NULL,
    status BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    cold_start BIGINT NOT NULL,
    memory_mb BIGINT NOT NULL
);
CREATE INDEX invocations_by_function ON invocations (function, started_at_ms);

CREATE TABLE logs (
    seq BIGSERIAL PRIMARY KEY,
    invocation_id TEXT NOT NULL,
    function TEXT NOT NULL,
    version BIGINT NOT NULL,
    ts_ms BIGINT NOT NULL,
    stream TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX logs_by_function ON logs (function, seq);
CREATE INDEX logs_by_invocation ON logs (invocation_id);
