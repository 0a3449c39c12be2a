//! Helpers for the line-based `name = value` / `name :value` files of
//! Yealink and Fanvil: one setting per line, so a value must never carry
//! a line break (it would start a setting of its own).

/// `v` with every control character (CR, LF, TAB, NUL, NEL, ...) and the
/// Unicode line and paragraph separators removed and
/// surrounding blanks trimmed: whatever a record holds, it stays on its
/// line.
pub fn clean(v: &str) -> String {
    v.chars()
        .filter(|c| !c.is_control() && !matches!(c, '\u{2028}' | '\u{2029}'))
        .collect::<String>()
        .trim()
        .to_string()
}

/// `host:port` split into host and port (`[v6]:port` keeps its brackets);
/// without a numeric port, the whole text is the host.
pub fn host_port(s: &str) -> (&str, Option<&str>) {
    match s.rsplit_once(':') {
        Some((h, p))
            if !h.is_empty()
                && !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (!h.contains(':') || h.ends_with(']')) =>
        {
            (h, Some(p))
        }
        _ => (s, None),
    }
}

/// 12 hex digits in any case, in stored (lower-case) form.
pub(crate) fn mac_of(s: &str) -> Option<String> {
    let m = s.to_ascii_lowercase();
    (m.len() == 12 && m.bytes().all(|b| b.is_ascii_hexdigit())).then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_and_controls_cannot_reach_the_file() {
        assert_eq!(
            clean("Alice\r\naccount.1.enable = 0"),
            "Aliceaccount.1.enable = 0"
        );
        assert_eq!(clean(" Bob\t\u{0}\u{1b}[1m \u{85}"), "Bob[1m");
        assert_eq!(clean("Zoë & Co"), "Zoë & Co");
        assert_eq!(clean("a\u{2028}b\u{2029}c"), "abc");
    }

    #[test]
    fn host_and_port() {
        assert_eq!(host_port("192.0.2.1:5060"), ("192.0.2.1", Some("5060")));
        assert_eq!(
            host_port("[2001:db8::1]:5060"),
            ("[2001:db8::1]", Some("5060"))
        );
        assert_eq!(host_port("2001:db8::1"), ("2001:db8::1", None));
        assert_eq!(host_port("pbx.test"), ("pbx.test", None));
        assert_eq!(host_port(""), ("", None));
    }
}
