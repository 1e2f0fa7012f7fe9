-- When every session of a user was last revoked (sign-out everywhere, disabling, a reused
-- refresh token): access tokens issued before it no longer keep realtime streams open.
-- Each node polls for recent values, so the index covers only users ever revoked.
ALTER TABLE users ADD COLUMN revoked_before_ms BIGINT;
CREATE INDEX users_revoked_before ON users (revoked_before_ms) WHERE revoked_before_ms IS NOT NULL;
