//! Field rules for API input. Each failure names its field.

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
}
