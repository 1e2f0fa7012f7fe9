-- Durable asynchronous invocations, their dead letters, enqueue deduplication and the
-- state of cron schedules. Times are ms since the Unix epoch.

-- Events waiting to run or running. A claim sets lease_owner/lease_until_ms (and counts
-- the attempt); the owner renews the lease while it runs the event, and an expired lease
-- makes the event claimable again by any node (at-least-once). The row is deleted when
-- the event succeeds or moves to dead_letters.
CREATE TABLE async_events (
    id TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    -- NULL: the version live when the event runs; else a pinned version.
    version BIGINT,
    trigger_kind TEXT NOT NULL,
    -- The schedule's name for cron events, the originating invocation for destinations.
    source TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    -- JSON array of [name, value] pairs.
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    -- What a lambda function receives as is (cron, destination records); NULL: the API
    -- Gateway event built from the request.
    raw_event TEXT,
    enqueued_at_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    next_at_ms BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until_ms BIGINT,
    -- JSON array of {attempt, at_ms, status, error} of the failed attempts.
    errors TEXT NOT NULL
);
CREATE INDEX async_events_due ON async_events (next_at_ms);
CREATE INDEX async_events_by_function ON async_events (function, enqueued_at_ms);
CREATE INDEX async_events_by_owner ON async_events (lease_owner);

CREATE TABLE dead_letters (
    id TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    version BIGINT,
    trigger_kind TEXT NOT NULL,
    source TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    raw_event TEXT,
    enqueued_at_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    errors TEXT NOT NULL,
    failed_at_ms BIGINT NOT NULL,
    -- Why it stopped: retries_exhausted | event_too_old | function_removed.
    reason TEXT NOT NULL
);
CREATE INDEX dead_letters_by_function ON dead_letters (function, failed_at_ms);

-- An idempotency-key header maps to the invocation it first enqueued (kept 24 h).
CREATE TABLE idempotency_keys (
    function TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    invocation_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (function, idempotency_key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at_ms);

-- One row per (function, schedule name). Firing a tick is a compare-and-set on
-- last_tick_ms in the same transaction as the event's insert, so with several nodes
-- exactly one fires each tick and a fired tick is never lost.
CREATE TABLE schedule_state (
    function TEXT NOT NULL,
    name TEXT NOT NULL,
    last_tick_ms BIGINT NOT NULL,
    last_fired_at_ms BIGINT,
    last_invocation_id TEXT,
    last_status TEXT,
    last_finished_at_ms BIGINT,
    PRIMARY KEY (function, name)
);
