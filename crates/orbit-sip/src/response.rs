//! Building responses from the request they answer (RFC 3261 §8.2.6).

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

use bytes::Bytes;

use crate::frame::Message;
use crate::uri;
use crate::via::Via;

pub const SERVER: &str = concat!("Orbit/", env!("CARGO_PKG_VERSION"));

/// A response to be sent, before it is turned into bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<(String, Bytes)>,
}

impl Response {
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Response {
            status,
            reason: reason.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn is_final(&self) -> bool {
        self.status >= 200
    }
}

/// A To tag that is the same for every retransmission of one request, so a
/// rebuilt answer matches the one sent first.
pub fn stable_tag(req: &Message) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    req.header("call-id").hash(&mut h);
    req.header("from").hash(&mut h);
    req.header("cseq").hash(&mut h);
    req.header("via").hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Serialise `resp` as the answer to `req`, received from `source`.
pub fn encode(req: &Message, source: SocketAddr, resp: &Response) -> Bytes {
    use std::fmt::Write;
    let mut out = String::with_capacity(640);
    // Writing into a String cannot fail.
    let _ = write!(out, "SIP/2.0 {} {}\r\n", resp.status, resp.reason);
    let mut first = true;
    for field in req.header_all("via") {
        for value in uri::split_list(field) {
            out.push_str("Via: ");
            match (first, Via::parse(value)) {
                (true, Some(via)) => out.push_str(&Via::stamp(value, &via, source)),
                _ => out.push_str(value),
            }
            out.push_str("\r\n");
            first = false;
        }
    }
    let mut line = |name: &str, value: &str| {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    };
    if let Some(from) = req.header("from") {
        line("From", from);
    }
    if let Some(to) = req.header("to") {
        let has_tag = uri::parse_name_addr(to)
            .map(|n| n.tag().is_some())
            .unwrap_or(true);
        if resp.status > 100 && !has_tag {
            line("To", &format!("{to};tag={}", stable_tag(req)));
        } else {
            line("To", to);
        }
    }
    if let Some(call_id) = req.header("call-id") {
        line("Call-ID", call_id);
    }
    if let Some(cseq) = req.header("cseq") {
        line("CSeq", cseq);
    }
    for (name, value) in &resp.headers {
        line(name, value);
    }
    line("Server", SERVER);
    let mut bytes = out.into_bytes();
    match &resp.body {
        Some((content_type, body)) => {
            bytes.extend_from_slice(b"Content-Type: ");
            bytes.extend_from_slice(content_type.as_bytes());
            bytes.extend_from_slice(
                format!("\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(),
            );
            bytes.extend_from_slice(body);
        }
        None => bytes.extend_from_slice(b"Content-Length: 0\r\n\r\n"),
    }
    Bytes::from(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{parse, Framing};

    #[test]
    fn copies_dialog_headers_and_tags_to() {
        let req = parse(
            b"REGISTER sip:acme.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport, SIP/2.0/UDP p.example;branch=z9hG4bK0\r\nFrom: <sip:101@acme.test>;tag=a\r\nTo: <sip:101@acme.test>\r\nCall-ID: x\r\nCSeq: 7 REGISTER\r\nContent-Length: 0\r\n\r\n",
            Framing::Datagram,
        )
        .unwrap();
        let src = "192.0.2.5:6000".parse().unwrap();
        let bytes = encode(&req, src, &Response::new(200, "OK").header("Expires", "60"));
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.starts_with("SIP/2.0 200 OK\r\n"));
        assert!(text.contains("Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport=6000;received=192.0.2.5\r\nVia: SIP/2.0/UDP p.example;branch=z9hG4bK0\r\n"));
        assert!(text.contains(&format!(
            "To: <sip:101@acme.test>;tag={}\r\n",
            stable_tag(&req)
        )));
        assert!(text.contains("CSeq: 7 REGISTER\r\nExpires: 60\r\n"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
        let again = parse(&bytes, Framing::Datagram).unwrap();
        assert_eq!(again.header("call-id"), Some("x"));
    }
}
