//! Field rules for API input. Each failure names its field.

use std::ops::RangeInclusive;
use std::time::UNIX_EPOCH;

use orbit_store::{
    CallRecordQuery, ParkEventQuery, RecallTo, RingStrategy, MAX_CALL_RECORDS, MAX_DISPLAY_PREFIX,
    MAX_PARK_EVENTS, MAX_PARK_GROUP_MEMBERS, MAX_PARK_GROUP_NAME, MAX_RING_GROUP_MEMBERS,
    PARK_EVENT_KINDS, RING_TIME_S,
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
    name_of_at_most(v, 100)
}

/// A call park group's name (1 to [`MAX_PARK_GROUP_NAME`] characters).
pub fn park_group_name(v: &str) -> Result<String, ApiError> {
    name_of_at_most(v, MAX_PARK_GROUP_NAME)
}

fn name_of_at_most(v: &str, max: usize) -> Result<String, ApiError> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(ApiError::invalid(
            "name",
            format!("name must be 1 to {max} characters"),
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
    members_at_most(v, MAX_RING_GROUP_MEMBERS)
}

/// Call park group members: as [`members`], at most [`MAX_PARK_GROUP_MEMBERS`].
pub fn park_members(v: &[&str]) -> Result<Vec<String>, ApiError> {
    members_at_most(v, MAX_PARK_GROUP_MEMBERS)
}

fn members_at_most(v: &[&str], max: usize) -> Result<Vec<String>, ApiError> {
    if v.len() > max {
        return Err(ApiError::invalid(
            "members",
            format!("members must list at most {max} extensions"),
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
    in_range("ring_time_s", v, &RING_TIME_S, " seconds")
}

/// An integer in `range`; `unit` follows the bounds in the message.
pub fn in_range(
    field: &str,
    v: i64,
    range: &RangeInclusive<u32>,
    unit: &str,
) -> Result<u32, ApiError> {
    u32::try_from(v)
        .ok()
        .filter(|t| range.contains(t))
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                format!("{field} must be {} to {}{unit}", range.start(), range.end()),
            )
        })
}

/// An extension or ring group number (existence is the store's check).
pub fn destination(v: &str) -> Result<String, ApiError> {
    number_in(
        "no_answer_destination",
        v,
        "an extension or ring group number",
    )
}

/// A number in `field`, described as `what` in the message.
pub fn number_in(field: &str, v: &str, what: &str) -> Result<String, ApiError> {
    number(v).map_err(|_| {
        ApiError::invalid(
            field,
            format!("{field} must be {what} (1 to 15 digits) or null"),
        )
    })
}

/// A feature code: `*` or `#` and 1 to 6 digits. That the three codes
/// differ and do not begin one another is the store's check.
pub fn feature_code(field: &str, v: &str) -> Result<String, ApiError> {
    if !orbit_store::is_feature_code(v) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be * or # followed by 1 to 6 digits, such as *68"),
        ));
    }
    Ok(v.to_string())
}

pub fn recall_to(field: &str, v: &str) -> Result<RecallTo, ApiError> {
    RecallTo::parse(v).ok_or_else(|| {
        ApiError::invalid(
            field,
            format!(
                "{field} must be PARKER_ONLY, PARKER_THEN_RING_GROUP, RING_GROUP_ONLY or NUMBER"
            ),
        )
    })
}

/// Put before a display name in SIP headers, as it is (not trimmed).
pub fn display_prefix(field: &str, v: &str) -> Result<String, ApiError> {
    if !orbit_store::is_display_prefix(v) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be at most {MAX_DISPLAY_PREFIX} characters without control characters, quotes or backslashes"),
        ));
    }
    Ok(v.to_string())
}

/// The filters list routes share: `extension` (1 to 64 characters),
/// `since` and `until` (`since <= time < until`), `limit` (1 to `max_limit`;
/// absent = 0, the store's default).
struct ListQuery<'a> {
    extension: Option<String>,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    limit: u32,
    /// The parameters named in `extra`, for the caller to read.
    extra: Vec<(&'a str, &'a str)>,
}

/// A time in a query: Unix milliseconds, or RFC 3339 in UTC as responses
/// write times (`2024-05-01T12:00:00.000Z`).
fn query_time(field: &str, v: &str) -> Result<i64, ApiError> {
    let ms = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        v.parse::<i64>().ok()
    } else {
        humantime::parse_rfc3339(v)
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_millis()).ok())
    };
    ms.ok_or_else(|| {
        ApiError::bad_query(
            field,
            format!("{field} must be Unix time in milliseconds or an RFC 3339 time such as 2024-05-01T12:00:00Z"),
        )
    })
}

/// Unknown or repeated parameters and bad values are 400 naming the
/// parameter.
fn list_query<'a>(
    pairs: &'a [(String, String)],
    max_limit: u32,
    extra: &[&str],
) -> Result<ListQuery<'a>, ApiError> {
    let mut q = ListQuery {
        extension: None,
        since_ms: None,
        until_ms: None,
        limit: 0,
        extra: Vec::new(),
    };
    let mut seen: Vec<&str> = Vec::new();
    for (k, v) in pairs {
        if seen.contains(&k.as_str()) {
            return Err(ApiError::bad_query(
                k,
                format!("{k} is given more than once"),
            ));
        }
        seen.push(k);
        if extra.contains(&k.as_str()) {
            q.extra.push((k, v));
            continue;
        }
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
            "since" => q.since_ms = Some(query_time("since", v)?),
            "until" => q.until_ms = Some(query_time("until", v)?),
            "limit" => {
                q.limit = v
                    .parse::<u32>()
                    .ok()
                    .filter(|l| (1..=max_limit).contains(l))
                    .ok_or_else(|| {
                        ApiError::bad_query(
                            "limit",
                            format!("limit must be an integer from 1 to {max_limit}"),
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

/// The query of `GET .../call-records`: the shared filters on
/// `started_at` (see [`list_query`]), `limit` up to [`MAX_CALL_RECORDS`].
pub fn call_record_query(pairs: &[(String, String)]) -> Result<CallRecordQuery, ApiError> {
    let q = list_query(pairs, MAX_CALL_RECORDS, &[])?;
    Ok(CallRecordQuery {
        extension: q.extension,
        since_ms: q.since_ms,
        until_ms: q.until_ms,
        limit: q.limit,
    })
}

/// The query of `GET .../park-events`: the shared filters on the event's
/// time, `limit` up to [`MAX_PARK_EVENTS`], and `kind`, a comma-separated
/// list of [`PARK_EVENT_KINDS`].
pub fn park_event_query(pairs: &[(String, String)]) -> Result<ParkEventQuery, ApiError> {
    let q = list_query(pairs, MAX_PARK_EVENTS, &["kind"])?;
    let mut kinds: Vec<String> = Vec::new();
    for (_, v) in &q.extra {
        for k in v.split(',') {
            if !PARK_EVENT_KINDS.contains(&k) {
                return Err(ApiError::bad_query(
                    "kind",
                    format!(
                        "kind must be a comma-separated list of {}; {k:?} is none of them",
                        PARK_EVENT_KINDS.join(", ")
                    ),
                ));
            }
            if !kinds.iter().any(|have| have == k) {
                kinds.push(k.to_string());
            }
        }
    }
    Ok(ParkEventQuery {
        extension: q.extension,
        since_ms: q.since_ms,
        until_ms: q.until_ms,
        kinds,
        limit: q.limit,
    })
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

    #[test]
    fn call_park_fields() {
        for ok in ["*68", "#5", "*123456", "#000000"] {
            assert_eq!(feature_code("park_code", ok).unwrap(), ok);
        }
        for bad in ["", "*", "68", "*6a", "*1234567", "**68", "*68#", " *68"] {
            let e = feature_code("park_code", bad).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("park_code"), "{bad:?}");
        }
        assert_eq!(recall_to("r", "NUMBER").unwrap(), RecallTo::Number);
        assert!(recall_to("r", "number").is_err());
        assert_eq!(in_range("x", 1, &(1..=900), "").unwrap(), 1);
        for bad in [0, 901, -1, i64::from(u32::MAX) + 1] {
            assert!(in_range("x", bad, &(1..=900), "").is_err(), "{bad}");
        }
        assert_eq!(display_prefix("p", "").unwrap(), "");
        assert_eq!(display_prefix("p", " Rückruf: ").unwrap(), " Rückruf: ");
        assert!(display_prefix("p", "a\\b").is_err());
        assert!(park_group_name(&"x".repeat(64)).is_ok());
        assert!(park_group_name(&"x".repeat(65)).is_err());
        let many: Vec<String> = (0..101).map(|i| format!("1{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(park_members(&many).is_err());
        assert!(park_members(&many[..100]).is_ok());
    }

    #[test]
    fn query_times() {
        assert_eq!(query_time("since", "0").unwrap(), 0);
        assert_eq!(
            query_time("since", "1700000002000").unwrap(),
            1_700_000_002_000
        );
        assert_eq!(
            query_time("since", "2023-11-14T22:13:22.5Z").unwrap(),
            1_700_000_002_500
        );
        for bad in [
            "",
            "-1",
            "+5",
            "1.5",
            "2023-11-14",
            "99999999999999999999",
            "1969-12-31T23:59:59Z",
        ] {
            let e = query_time("since", bad).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("since"), "{bad:?}");
        }
        let pairs = |q: &[(&str, &str)]| -> Vec<(String, String)> {
            q.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let q =
            park_event_query(&pairs(&[("kind", "ended,parked,ended"), ("limit", "1000")])).unwrap();
        assert_eq!(
            (q.kinds, q.limit),
            (vec!["ended".to_string(), "parked".to_string()], 1000)
        );
        assert!(call_record_query(&pairs(&[("kind", "parked")])).is_err());
    }
}
