-- Backend services: users and their refresh tokens, document collections (config with
-- rules and indexes), documents, files (content-addressed blobs in chunks) and the
-- key-value buckets of functions. Times are ms since the Unix epoch.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    -- argon2id PHC string; the password itself is never stored.
    password_hash TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    disabled BIGINT NOT NULL DEFAULT 0,
    last_sign_in_ms BIGINT
);

-- Only the SHA-256 of a refresh token is kept, so a leaked database yields no sessions.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT
);
CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_id);

-- A collection's JSON config: rules per operation, indexed fields, file limits.
CREATE TABLE collections (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

-- data is jsonb here, JSON text on SQLite. Indexes on data fields are created per
-- collection when its config declares them (partial expression indexes).
CREATE TABLE documents (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    owner TEXT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    version BIGINT NOT NULL,
    data JSONB NOT NULL,
    PRIMARY KEY (collection, id)
);
CREATE INDEX documents_by_created ON documents (collection, created_at_ms, id);
CREATE INDEX documents_by_owner ON documents (collection, owner, created_at_ms, id);

CREATE TABLE files (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    owner TEXT,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (collection, id)
);
CREATE INDEX files_by_blob ON files (sha256);

-- File contents by content address, in chunks of up to 1 MiB so neither an upload nor
-- a download holds a whole file in memory.
CREATE TABLE blob_chunks (
    sha256 TEXT NOT NULL,
    seq BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (sha256, seq)
);

-- Key-value buckets of functions; scope is the function's name.
CREATE TABLE kv (
    scope TEXT NOT NULL,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    value BYTEA NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (scope, bucket, key)
);
