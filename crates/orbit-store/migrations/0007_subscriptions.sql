-- SUBSCRIBE dialogs (BLF and Visual Park keys), kept so they survive a
-- restart: restored and re-notified on start. The dialog state is the call
-- layer's own encoding (opaque here). Deleting a tenant deletes its rows.
CREATE TABLE subscriptions (
    -- the dialog: Call-ID and Orbit's tag
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    subscriber TEXT NOT NULL,
    contact TEXT NOT NULL,
    -- ext:<number>, park:<number> or group:<id>
    resource TEXT NOT NULL,
    dialog TEXT NOT NULL,
    next_version BIGINT NOT NULL,
    -- Unix ms
    expires_at BIGINT NOT NULL
);

CREATE INDEX subscriptions_expires ON subscriptions (expires_at);
