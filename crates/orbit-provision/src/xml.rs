/// `s` escaped for XML text and attribute values (`&`, `<`, `>`, `"`,
/// `'`); control characters other than tab and newlines are dropped, as
/// XML 1.0 cannot carry them.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes() {
        assert_eq!(
            super::escape("a&b<c>\"d' é\u{1}\n"),
            "a&amp;b&lt;c&gt;&quot;d&apos; é\n"
        );
    }
}
