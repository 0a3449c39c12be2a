-- Call park: settings per tenant, park groups, and the park event log.
-- Portable SQL as in 0001 (booleans are BIGINT 0/1). References to
-- extensions and ring groups inside the recall settings are checked by the
-- store (a number may be either kind), which also clears them when the
-- extension or ring group is deleted.

-- One row per tenant that changed its settings; no row = the defaults.
CREATE TABLE park_settings (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants (id),
    enabled BIGINT NOT NULL,
    -- feature codes: '*' or '#' and 1 to 6 digits
    park_code TEXT NOT NULL,
    group_park_code TEXT NOT NULL,
    retrieve_code TEXT NOT NULL,
    notify_parker BIGINT NOT NULL,
    max_parked_per_extension BIGINT NOT NULL,
    recall_time_s BIGINT NOT NULL,
    -- 'PARKER_ONLY', 'PARKER_THEN_RING_GROUP', 'RING_GROUP_ONLY' or 'NUMBER'
    recall_to TEXT NOT NULL,
    -- an extension or ring group number of the tenant (mode 'NUMBER')
    recall_number TEXT,
    -- a ring group number of the tenant (the ring group modes)
    recall_ring_group TEXT,
    ring_group_wait_s BIGINT NOT NULL,
    ring_s BIGINT NOT NULL,
    retry_interval_s BIGINT NOT NULL,
    max_recall_attempts BIGINT NOT NULL,
    -- an extension or ring group number of the tenant; NULL = hang up
    final_destination TEXT,
    display_prefix TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The recall columns mean what they mean in park_settings; recall_to NULL
-- = no override (every recall column NULL): the tenant's settings apply.
CREATE TABLE park_groups (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    recall_time_s BIGINT,
    recall_to TEXT,
    recall_number TEXT,
    recall_ring_group TEXT,
    ring_group_wait_s BIGINT,
    ring_s BIGINT,
    retry_interval_s BIGINT,
    max_recall_attempts BIGINT,
    final_destination TEXT,
    display_prefix TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Names are unique per tenant, ignoring case (the store compares with full
-- Unicode case folding before it writes; this catches ASCII case at least).
CREATE UNIQUE INDEX park_groups_name ON park_groups (tenant_id, LOWER(name));

-- Members in hunting order (ascending position; gaps allowed). An
-- extension is in at most one park group of its tenant.
CREATE TABLE park_group_members (
    tenant_id TEXT NOT NULL,
    park_group TEXT NOT NULL REFERENCES park_groups (id),
    position BIGINT NOT NULL,
    extension TEXT NOT NULL,
    PRIMARY KEY (park_group, position),
    UNIQUE (tenant_id, extension),
    FOREIGN KEY (tenant_id, extension) REFERENCES extensions (tenant_id, number)
);

-- The park event log. No foreign key to tenants, as for call_records: the
-- park engine writes in batches and a late event of a deleted tenant is
-- dropped by the store rather than failing its batch.
CREATE TABLE park_events (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    -- parked, park_failed, retrieved, retrieve_failed, recall_started,
    -- recall_answered, abandoned, ended
    kind TEXT NOT NULL,
    park_id TEXT,
    -- the extension the call is parked on
    extension TEXT NOT NULL,
    call_id TEXT NOT NULL,
    parker TEXT NOT NULL,
    parked_number TEXT NOT NULL,
    parked_name TEXT NOT NULL,
    -- reason, by or to
    detail TEXT NOT NULL
);

CREATE INDEX park_events_tenant_at ON park_events (tenant_id, at_ms);
