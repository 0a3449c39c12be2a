-- Call records: one row per finished call. Portable SQL as in 0001.
-- No foreign key to tenants: the call layer writes records in batches, and
-- one record of a tenant deleted meanwhile must not fail the batch (the
-- store drops it instead). Deleting a tenant deletes its records.
CREATE TABLE call_records (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    -- the calling extension's number and display name
    caller TEXT NOT NULL,
    caller_name TEXT NOT NULL,
    -- the number dialled
    callee TEXT NOT NULL,
    -- the extension that answered; NULL = nobody
    answered_by TEXT,
    started_at BIGINT NOT NULL,
    answered_at BIGINT,
    ended_at BIGINT NOT NULL,
    -- caller_hangup, callee_hangup, cancelled, busy, no_answer, ...
    end_reason TEXT NOT NULL,
    -- transfer targets in order: a JSON array of strings
    transfers TEXT NOT NULL
);

CREATE INDEX call_records_tenant_started ON call_records (tenant_id, started_at);
