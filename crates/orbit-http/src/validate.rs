//! Field rules for API input. Each failure names its field.

use orbit_store::{
    CallRecordQuery, RingStrategy, MAX_CALL_RECORDS, MAX_RING_GROUP_MEMBERS, RING_TIME_S,
};

use crate::error::ApiError;

fn no_controls(field: &str, v: &str) -> Result<(), ApiError> {
    if v.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(())
}

pub fn name(v: &str) -> Result<String, ApiError> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > 100 {
        return Err(ApiError::invalid(
            "name",
            "name must be 1 to 100 characters",
        ));
    }
    no_controls("name", v)?;
    Ok(v.to_string())
}

/// A DNS name (letters, digits, hyphens; labels of 1–63) or an IP literal;
/// stored lower-case.
pub fn domain(v: &str) -> Result<String, ApiError> {
    let d = v.trim().to_ascii_lowercase();
    let bad = || {
        ApiError::invalid(
            "domain",
            "domain must be a DNS name such as pbx.example.com or an IP address",
        )
    };
    if d.is_empty() || d.len() > 253 {
        return Err(bad());
    }
    if d.parse::<std::net::IpAddr>().is_ok() {
        return Ok(d);
    }
    for label in d.split('.') {
        if label.is_empty()
            || label.len() > 63
            || label.starts_with('-')
            || label.ends_with('-')
            || !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(bad());
        }
    }
    if d.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    Ok(d)
}

pub fn number(v: &str) -> Result<String, ApiError> {
    if v.is_empty() || v.len() > 15 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid("number", "number must be 1 to 15 digits"));
    }
    Ok(v.to_string())
}

pub fn password(v: &str) -> Result<String, ApiError> {
    let n = v.chars().count();
    if !(8..=128).contains(&n) {
        return Err(ApiError::invalid(
            "password",
            "password must be 8 to 128 characters",
        ));
    }
    no_controls("password", v)?;
    Ok(v.to_string())
}

/// Display names go into SIP headers as quoted strings: no quotes, backslashes or controls.
pub fn display_name(v: &str) -> Result<String, ApiError> {
    let v = v.trim();
    if v.chars().count() > 64 {
        return Err(ApiError::invalid(
            "display_name",
            "display_name must be at most 64 characters",
        ));
    }
    no_controls("display_name", v)?;
    if v.contains(['"', '\\']) {
        return Err(ApiError::invalid(
            "display_name",
            "display_name must not contain quotes or backslashes",
        ));
    }
    Ok(v.to_string())
}

/// Ring group members: extension numbers, no duplicates, at most
/// [`MAX_RING_GROUP_MEMBERS`]. Whether they exist is the store's check.
pub fn members(v: &[&str]) -> Result<Vec<String>, ApiError> {
    if v.len() > MAX_RING_GROUP_MEMBERS {
        return Err(ApiError::invalid(
            "members",
            format!("members must list at most {MAX_RING_GROUP_MEMBERS} extensions"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(v.len());
    for m in v {
        if number(m).is_err() {
            return Err(ApiError::invalid(
                "members",
                format!("members: {m:?} is not an extension number (1 to 15 digits)"),
            ));
        }
        if out.iter().any(|o| o == m) {
            return Err(ApiError::invalid(
                "members",
                format!("members: extension {m} is listed more than once"),
            ));
        }
        out.push(m.to_string());
    }
    Ok(out)
}

pub fn strategy(v: &str) -> Result<RingStrategy, ApiError> {
    RingStrategy::parse(v)
        .ok_or_else(|| ApiError::invalid("strategy", "strategy must be ring_all or sequential"))
}

pub fn ring_time_s(v: i64) -> Result<u32, ApiError> {
    u32::try_from(v)
        .ok()
        .filter(|t| RING_TIME_S.contains(t))
        .ok_or_else(|| {
            ApiError::invalid(
                "ring_time_s",
                format!(
                    "ring_time_s must be {} to {} seconds",
                    RING_TIME_S.start(),
                    RING_TIME_S.end()
                ),
            )
        })
}

/// An extension or ring group number (existence is the store's check).
pub fn destination(v: &str) -> Result<String, ApiError> {
    number(v).map_err(|_| {
        ApiError::invalid(
            "no_answer_destination",
            "no_answer_destination must be an extension or ring group number (1 to 15 digits) or null",
        )
    })
}

/// The query of `GET .../call-records`: `extension` (1 to 64 characters),
/// `since` and `until` (Unix ms, `since <= started_at < until`), `limit`
/// (1 to [`MAX_CALL_RECORDS`]; absent = the store's default). Unknown or
/// repeated parameters and bad values are 400 naming the parameter.
pub fn call_record_query(pairs: &[(String, String)]) -> Result<CallRecordQuery, ApiError> {
    let mut q = CallRecordQuery::default();
    let mut seen: Vec<&str> = Vec::new();
    for (k, v) in pairs {
        if seen.contains(&k.as_str()) {
            return Err(ApiError::bad_query(
                k,
                format!("{k} is given more than once"),
            ));
        }
        seen.push(k);
        let ms = |field: &str| {
            v.parse::<i64>().ok().filter(|t| *t >= 0).ok_or_else(|| {
                ApiError::bad_query(
                    field,
                    format!("{field} must be a non-negative integer (Unix time in milliseconds)"),
                )
            })
        };
        match k.as_str() {
            "extension" => {
                if v.is_empty() || v.chars().count() > 64 || v.chars().any(char::is_control) {
                    return Err(ApiError::bad_query(
                        "extension",
                        "extension must be 1 to 64 characters without control characters",
                    ));
                }
                q.extension = Some(v.clone());
            }
            "since" => q.since_ms = Some(ms("since")?),
            "until" => q.until_ms = Some(ms("until")?),
            "limit" => {
                q.limit = v
                    .parse::<u32>()
                    .ok()
                    .filter(|l| (1..=MAX_CALL_RECORDS).contains(l))
                    .ok_or_else(|| {
                        ApiError::bad_query(
                            "limit",
                            format!("limit must be an integer from 1 to {MAX_CALL_RECORDS}"),
                        )
                    })?;
            }
            _ => {
                return Err(ApiError::bad_query(
                    k,
                    format!("unknown query parameter {k}"),
                ))
            }
        }
    }
    if let (Some(since), Some(until)) = (q.since_ms, q.until_ms) {
        if until < since {
            return Err(ApiError::bad_query(
                "until",
                "until must not be before since",
            ));
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        assert_eq!(domain("PBX.Example.com").unwrap(), "pbx.example.com");
        assert!(domain("192.0.2.10").is_ok());
        assert!(domain("::1").is_ok());
        for bad in ["", "a..b", "-a.b", "a_b.c", "1.2.3", &"a".repeat(64)] {
            assert!(domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_passwords_names() {
        assert!(number("101").is_ok());
        assert!(number("*68").is_err());
        assert!(number("").is_err());
        assert!(password("short").is_err());
        assert!(password("long enough").is_ok());
        assert!(display_name("Alice \"A\"").is_err());
        assert!(name("\u{7}").is_err());
    }

    #[test]
    fn ring_group_fields() {
        assert_eq!(members(&["101", "102"]).unwrap(), ["101", "102"]);
        assert!(members(&["101", "101"]).is_err());
        assert!(members(&["10a"]).is_err());
        let many: Vec<String> = (0..51).map(|i| format!("1{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(members(&many).is_err());
        assert!(members(&many[..50]).is_ok());
        assert_eq!(strategy("sequential").unwrap(), RingStrategy::Sequential);
        assert!(strategy("random").is_err());
        assert_eq!(ring_time_s(5).unwrap(), 5);
        assert!(ring_time_s(4).is_err() && ring_time_s(301).is_err() && ring_time_s(-1).is_err());
        assert!(destination("").is_err());
    }
}
