-- Desk phones provisioned by Orbit. Portable SQL as in 0001.
-- A MAC is one physical phone: unique across all tenants.
CREATE TABLE phones (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    -- 12 lower-case hex digits, no separators
    mac TEXT NOT NULL UNIQUE,
    -- 'snom'
    vendor TEXT NOT NULL,
    -- e.g. 'D785'
    model TEXT NOT NULL,
    -- an extension number of the tenant; NULL once that extension is
    -- deleted (the phone keeps its row and gets a configuration without
    -- identity until it is given another extension)
    extension TEXT,
    label TEXT NOT NULL,
    -- the function keys in order, a JSON array of {"type","target"}
    keys TEXT NOT NULL,
    -- SHA-256 (hex) of the phone's provisioning password; the password is
    -- shown once, at creation or reset
    password_hash TEXT NOT NULL,
    -- raised by every change, so a phone's copy can be compared
    config_version BIGINT NOT NULL,
    -- last successful configuration fetch (Unix ms); NULL = never
    provisioned_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX phones_tenant ON phones (tenant_id);
