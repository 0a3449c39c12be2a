//! Call records: the call layer appends one per finished call, in batches;
//! the API reads them back newest first. Calls in progress are not stored
//! here: see [`crate::ActiveCalls`].

use std::collections::HashSet;

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::error::StoreError;
use crate::model::{CallRecord, CallRecordQuery};
use crate::store::Store;

/// [`Store::call_records`] returns at most this many records.
pub const MAX_CALL_RECORDS: u32 = 1000;

/// How many records [`Store::call_records`] returns for `limit: 0`.
pub const DEFAULT_CALL_RECORDS: u32 = 100;

/// Rows per INSERT statement (11 parameters each); see registrations.rs.
const ROWS_PER_STATEMENT: usize = 32;

const COLUMNS: &str = "id, tenant_id, caller, caller_name, callee, answered_by, started_at, answered_at, ended_at, end_reason, transfers";

impl Store {
    /// Store finished calls, all in one transaction (all or nothing), as
    /// multi-row `INSERT ... ON CONFLICT (id) DO NOTHING`: a record whose
    /// id is stored already is left as it is, so a failed batch can be
    /// retried whole. Within `records` the first of an id wins. Records of
    /// a tenant that does not exist (any more) are dropped: deleting a
    /// tenant deletes its records, and a late one must not outlive it.
    pub async fn append_call_records(&self, records: &[CallRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        // Held across the check and the insert, as delete_tenant holds it:
        // no record lands after its tenant's deletion.
        let _w = self.writes.lock().await;
        let rows: Vec<&CallRecord> = {
            let dir = self.directory();
            let mut seen = HashSet::new();
            records
                .iter()
                .filter(|r| dir.tenant(&r.tenant_id).is_some() && seen.insert(r.id.as_str()))
                .collect()
        };
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut sql = format!("INSERT INTO call_records ({COLUMNS}) VALUES ");
            for i in 0..chunk.len() {
                let p = i * 11;
                if i > 0 {
                    sql.push(',');
                }
                sql.push('(');
                sql.push_str(
                    &(1..=11)
                        .map(|k| format!("${}", p + k))
                        .collect::<Vec<_>>()
                        .join(", "),
                );
                sql.push(')');
            }
            sql.push_str(" ON CONFLICT (id) DO NOTHING");
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(&r.id)
                    .bind(&r.tenant_id)
                    .bind(&r.caller)
                    .bind(&r.caller_name)
                    .bind(&r.callee)
                    .bind(r.answered_by.as_deref())
                    .bind(r.started_at)
                    .bind(r.answered_at)
                    .bind(r.ended_at)
                    .bind(&r.end_reason)
                    .bind(encode_strings(&r.transfers));
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A tenant's call records, newest first (by `started_at`, then id).
    /// `extension` matches the caller, the callee or who answered;
    /// `since_ms <= started_at < until_ms`; at most `limit` (0 = 100,
    /// capped to 1000).
    pub async fn call_records(
        &self,
        tenant_id: &str,
        q: &CallRecordQuery,
    ) -> Result<Vec<CallRecord>, StoreError> {
        if self.directory().tenant(tenant_id).is_none() {
            return Err(StoreError::NotFound("tenant"));
        }
        let mut sql = format!("SELECT {COLUMNS} FROM call_records WHERE tenant_id = $1");
        let mut n = 1;
        let mut param = || {
            n += 1;
            format!("${n}")
        };
        if q.extension.is_some() {
            let (a, b, c) = (param(), param(), param());
            sql.push_str(&format!(
                " AND (caller = {a} OR callee = {b} OR answered_by = {c})"
            ));
        }
        if q.since_ms.is_some() {
            sql.push_str(&format!(" AND started_at >= {}", param()));
        }
        if q.until_ms.is_some() {
            sql.push_str(&format!(" AND started_at < {}", param()));
        }
        sql.push_str(&format!(
            " ORDER BY started_at DESC, id DESC LIMIT {}",
            param()
        ));
        let mut query = sqlx::query(&sql).bind(tenant_id);
        if let Some(e) = &q.extension {
            query = query.bind(e).bind(e).bind(e);
        }
        if let Some(t) = q.since_ms {
            query = query.bind(t);
        }
        if let Some(t) = q.until_ms {
            query = query.bind(t);
        }
        let limit = match q.limit {
            0 => DEFAULT_CALL_RECORDS,
            l => l.min(MAX_CALL_RECORDS),
        };
        query = query.bind(i64::from(limit));
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(call_record_of)
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

fn call_record_of(row: &AnyRow) -> Result<CallRecord, sqlx::Error> {
    let transfers: String = row.try_get(10)?;
    Ok(CallRecord {
        id: row.try_get(0)?,
        tenant_id: row.try_get(1)?,
        caller: row.try_get(2)?,
        caller_name: row.try_get(3)?,
        callee: row.try_get(4)?,
        answered_by: row.try_get(5)?,
        started_at: row.try_get(6)?,
        answered_at: row.try_get(7)?,
        ended_at: row.try_get(8)?,
        end_reason: row.try_get(9)?,
        transfers: decode_strings(&transfers).ok_or_else(|| {
            sqlx::Error::Decode(
                format!("call record transfers are not a JSON array of strings: {transfers:?}")
                    .into(),
            )
        })?,
    })
}

/// A JSON array of strings (the crate has no JSON dependency, and this
/// is all of JSON it needs).
pub(crate) fn encode_strings(v: &[String]) -> String {
    let mut out = String::from("[");
    for (i, s) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push(']');
    out
}

/// Parse a JSON array of strings (RFC 8259: whitespace, every escape,
/// surrogate pairs); `None` for anything else.
pub(crate) fn decode_strings(s: &str) -> Option<Vec<String>> {
    let mut it = s.chars().peekable();
    let skip_ws = |it: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while matches!(it.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            it.next();
        }
    };
    let hex4 = |it: &mut std::iter::Peekable<std::str::Chars<'_>>| -> Option<u32> {
        let mut v = 0;
        for _ in 0..4 {
            v = v * 16 + it.next()?.to_digit(16)?;
        }
        Some(v)
    };
    let mut out = Vec::new();
    skip_ws(&mut it);
    if it.next()? != '[' {
        return None;
    }
    skip_ws(&mut it);
    if it.peek() == Some(&']') {
        it.next();
    } else {
        loop {
            skip_ws(&mut it);
            if it.next()? != '"' {
                return None;
            }
            let mut item = String::new();
            loop {
                match it.next()? {
                    '"' => break,
                    '\\' => match it.next()? {
                        '"' => item.push('"'),
                        '\\' => item.push('\\'),
                        '/' => item.push('/'),
                        'b' => item.push('\u{8}'),
                        'f' => item.push('\u{c}'),
                        'n' => item.push('\n'),
                        'r' => item.push('\r'),
                        't' => item.push('\t'),
                        'u' => {
                            let hi = hex4(&mut it)?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if it.next()? != '\\' || it.next()? != 'u' {
                                    return None;
                                }
                                let lo = hex4(&mut it)?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return None;
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            item.push(char::from_u32(code)?);
                        }
                        _ => return None,
                    },
                    c if (c as u32) < 0x20 => return None,
                    c => item.push(c),
                }
            }
            out.push(item);
            skip_ws(&mut it);
            match it.next()? {
                ',' => continue,
                ']' => break,
                _ => return None,
            }
        }
    }
    skip_ws(&mut it);
    if it.next().is_some() {
        return None;
    }
    Some(out)
}
