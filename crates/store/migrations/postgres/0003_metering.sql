-- Metering: what each invocation is billed for, a daily roll-up that usage reports and
-- quotas read instead of scanning invocations, and installation settings (price list,
-- quotas) as opaque text the control layer parses.

ALTER TABLE invocations ADD COLUMN trigger_kind TEXT NOT NULL DEFAULT 'http';
ALTER TABLE invocations ADD COLUMN billed_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE invocations ADD COLUMN bytes_in BIGINT NOT NULL DEFAULT 0;
ALTER TABLE invocations ADD COLUMN bytes_out BIGINT NOT NULL DEFAULT 0;
UPDATE invocations SET billed_ms = CASE WHEN duration_us <= 1000 THEN 1 ELSE (duration_us + 999) / 1000 END;

-- One row per UTC day (days since 1970-01-01), function and version. The telemetry
-- writer adds each batch's totals in the same transaction as its invocation rows, so the
-- two never disagree; records that overflowed the in-memory buffer are added here only
-- (counted in `overflowed`). Retention deletes invocation rows, never these.
CREATE TABLE usage_daily (
    day BIGINT NOT NULL,
    function TEXT NOT NULL,
    version BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    throttled BIGINT NOT NULL,
    cold_starts BIGINT NOT NULL,
    duration_us BIGINT NOT NULL,
    billed_ms BIGINT NOT NULL,
    mb_ms BIGINT NOT NULL,
    bytes_in BIGINT NOT NULL,
    bytes_out BIGINT NOT NULL,
    overflowed BIGINT NOT NULL,
    PRIMARY KEY (day, function, version)
);

INSERT INTO usage_daily (day, function, version, requests, errors, throttled, cold_starts,
                         duration_us, billed_ms, mb_ms, bytes_in, bytes_out, overflowed)
SELECT started_at_ms / 86400000, function, version,
       SUM(CASE WHEN outcome = 'throttled' THEN 0 ELSE 1 END),
       SUM(CASE WHEN outcome IN ('error', 'timeout') THEN 1 ELSE 0 END),
       SUM(CASE WHEN outcome = 'throttled' THEN 1 ELSE 0 END),
       SUM(cold_start),
       SUM(CASE WHEN outcome = 'throttled' THEN 0 ELSE duration_us END),
       SUM(CASE WHEN outcome = 'throttled' THEN 0 ELSE billed_ms END),
       SUM(CASE WHEN outcome = 'throttled' THEN 0 ELSE billed_ms * memory_mb END),
       0, 0, 0
FROM invocations
GROUP BY started_at_ms / 86400000, function, version;

CREATE INDEX invocations_by_start ON invocations (started_at_ms);
CREATE INDEX logs_by_time ON logs (ts_ms);

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
