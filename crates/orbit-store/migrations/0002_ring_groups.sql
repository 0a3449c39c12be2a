-- Ring groups: a number that rings a list of extensions of the same tenant.
-- Portable SQL as in 0001. A ring group's number is unique within its tenant
-- and never equal to an extension number of the tenant (the store checks the
-- latter: it spans two tables).
CREATE TABLE ring_groups (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    number TEXT NOT NULL,
    name TEXT NOT NULL,
    -- 'ring_all' or 'sequential'
    strategy TEXT NOT NULL,
    -- seconds; for 'sequential', per member
    ring_time_s BIGINT NOT NULL,
    -- an extension or ring group number of the same tenant; NULL = hang up
    no_answer_destination TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, number)
);

-- Members in ring order (ascending position; gaps allowed).
CREATE TABLE ring_group_members (
    tenant_id TEXT NOT NULL,
    ring_group TEXT NOT NULL,
    position BIGINT NOT NULL,
    extension TEXT NOT NULL,
    PRIMARY KEY (tenant_id, ring_group, position),
    UNIQUE (tenant_id, ring_group, extension),
    FOREIGN KEY (tenant_id, ring_group) REFERENCES ring_groups (tenant_id, number),
    FOREIGN KEY (tenant_id, extension) REFERENCES extensions (tenant_id, number)
);

CREATE INDEX ring_group_members_extension ON ring_group_members (tenant_id, extension);
