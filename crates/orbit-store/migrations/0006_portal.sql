-- Web portal accounts and sessions. Portable SQL (SQLite and PostgreSQL).
-- A user with tenant_id NULL is a system admin; otherwise a tenant admin.
CREATE TABLE portal_users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    -- argon2id PHC string; the password itself is never stored.
    password_hash TEXT NOT NULL,
    tenant_id TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    -- Failed sign-ins in a row, and until when (Unix ms) sign-in is refused.
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE portal_sessions (
    -- SHA-256 (hex) of the cookie value; the value itself is not stored.
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES portal_users (id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX portal_sessions_user ON portal_sessions (user_id);
