-- Portable SQL: runs unchanged on SQLite and PostgreSQL.
-- Times are Unix milliseconds in BIGINT columns.
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    domain TEXT NOT NULL UNIQUE,
    -- Digest realm, fixed at creation: stored HA1 values depend on it, so a
    -- domain rename must not change it.
    realm TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE extensions (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    number TEXT NOT NULL,
    display_name TEXT NOT NULL,
    ha1_md5 TEXT NOT NULL,
    ha1_sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, number)
);

CREATE TABLE registrations (
    tenant_id TEXT NOT NULL,
    extension TEXT NOT NULL,
    contact TEXT NOT NULL,
    -- Contact header parameters other than expires (q, +sip.instance, reg-id, ...),
    -- as sent, so the registrar can echo them.
    contact_params TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    call_id TEXT NOT NULL,
    cseq BIGINT NOT NULL,
    source TEXT NOT NULL,
    transport TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, extension, contact)
);

CREATE INDEX registrations_expiry ON registrations (expires_at);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
