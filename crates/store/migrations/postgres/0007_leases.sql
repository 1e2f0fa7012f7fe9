-- Named leases that one node of a cluster holds at a time (e.g. the right to renew the
-- ACME certificate); a lease that is not renewed before `until_ms` is free again.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
