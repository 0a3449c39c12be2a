//! Input checks that run before anything else sees a message.
//!
//! Order matters: a message is first framed, then its version checked (505),
//! then the headers every response needs, then the rest. Each rejection
//! carries the reason phrase sent back, naming the problem.

use crate::frame::{self, FrameError, Framing, Message, StartLine};
use crate::request::{Method, Request};
use crate::uri::{self, UriError};
use crate::via::Via;

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_message_size: usize,
    /// The `Allow` value sent with 501 (what the application implements).
    pub allow: String,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 65_535,
            allow: allow_header(),
        }
    }
}

/// A request Orbit will not process, with the answer it gets.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub message: Message,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub enum Inbound {
    Request(Box<Request>),
    /// A response; the server has no client transactions yet to give it to.
    Response(Box<Message>),
    Reject(Box<Rejection>),
    /// Nothing can be answered (no usable Via, not SIP at all, a broken
    /// response); the reason is for the log.
    Drop(&'static str),
}

/// Option tags Orbit supports in `Require` (none yet; RFC 3261 §8.2.2.3).
pub const SUPPORTED: &[&str] = &[];

pub fn check(buf: &[u8], framing: Framing, limits: &Limits) -> Inbound {
    let oversize = buf.len() > limits.max_message_size;
    let parsed = match frame::parse_lenient(buf, framing) {
        Ok(p) => p,
        Err(FrameError::Empty) => return Inbound::Drop("keep-alive or empty"),
        Err(_) => return Inbound::Drop("not a SIP message"),
    };
    let message = parsed.message;
    let (method, uri_text, version) = match &message.start {
        StartLine::Response { version, .. } => {
            if parsed.error.is_some() || !version.eq_ignore_ascii_case("SIP/2.0") {
                return Inbound::Drop("malformed response");
            }
            return Inbound::Response(Box::new(message));
        }
        StartLine::Request {
            method,
            uri,
            version,
        } => (method.clone(), uri.clone(), version.clone()),
    };

    // Without a Via a response has nowhere to go. A Via that does not parse
    // is still copied into the answer, which then goes to the source address.
    if message.header("via").is_none() {
        return Inbound::Drop("no Via");
    }
    let reject = |status: u16, reason: &str, headers: Vec<(String, String)>| {
        Inbound::Reject(Box::new(Rejection {
            message: message.clone(),
            status,
            reason: reason.to_string(),
            headers,
        }))
    };
    if method == "ACK" {
        // An ACK is never answered; a flawed one is simply dropped.
        if oversize || parsed.error.is_some() {
            return Inbound::Drop("flawed ACK");
        }
    }
    if oversize {
        return reject(513, "Message Too Large", vec![]);
    }
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return reject(505, "Version Not Supported", vec![]);
    }
    if let Some(e) = parsed.error {
        let reason = match e {
            FrameError::StartLine => "Bad Request (malformed Request-Line)".to_string(),
            other => format!("Bad Request ({other})"),
        };
        return reject(400, &reason, vec![]);
    }
    let mut vias = Vec::new();
    for field in message.header_all("via") {
        // An empty element (`a,,b`) is a syntax error, not something to skip.
        if field.split(',').any(|e| e.trim().is_empty()) {
            return reject(400, "Bad Request (malformed Via)", vec![]);
        }
        let elements = uri::split_list(field);
        for e in elements {
            match Via::parse(e) {
                Some(v) => vias.push(v),
                None => return reject(400, "Bad Request (malformed Via)", vec![]),
            }
        }
    }
    let Some(via) = vias.into_iter().next() else {
        return reject(400, "Bad Request (malformed Via)", vec![]);
    };
    for name in ["from", "to", "call-id", "cseq"] {
        if message.header(name).is_none() {
            return reject(
                400,
                &format!("Bad Request (missing {} header)", display_name(name)),
                vec![],
            );
        }
        if name != "cseq" && message.count(name) > 1 {
            return reject(
                400,
                &format!("Bad Request (more than one {} header)", display_name(name)),
                vec![],
            );
        }
    }
    let cseq_value = message.header("cseq").unwrap_or("");
    let Some((cseq, cseq_method)) = parse_cseq(cseq_value) else {
        return reject(400, "Bad Request (malformed CSeq)", vec![]);
    };
    if message.count("cseq") > 1 {
        return reject(400, "Bad Request (more than one CSeq header)", vec![]);
    }
    if cseq_method != method {
        return reject(
            400,
            "Bad Request (CSeq method does not match the request)",
            vec![],
        );
    }
    let max_forwards = match message.header("max-forwards") {
        None => None,
        Some(v) => match v.trim().parse::<u8>() {
            Ok(n) if v.trim().bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return reject(400, "Bad Request (malformed Max-Forwards)", vec![]),
        },
    };
    if let Some(v) = message.header("expires") {
        let v = v.trim();
        if v.is_empty()
            || v.len() > 10
            || !v.bytes().all(|b| b.is_ascii_digit())
            || v.parse::<u32>().is_err()
        {
            return reject(400, "Bad Request (malformed Expires)", vec![]);
        }
    }
    let call_id = message.header("call-id").unwrap_or("").to_string();
    if call_id.is_empty() || call_id.bytes().any(|b| b.is_ascii_whitespace()) {
        return reject(400, "Bad Request (malformed Call-ID)", vec![]);
    }
    let from = match uri::parse_name_addr(message.header("from").unwrap_or("")) {
        Ok(f) => f,
        Err(_) => return reject(400, "Bad Request (malformed From header)", vec![]),
    };
    let to = match uri::parse_name_addr(message.header("to").unwrap_or("")) {
        Ok(t) => t,
        Err(_) => return reject(400, "Bad Request (malformed To header)", vec![]),
    };

    let Some(method) = Method::from_token(&method) else {
        let allow = vec![("Allow".to_string(), limits.allow.clone())];
        return reject(501, "Not Implemented", allow);
    };
    let uri = match uri::parse_uri(&uri_text) {
        Ok(u) => u,
        Err(UriError::Scheme) => return reject(416, "Unsupported URI Scheme", vec![]),
        Err(UriError::Malformed) => {
            return reject(400, "Bad Request (malformed Request-URI)", vec![])
        }
    };
    if max_forwards == Some(0) && method != Method::Options && method != Method::Ack {
        return reject(483, "Too Many Hops", vec![]);
    }
    if method != Method::Ack && method != Method::Cancel {
        let unsupported: Vec<&str> = message
            .header_all("require")
            .flat_map(uri::split_list)
            .filter(|tag| !SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(tag)))
            .collect();
        if !unsupported.is_empty() {
            let headers = vec![("Unsupported".to_string(), unsupported.join(", "))];
            return reject(420, "Bad Extension", headers);
        }
    }
    Inbound::Request(Box::new(Request {
        method,
        uri,
        from,
        to,
        call_id,
        cseq,
        via,
        max_forwards,
        message,
    }))
}

/// The `Allow` header value: every method Orbit recognises.
pub fn allow_header() -> String {
    Method::ALL
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn display_name(lower: &str) -> &'static str {
    match lower {
        "from" => "From",
        "to" => "To",
        "call-id" => "Call-ID",
        _ => "CSeq",
    }
}

fn parse_cseq(value: &str) -> Option<(u32, String)> {
    let mut parts = value.split_whitespace();
    let num = parts.next()?;
    let method = parts.next()?;
    if parts.next().is_some() || num.len() > 10 || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // RFC 3261 §8.1.1.5: the sequence number is below 2**31.
    let n: u32 = num.parse().ok()?;
    if n >= 1 << 31 || !frame::is_token(method) {
        return None;
    }
    Some((n, method.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(start: &str, extra: &str) -> Vec<u8> {
        format!(
            "{start}\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc\r\nFrom: <sip:101@acme.test>;tag=1\r\nTo: <sip:101@acme.test>\r\nCall-ID: c1\r\n{extra}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn status(bytes: &[u8]) -> u16 {
        match check(bytes, Framing::Datagram, &Limits::default()) {
            Inbound::Reject(r) => r.status,
            Inbound::Request(_) => 0,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn answers_each_class_of_bad_input() {
        assert_eq!(
            status(&msg("OPTIONS sip:acme.test SIP/2.0", "CSeq: 1 OPTIONS\r\n")),
            0
        );
        assert_eq!(
            status(&msg("OPTIONS sip:acme.test SIP/7.0", "CSeq: 1 OPTIONS\r\n")),
            505
        );
        assert_eq!(
            status(&msg("FOO sip:acme.test SIP/2.0", "CSeq: 1 FOO\r\n")),
            501
        );
        assert_eq!(
            status(&msg("REGISTER sip:acme.test SIP/2.0", "CSeq: 1 INVITE\r\n")),
            400
        );
        assert_eq!(
            status(&msg(
                "REGISTER sip:acme.test SIP/2.0",
                "CSeq: 1 REGISTER\r\nMax-Forwards: 0\r\n"
            )),
            483
        );
        assert_eq!(
            status(&msg(
                "REGISTER sip:acme.test SIP/2.0",
                "CSeq: 1 REGISTER\r\nRequire: foo\r\n"
            )),
            420
        );
        assert_eq!(
            status(&msg(
                "REGISTER http://acme.test SIP/2.0",
                "CSeq: 1 REGISTER\r\n"
            )),
            416
        );
        let big = msg(
            "OPTIONS sip:acme.test SIP/2.0",
            &format!("CSeq: 1 OPTIONS\r\nX: {}\r\n", "a".repeat(70_000)),
        );
        assert_eq!(status(&big), 513);
    }

    #[test]
    fn missing_header_is_named() {
        let m = b"OPTIONS sip:acme.test SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCSeq: 1 OPTIONS\r\n\r\n";
        match check(m, Framing::Datagram, &Limits::default()) {
            Inbound::Reject(r) => assert_eq!(r.reason, "Bad Request (missing Call-ID header)"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
