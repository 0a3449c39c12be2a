//! A tiny XML writer helper: escaping for text and attribute values.
//!
//! Everything Orbit writes into a body goes through [`escape`], which
//! replaces all five predefined entities (`& < > " '`), so one function is
//! safe in both text and attribute positions (single or double quoted).
//! Characters XML 1.0 cannot carry at all (controls other than tab, LF and
//! CR) are dropped rather than written, so a hostile display name can
//! never make a body unparsable.

/// Appends `s` to `out`, escaped for text or a quoted attribute value.
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

/// `s`, escaped for text or a quoted attribute value.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

/// Appends ` name="value"` with the value escaped.
pub fn attr(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    escape_into(out, value);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_all_five_entities() {
        assert_eq!(escape(r#"a&b<c>d"e'f"#), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
    }

    #[test]
    fn keeps_unicode_and_whitespace_drops_controls() {
        assert_eq!(escape("Zoë\tß\n"), "Zoë\tß\n");
        assert_eq!(escape("a\u{0}b\u{1b}c\u{FFFF}"), "abc");
    }

    #[test]
    fn no_double_escaping() {
        assert_eq!(escape("&amp;"), "&amp;amp;");
    }
}
