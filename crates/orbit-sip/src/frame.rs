//! Message framing: start line, header fields and body, exactly as received.
//!
//! This layer does not interpret header values beyond what framing needs
//! (Content-Length). It keeps the raw text so an error response can still be
//! built from a message that later checks reject, and so nothing is
//! re-serialised differently from what the peer sent.

use bytes::Bytes;

/// Why a byte sequence is not a SIP message. The `Display` text becomes the
/// reason phrase of a 400 response, so it names the problem for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("empty message")]
    Empty,
    #[error("no blank line after the headers")]
    Incomplete,
    #[error("headers are not valid UTF-8")]
    NotUtf8,
    #[error("malformed start line")]
    StartLine,
    #[error("malformed header line")]
    HeaderLine,
    #[error("malformed Content-Length")]
    ContentLength,
    #[error("conflicting Content-Length headers")]
    ConflictingContentLength,
    #[error("Content-Length larger than the message")]
    BodyTruncated,
    #[error("Content-Length missing on a stream transport")]
    MissingContentLength,
    #[error("message too large")]
    TooLarge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request {
        method: String,
        uri: String,
        version: String,
    },
    Response {
        version: String,
        code: u16,
        reason: String,
    },
}

/// One header field. `name` is the lower-case long form (compact forms
/// expanded), so lookups need no second normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub start: StartLine,
    pub fields: Vec<Field>,
    pub body: Bytes,
}

impl Message {
    /// First value of a header (long or compact name, any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = lookup_name(name);
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_str())
    }

    /// All field values of a header, in order, without splitting commas.
    pub fn header_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let name = lookup_name(name).into_owned();
        self.fields
            .iter()
            .filter(move |f| f.name == name)
            .map(|f| f.value.as_str())
    }

    pub fn count(&self, name: &str) -> usize {
        self.header_all(name).count()
    }
}

/// Where the message came from decides how its end is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// A datagram: the body is the rest of it, cut at Content-Length.
    Datagram,
    /// A stream: Content-Length is mandatory and says where the next message starts.
    Stream,
}

/// Internal callers pass canonical (lower-case long) names; only other
/// spellings pay for normalising.
fn lookup_name(name: &str) -> std::borrow::Cow<'_, str> {
    if name.len() > 1 && !name.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(canonical_name(name))
    }
}

/// Long form for the RFC 3261 §7.3.3 and later compact header names.
pub fn canonical_name(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    let long = match lower.as_str() {
        "i" => "call-id",
        "m" => "contact",
        "e" => "content-encoding",
        "l" => "content-length",
        "c" => "content-type",
        "f" => "from",
        "s" => "subject",
        "k" => "supported",
        "t" => "to",
        "v" => "via",
        "o" => "event",
        "r" => "refer-to",
        "b" => "referred-by",
        "x" => "session-expires",
        "u" => "allow-events",
        "a" => "accept-contact",
        "j" => "reject-contact",
        "d" => "request-disposition",
        "y" => "identity",
        _ => return lower,
    };
    long.to_string()
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Length of the header section including its terminating blank line, if
/// the buffer holds one. Lines may end in CRLF or a bare LF.
pub fn header_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            let rest = &buf[i + 1..];
            if rest.starts_with(b"\r\n") {
                return Some(i + 3);
            }
            if rest.starts_with(b"\n") {
                return Some(i + 2);
            }
        }
        i += 1;
    }
    None
}

/// A message as far as it could be framed, with the first problem found.
/// Keeping the fields of a flawed message lets the caller still answer it
/// (a 400 needs Via, From, To, Call-ID and CSeq).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub message: Message,
    pub error: Option<FrameError>,
}

/// Parse one message strictly. For `Framing::Stream` the caller has already
/// cut the buffer at header end + Content-Length (see [`stream_message_len`]).
pub fn parse(buf: &[u8], framing: Framing) -> Result<Message, FrameError> {
    let parsed = parse_lenient(buf, framing)?;
    match parsed.error {
        Some(e) => Err(e),
        None => Ok(parsed.message),
    }
}

/// Parse one message, carrying on past flaws that still leave it answerable.
/// Fails only when there is no start line or no complete header section.
pub fn parse_lenient(buf: &[u8], framing: Framing) -> Result<Parsed, FrameError> {
    // RFC 3261 §7.5: empty lines before the start line are ignored.
    let start = buf
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .ok_or(FrameError::Empty)?;
    let buf = &buf[start..];
    let head_len = header_end(buf).ok_or(FrameError::Incomplete)?;
    let head = std::str::from_utf8(&buf[..head_len]).map_err(|_| FrameError::NotUtf8)?;
    let rest = &buf[head_len..];

    let mut error = None;
    let mut lines = logical_lines(head);
    let first = lines.next().ok_or(FrameError::StartLine)?;
    let (start_line, start_ok) = parse_start_line(&first)?;
    if !start_ok {
        error = Some(FrameError::StartLine);
    }

    let mut fields = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            error.get_or_insert(FrameError::HeaderLine);
            continue;
        };
        // RFC 3261 allows whitespace between the name and the colon.
        let name = name.trim_end_matches([' ', '\t']);
        if !is_token(name) {
            error.get_or_insert(FrameError::HeaderLine);
            continue;
        }
        fields.push(Field {
            name: canonical_name(name),
            value: value.trim_matches([' ', '\t']).to_string(),
        });
    }

    let body: &[u8] = match content_length(&fields) {
        Err(e) => {
            error.get_or_insert(e);
            &[]
        }
        Ok(Some(len)) if len > rest.len() => {
            error.get_or_insert(FrameError::BodyTruncated);
            &[]
        }
        Ok(Some(len)) => &rest[..len],
        Ok(None) if framing == Framing::Datagram => rest,
        Ok(None) => {
            error.get_or_insert(FrameError::MissingContentLength);
            &[]
        }
    };
    Ok(Parsed {
        message: Message {
            start: start_line,
            fields,
            body: Bytes::copy_from_slice(body),
        },
        error,
    })
}

/// The Content-Length of the message's fields; several equal values are
/// tolerated, different ones are not.
fn content_length(fields: &[Field]) -> Result<Option<usize>, FrameError> {
    let mut found: Option<usize> = None;
    for f in fields.iter().filter(|f| f.name == "content-length") {
        let v = f.value.trim();
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) || v.len() > 9 {
            return Err(FrameError::ContentLength);
        }
        let n: usize = v.parse().map_err(|_| FrameError::ContentLength)?;
        match found {
            Some(prev) if prev != n => return Err(FrameError::ConflictingContentLength),
            _ => found = Some(n),
        }
    }
    Ok(found)
}

/// On a stream, how many bytes the next message occupies, once its header
/// section has fully arrived. `Ok(None)` means: wait for more bytes.
///
/// `scanned` carries, between calls on a growing buffer, how far the search
/// for the end of the header section got, so a header that arrives a byte at
/// a time is not rescanned from the start on every read. Start it at 0 and
/// reset it to 0 after taking a message off the buffer.
pub fn stream_message_len(
    buf: &[u8],
    max: usize,
    scanned: &mut usize,
) -> Result<Option<usize>, FrameError> {
    let skip = buf
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .unwrap_or(buf.len());
    // Back off three bytes: a CRLFCRLF may straddle the previous end.
    let from = (*scanned).saturating_sub(3).max(skip);
    let Some(found) = header_end(&buf[from..]) else {
        *scanned = buf.len();
        if buf.len() > max {
            return Err(FrameError::TooLarge);
        }
        return Ok(None);
    };
    let head_len = from - skip + found;
    let head = std::str::from_utf8(&buf[skip..skip + head_len]).map_err(|_| FrameError::NotUtf8)?;
    let mut fields = Vec::new();
    for line in logical_lines(head).skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            let name = canonical_name(name);
            if name == "content-length" {
                fields.push(Field {
                    name,
                    value: value.trim().to_string(),
                });
            }
        }
    }
    let body = content_length(&fields)?.ok_or(FrameError::MissingContentLength)?;
    let total = skip + head_len + body;
    if total > max {
        return Err(FrameError::TooLarge);
    }
    Ok(if buf.len() >= total {
        Some(total)
    } else {
        None
    })
}

/// Lines of the header section with RFC 3261 §7.3.1 folding undone
/// (a line starting with SP or HT continues the previous one).
fn logical_lines(head: &str) -> impl Iterator<Item = std::borrow::Cow<'_, str>> + '_ {
    use std::borrow::Cow;
    let mut out: Vec<Cow<'_, str>> = Vec::with_capacity(24);
    for raw in head.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if (line.starts_with(' ') || line.starts_with('\t')) && !out.is_empty() {
            if let Some(last) = out.last_mut() {
                let joined = last.to_mut();
                joined.push(' ');
                joined.push_str(line.trim_start_matches([' ', '\t']));
            }
        } else {
            out.push(Cow::Borrowed(line));
        }
    }
    out.into_iter()
}

/// The start line, and whether it was well formed. A request line with the
/// wrong number of spaces is still returned (method, the middle as URI, the
/// last word as version) so the caller can answer 505 or 400 as fits.
fn parse_start_line(line: &str) -> Result<(StartLine, bool), FrameError> {
    // Compare bytes: the line is UTF-8, and byte 4 need not be a char boundary.
    if line
        .as_bytes()
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
    {
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().ok_or(FrameError::StartLine)?;
        let code = parts.next().ok_or(FrameError::StartLine)?;
        let reason = parts.next().unwrap_or("");
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FrameError::StartLine);
        }
        let code: u16 = code.parse().map_err(|_| FrameError::StartLine)?;
        if !(100..700).contains(&code) {
            return Err(FrameError::StartLine);
        }
        let start = StartLine::Response {
            version: version.to_string(),
            code,
            reason: reason.to_string(),
        };
        return Ok((start, true));
    }
    // Request-Line = Method SP Request-URI SP SIP-Version: exactly one SP each.
    let parts: Vec<&str> = line.split(' ').collect();
    if parts.len() < 3 || !is_token(parts[0]) {
        return Err(FrameError::StartLine);
    }
    let ok = parts.len() == 3 && parts.iter().all(|p| !p.is_empty());
    // With stray spaces the version is still the last word, so a bad
    // version is told apart from bad spacing.
    let words: Vec<&str> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    if words.len() < 3 {
        return Err(FrameError::StartLine);
    }
    let start = StartLine::Request {
        method: words[0].to_string(),
        uri: words[1..words.len() - 1].join(" "),
        version: words[words.len() - 1].to_string(),
    };
    Ok((start, ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REG: &str = "REGISTER sip:acme.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\nf: <sip:101@acme.test>;tag=a\r\nt: <sip:101@acme.test>\r\ni: abc\r\nCSeq: 1 REGISTER\r\nSubject: first\r\n line two\r\nl: 4\r\n\r\nbodyEXTRA";

    #[test]
    fn parses_compact_folded_and_cuts_body() {
        let m = parse(REG.as_bytes(), Framing::Datagram).unwrap();
        assert_eq!(m.header("From"), Some("<sip:101@acme.test>;tag=a"));
        assert_eq!(m.header("call-id"), Some("abc"));
        assert_eq!(m.header("subject"), Some("first line two"));
        assert_eq!(&m.body[..], b"body");
    }

    #[test]
    fn rejects_negative_and_conflicting_lengths() {
        let neg = REG.replace("l: 4", "l: -4");
        assert_eq!(
            parse(neg.as_bytes(), Framing::Datagram),
            Err(FrameError::ContentLength)
        );
        let two = REG.replace("l: 4", "l: 4\r\nContent-Length: 5");
        assert_eq!(
            parse(two.as_bytes(), Framing::Datagram),
            Err(FrameError::ConflictingContentLength)
        );
        let long = REG.replace("l: 4", "l: 400");
        assert_eq!(
            parse(long.as_bytes(), Framing::Datagram),
            Err(FrameError::BodyTruncated)
        );
    }

    #[test]
    fn stream_length_waits_then_frames() {
        let msg = REG.replace("bodyEXTRA", "body");
        let bytes = msg.as_bytes();
        let mut scanned = 0;
        assert_eq!(
            stream_message_len(&bytes[..20], 65535, &mut scanned),
            Ok(None)
        );
        assert_eq!(scanned, 20);
        assert_eq!(
            stream_message_len(bytes, 65535, &mut scanned),
            Ok(Some(bytes.len()))
        );
        assert_eq!(
            stream_message_len(bytes, 10, &mut 0),
            Err(FrameError::TooLarge)
        );
        // Fed a byte at a time, the end is still found where it straddles reads.
        let mut scanned = 0;
        let mut result = Ok(None);
        for n in 1..=bytes.len() {
            result = stream_message_len(&bytes[..n], 65535, &mut scanned);
            if result != Ok(None) {
                break;
            }
        }
        assert_eq!(result, Ok(Some(bytes.len())));
    }

    #[test]
    fn start_line_needs_single_spaces() {
        let bad = REG.replace(
            "REGISTER sip:acme.test SIP/2.0",
            "REGISTER  sip:acme.test SIP/2.0",
        );
        assert_eq!(
            parse(bad.as_bytes(), Framing::Datagram),
            Err(FrameError::StartLine)
        );
    }

    #[test]
    fn multibyte_start_line_does_not_panic() {
        assert!(parse("a\u{e9}\u{e9}\r\n\r\n".as_bytes(), Framing::Datagram).is_err());
        // Not a token method: refused, not a panic.
        assert!(parse(
            "\u{e9}\u{e9}\u{e9} x SIP/2.0\r\n\r\n".as_bytes(),
            Framing::Datagram
        )
        .is_err());
    }

    proptest::proptest! {
        #[test]
        fn valid_utf8_never_panics(s in "\\PC{0,40}(\r\n[^\r\n]{0,30}){0,4}\r\n\r\n") {
            let _ = parse(s.as_bytes(), Framing::Datagram);
            let _ = crate::sanity::check(s.as_bytes(), Framing::Datagram, &crate::sanity::Limits::default());
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = parse(&data, Framing::Datagram);
            let _ = stream_message_len(&data, 1000, &mut 0);
        }
    }
}
