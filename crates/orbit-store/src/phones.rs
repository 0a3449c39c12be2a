//! Desk phones Orbit provisions: one row per physical phone (its MAC is
//! unique across all tenants), the extension it registers as, its function
//! keys, and a per-phone provisioning password of which only a SHA-256 is
//! kept (as for API tokens). Every change raises `config_version`; deleting
//! the phone's extension leaves the phone without identity (`extension`
//! null) rather than refusing the deletion.

use std::collections::HashSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::error::StoreError;
use crate::model::{Phone, PhoneKey, PhoneKeyKind, PhonePatch, PhoneSpec};
use crate::now_ms;
use crate::store::{conflict, Store};
use crate::tokens::token_hash;

/// Vendors Orbit can provision.
pub const PHONE_VENDORS: &[&str] = &["snom", "yealink", "fanvil"];
/// At most this many function keys per phone.
pub const MAX_PHONE_KEYS: usize = 120;
/// A phone's `label` and a key's `label` are at most this many characters.
pub const MAX_PHONE_LABEL: usize = 64;
pub const MAX_KEY_LABEL: usize = 32;
/// A model name is 1 to this many letters, digits, `-` or `_`.
pub const MAX_PHONE_MODEL: usize = 32;

const COLUMNS: &str = "id, tenant_id, mac, vendor, model, extension, label, keys, password_hash, config_version, provisioned_at, created_at, updated_at";

fn invalid(field: &'static str, message: String) -> StoreError {
    StoreError::Invalid { field, message }
}

/// Whether `mac` is 12 lower-case hex digits (the stored form).
pub fn is_phone_mac(mac: &str) -> bool {
    mac.len() == 12 && mac.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A MAC as people write it (`00:04:13:AB:CD:EF`, `00-04-13-ab-cd-ef`,
/// `000413ABCDEF`) in the stored form, or `None`.
pub fn normalize_mac(mac: &str) -> Option<String> {
    let hex: String = mac
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    is_phone_mac(&hex).then_some(hex)
}

/// Whether `n` is a number a speed dial may dial: 1 to 32 of digits, `*`,
/// `#`, and a leading `+`.
pub fn is_dial_string(n: &str) -> bool {
    let rest = n.strip_prefix('+').unwrap_or(n);
    !rest.is_empty()
        && n.len() <= 32
        && rest
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
}

/// A new random provisioning password (24 URL-safe characters).
pub fn new_phone_password() -> String {
    let mut raw = [0u8; 18];
    rand::rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

impl Store {
    /// Add a phone; returns it with its provisioning password (shown once).
    pub async fn create_phone(
        &self,
        tenant_id: &str,
        spec: PhoneSpec,
    ) -> Result<(Phone, String), StoreError> {
        let _w = self.writes.lock().await;
        if self.directory().tenant(tenant_id).is_none() {
            return Err(StoreError::NotFound("tenant"));
        }
        let now = now_ms();
        let password = new_phone_password();
        let p = Phone {
            id: uuid::Uuid::new_v4().simple().to_string(),
            tenant_id: tenant_id.to_string(),
            mac: spec.mac,
            vendor: spec.vendor,
            model: spec.model,
            extension: spec.extension,
            label: spec.label,
            keys: spec.keys,
            password_hash: token_hash(&password),
            config_version: 1,
            provisioned_at: None,
            created_at: now,
            updated_at: now,
        };
        self.check_phone(&p)?;
        if self.directory().phone_by_mac(&p.mac).is_some() {
            return Err(StoreError::Conflict("mac"));
        }
        let sql = format!(
            "INSERT INTO phones ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        sqlx::query(&sql)
            .bind(&p.id)
            .bind(&p.tenant_id)
            .bind(&p.mac)
            .bind(&p.vendor)
            .bind(&p.model)
            .bind(p.extension.as_deref())
            .bind(&p.label)
            .bind(encode_keys(&p.keys))
            .bind(&p.password_hash)
            .bind(p.config_version)
            .bind(p.provisioned_at)
            .bind(p.created_at)
            .bind(p.updated_at)
            .execute(&self.pool)
            .await
            .map_err(|e| conflict(e, "mac"))?;
        self.edit_directory(|d| d.put_phone(p.clone()));
        Ok((p, password))
    }

    /// Change the fields `patch` sets; raises `config_version`.
    pub async fn update_phone(
        &self,
        tenant_id: &str,
        id: &str,
        patch: PhonePatch,
    ) -> Result<Phone, StoreError> {
        let _w = self.writes.lock().await;
        let mut p = self.phone_for_write(tenant_id, id)?;
        if let Some(m) = patch.model {
            p.model = m;
        }
        if let Some(e) = patch.extension {
            p.extension = e;
        }
        if let Some(l) = patch.label {
            p.label = l;
        }
        if let Some(k) = patch.keys {
            p.keys = k;
        }
        self.check_phone(&p)?;
        p.config_version += 1;
        p.updated_at = now_ms();
        let mut conn = self.pool.acquire().await?;
        write_phone(&mut conn, &p).await?;
        self.edit_directory(|d| d.put_phone(p.clone()));
        Ok(p)
    }

    /// Mark the phone's configuration as changed (`config_version` + 1)
    /// without changing anything else, so it is provisioned again.
    pub async fn reprovision_phone(&self, tenant_id: &str, id: &str) -> Result<Phone, StoreError> {
        self.update_phone(tenant_id, id, PhonePatch::default())
            .await
    }

    /// A new provisioning password; the old one stops working at once.
    pub async fn reset_phone_password(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<(Phone, String), StoreError> {
        let _w = self.writes.lock().await;
        let mut p = self.phone_for_write(tenant_id, id)?;
        let password = new_phone_password();
        p.password_hash = token_hash(&password);
        p.updated_at = now_ms();
        let mut conn = self.pool.acquire().await?;
        write_phone(&mut conn, &p).await?;
        self.edit_directory(|d| d.put_phone(p.clone()));
        Ok((p, password))
    }

    pub async fn delete_phone(&self, tenant_id: &str, id: &str) -> Result<(), StoreError> {
        let _w = self.writes.lock().await;
        self.phone_for_write(tenant_id, id)?;
        sqlx::query("DELETE FROM phones WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.edit_directory(|d| d.remove_phone(id));
        Ok(())
    }

    /// Record a successful configuration fetch at `at_ms`. A phone deleted
    /// meanwhile is not an error.
    pub async fn phone_provisioned(&self, id: &str, at_ms: i64) -> Result<(), StoreError> {
        // Not under the write lock: a fetch storm from booting phones must
        // not queue admin writes. Only this column is written, and the
        // directory copy is updated in place under the directory's own
        // lock, so a concurrent admin change is never overwritten.
        let done = sqlx::query("UPDATE phones SET provisioned_at = $1 WHERE id = $2")
            .bind(at_ms)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 1 {
            self.edit_directory(|d| {
                if let Some(cur) = d.phone_by_id(id) {
                    let mut p = (*cur).clone();
                    p.provisioned_at = Some(at_ms);
                    d.put_phone(p);
                }
            });
        }
        Ok(())
    }

    fn phone_for_write(&self, tenant_id: &str, id: &str) -> Result<Phone, StoreError> {
        self.directory()
            .phone(tenant_id, id)
            .map(|p| (*p).clone())
            .ok_or(StoreError::NotFound("phone"))
    }

    /// The tenant's phones registering as `number`, as they become once
    /// that extension is gone: no extension, and keys naming it dropped.
    /// Written by [`write_phone`] in the caller's transaction; the caller
    /// holds the write lock.
    pub(crate) fn phones_without(&self, tenant_id: &str, number: &str, now: i64) -> Vec<Phone> {
        self.directory()
            .phones(tenant_id)
            .iter()
            .filter_map(|p| {
                let mut p = (**p).clone();
                let mut changed = false;
                if p.extension.as_deref() == Some(number) {
                    p.extension = None;
                    changed = true;
                }
                let before = p.keys.len();
                p.keys.retain(|k| {
                    !(matches!(k.kind, PhoneKeyKind::Blf | PhoneKeyKind::VisualPark)
                        && k.target.as_deref() == Some(number))
                });
                changed |= p.keys.len() != before;
                if !changed {
                    return None;
                }
                p.config_version += 1;
                p.updated_at = now;
                Some(p)
            })
            .collect()
    }

    /// The rules of a phone record; 422 naming the field.
    fn check_phone(&self, p: &Phone) -> Result<(), StoreError> {
        if !is_phone_mac(&p.mac) {
            return Err(invalid(
                "mac",
                "mac must be 12 hexadecimal digits, such as 000413a1b2c3".into(),
            ));
        }
        if !PHONE_VENDORS.contains(&p.vendor.as_str()) {
            return Err(invalid(
                "vendor",
                format!("vendor must be one of: {}", PHONE_VENDORS.join(", ")),
            ));
        }
        if p.model.is_empty()
            || p.model.len() > MAX_PHONE_MODEL
            || !p
                .model
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                "model",
                format!(
                    "model must be 1 to {MAX_PHONE_MODEL} letters, digits, - or _, such as D785"
                ),
            ));
        }
        if p.label.chars().count() > MAX_PHONE_LABEL || p.label.chars().any(char::is_control) {
            return Err(invalid(
                "label",
                format!(
                    "label must be at most {MAX_PHONE_LABEL} characters without control characters"
                ),
            ));
        }
        let dir = self.directory();
        if let Some(e) = &p.extension {
            if dir.extension(&p.tenant_id, e).is_none() {
                return Err(invalid(
                    "extension",
                    format!("extension {e} does not exist"),
                ));
            }
        }
        if p.keys.len() > MAX_PHONE_KEYS {
            return Err(invalid(
                "keys",
                format!("keys must list at most {MAX_PHONE_KEYS} keys"),
            ));
        }
        let mut blf_seen = HashSet::new();
        for (i, k) in p.keys.iter().enumerate() {
            let bad = |what: String| invalid("keys", format!("keys[{i}]: {what}"));
            if let Some(l) = &k.label {
                if l.is_empty()
                    || l.chars().count() > MAX_KEY_LABEL
                    || l.chars().any(char::is_control)
                {
                    return Err(bad(format!(
                        "label must be 1 to {MAX_KEY_LABEL} characters without control characters"
                    )));
                }
            }
            let ext = |t: &Option<String>, required: bool| -> Result<(), StoreError> {
                match t {
                    None if required => Err(bad(format!(
                        "a {} key needs a target extension",
                        k.kind.as_str()
                    ))),
                    None => Ok(()),
                    Some(t) if dir.extension(&p.tenant_id, t).is_some() => Ok(()),
                    Some(t) => Err(bad(format!("extension {t} does not exist"))),
                }
            };
            match k.kind {
                PhoneKeyKind::VisualPark => ext(&k.target, false)?,
                PhoneKeyKind::Blf => {
                    ext(&k.target, true)?;
                    if !blf_seen.insert(k.target.clone()) {
                        return Err(bad(format!(
                            "a blf key for {} is listed more than once",
                            k.target.as_deref().unwrap_or_default()
                        )));
                    }
                }
                PhoneKeyKind::VisualGroupPark => {
                    if k.target.is_some() {
                        return Err(bad(
                            "a visual_group_park key takes no target: it shows the park group of the phone's extension".into(),
                        ));
                    }
                }
                PhoneKeyKind::SpeedDial => match &k.target {
                    Some(t) if is_dial_string(t) => {}
                    _ => {
                        return Err(bad(
                            "a speed_dial key needs a target of 1 to 32 digits, * or # (a leading + allowed)".into(),
                        ))
                    }
                },
            }
        }
        Ok(())
    }
}

/// Write every changeable column of `p` (its row exists).
pub(crate) async fn write_phone(conn: &mut AnyConnection, p: &Phone) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE phones SET model = $1, extension = $2, label = $3, keys = $4, password_hash = $5, config_version = $6, updated_at = $7 WHERE id = $8",
    )
    .bind(&p.model)
    .bind(p.extension.as_deref())
    .bind(&p.label)
    .bind(encode_keys(&p.keys))
    .bind(&p.password_hash)
    .bind(p.config_version)
    .bind(p.updated_at)
    .bind(&p.id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(crate) fn select_phones() -> String {
    format!("SELECT {COLUMNS} FROM phones")
}

pub(crate) fn phone_of(row: &AnyRow) -> Result<Phone, sqlx::Error> {
    let keys: String = row.try_get(7)?;
    Ok(Phone {
        id: row.try_get(0)?,
        tenant_id: row.try_get(1)?,
        mac: row.try_get(2)?,
        vendor: row.try_get(3)?,
        model: row.try_get(4)?,
        extension: row.try_get(5)?,
        label: row.try_get(6)?,
        keys: decode_keys(&keys).ok_or_else(|| {
            sqlx::Error::Decode(format!("phone keys are not a JSON key list: {keys:?}").into())
        })?,
        password_hash: row.try_get(8)?,
        config_version: row.try_get(9)?,
        provisioned_at: row.try_get(10)?,
        created_at: row.try_get(11)?,
        updated_at: row.try_get(12)?,
    })
}

fn push_json_string(out: &mut String, s: &str) {
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

/// The keys as a JSON array of `{"type","target","label"}` (null for
/// absent values). The crate has no JSON dependency; this and
/// [`decode_keys`] are all of JSON it needs here.
pub(crate) fn encode_keys(keys: &[PhoneKey]) -> String {
    let mut out = String::from("[");
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"type\":");
        push_json_string(&mut out, k.kind.as_str());
        for (name, v) in [("target", &k.target), ("label", &k.label)] {
            out.push_str(&format!(",\"{name}\":"));
            match v {
                Some(v) => push_json_string(&mut out, v),
                None => out.push_str("null"),
            }
        }
        out.push('}');
    }
    out.push(']');
    out
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

fn skip_ws(it: &mut Chars<'_>) {
    while matches!(it.peek(), Some(' ' | '\t' | '\n' | '\r')) {
        it.next();
    }
}

/// A JSON string whose opening quote is next (RFC 8259 escapes,
/// surrogate pairs).
fn json_string(it: &mut Chars<'_>) -> Option<String> {
    let hex4 = |it: &mut Chars<'_>| -> Option<u32> {
        let mut v = 0;
        for _ in 0..4 {
            v = v * 16 + it.next()?.to_digit(16)?;
        }
        Some(v)
    };
    if it.next()? != '"' {
        return None;
    }
    let mut s = String::new();
    loop {
        match it.next()? {
            '"' => return Some(s),
            '\\' => match it.next()? {
                '"' => s.push('"'),
                '\\' => s.push('\\'),
                '/' => s.push('/'),
                'b' => s.push('\u{8}'),
                'f' => s.push('\u{c}'),
                'n' => s.push('\n'),
                'r' => s.push('\r'),
                't' => s.push('\t'),
                'u' => {
                    let hi = hex4(it)?;
                    let code = if (0xD800..0xDC00).contains(&hi) {
                        if it.next()? != '\\' || it.next()? != 'u' {
                            return None;
                        }
                        let lo = hex4(it)?;
                        if !(0xDC00..0xE000).contains(&lo) {
                            return None;
                        }
                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                    } else {
                        hi
                    };
                    s.push(char::from_u32(code)?);
                }
                _ => return None,
            },
            c if (c as u32) < 0x20 => return None,
            c => s.push(c),
        }
    }
}

/// A string or `null`.
fn json_string_or_null(it: &mut Chars<'_>) -> Option<Option<String>> {
    if it.peek() == Some(&'n') {
        for c in "null".chars() {
            if it.next()? != c {
                return None;
            }
        }
        return Some(None);
    }
    json_string(it).map(Some)
}

/// Parse what [`encode_keys`] writes (any whitespace, members in any
/// order, `target`/`label` optional); `None` for anything else.
pub(crate) fn decode_keys(s: &str) -> Option<Vec<PhoneKey>> {
    let mut it = s.chars().peekable();
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
            if it.next()? != '{' {
                return None;
            }
            let (mut kind, mut target, mut label) = (None, None, None);
            loop {
                skip_ws(&mut it);
                let name = json_string(&mut it)?;
                skip_ws(&mut it);
                if it.next()? != ':' {
                    return None;
                }
                skip_ws(&mut it);
                let v = json_string_or_null(&mut it)?;
                match name.as_str() {
                    "type" => kind = Some(PhoneKeyKind::parse(&v?)?),
                    "target" => target = v,
                    "label" => label = v,
                    _ => return None,
                }
                skip_ws(&mut it);
                match it.next()? {
                    ',' => continue,
                    '}' => break,
                    _ => return None,
                }
            }
            out.push(PhoneKey {
                kind: kind?,
                target,
                label,
            });
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
