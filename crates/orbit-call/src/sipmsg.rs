//! Writing the requests Orbit sends as a user agent (INVITE, ACK, BYE,
//! CANCEL, NOTIFY, re-INVITE). Pure text assembly: no I/O.

use std::fmt::Write as _;
use std::net::SocketAddr;

use bytes::Bytes;
use orbit_sip::{Method, Transport};

/// Where Orbit is reachable, for Via and Contact of what it sends.
#[derive(Debug, Clone)]
pub struct LocalAddr {
    /// Host and port of the UDP/TCP listener, as peers should reach it.
    pub sip: SocketAddr,
    /// Port of the TLS listener, if any.
    pub tls_port: Option<u16>,
}

impl LocalAddr {
    pub fn sent_by(&self, transport: Transport) -> String {
        let port = match transport {
            Transport::Tls => self.tls_port.unwrap_or(self.sip.port()),
            _ => self.sip.port(),
        };
        match self.sip {
            SocketAddr::V4(a) => format!("{}:{port}", a.ip()),
            SocketAddr::V6(a) => format!("[{}]:{port}", a.ip()),
        }
    }

    /// Orbit's Contact for a dialog over `transport`.
    pub fn contact(&self, transport: Transport) -> String {
        let hostport = self.sent_by(transport);
        match transport {
            Transport::Udp => format!("<sip:orbit@{hostport}>"),
            Transport::Tcp => format!("<sip:orbit@{hostport};transport=tcp>"),
            Transport::Tls => format!("<sips:orbit@{hostport};transport=tls>"),
        }
    }
}

fn via_transport(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
        Transport::Tls => "TLS",
    }
}

/// A request under construction; headers are written in the order given.
#[derive(Debug, Clone)]
pub struct RequestText {
    method: Method,
    uri: String,
    headers: Vec<(&'static str, String)>,
    body: Option<(&'static str, String)>,
}

impl RequestText {
    pub fn new(method: Method, uri: impl Into<String>) -> Self {
        RequestText {
            method,
            uri: uri.into(),
            headers: Vec::with_capacity(12),
            body: None,
        }
    }

    pub fn via(self, local: &LocalAddr, transport: Transport, branch: &str) -> Self {
        let value = format!(
            "SIP/2.0/{} {};branch={branch};rport",
            via_transport(transport),
            local.sent_by(transport)
        );
        self.header("Via", value)
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, content_type: &'static str, body: impl Into<String>) -> Self {
        self.body = Some((content_type, body.into()));
        self
    }

    pub fn build(&self) -> Bytes {
        let mut out = String::with_capacity(800);
        let _ = write!(out, "{} {} SIP/2.0\r\n", self.method.as_str(), self.uri);
        for (name, value) in &self.headers {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        let _ = write!(out, "User-Agent: {}\r\n", orbit_sip::response::SERVER);
        match &self.body {
            Some((ctype, body)) => {
                let _ = write!(
                    out,
                    "Content-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
            None => out.push_str("Content-Length: 0\r\n\r\n"),
        }
        Bytes::from(out)
    }
}

/// A random token for tags and Call-IDs (64 bits, hex).
pub fn token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// `"Display" <sip:user@domain>` with the display name quoted safely.
pub fn name_addr(display: &str, user: &str, domain: &str) -> String {
    let clean: String = display
        .chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect();
    if clean.is_empty() {
        format!("<sip:{user}@{domain}>")
    } else {
        format!("\"{clean}\" <sip:{user}@{domain}>")
    }
}

/// `%XX` decoding (URI users such as `*68%23`, and URI header values).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The body of a `message/sipfrag` NOTIFY for a REFER (RFC 3515 §2.4.5).
pub fn sipfrag(status: u16, reason: &str) -> String {
    format!("SIP/2.0 {status} {reason}\r\n")
}

/// A default reason phrase for the statuses Orbit relays.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_parseable_request() {
        let local = LocalAddr {
            sip: "192.0.2.1:5060".parse().unwrap(),
            tls_port: Some(5061),
        };
        let bytes = RequestText::new(Method::Bye, "sip:101@192.0.2.9:5062")
            .via(&local, Transport::Udp, "z9hG4bKabc")
            .header("Max-Forwards", "70")
            .header("From", "<sip:102@acme.test>;tag=1")
            .header("To", "<sip:101@acme.test>;tag=2")
            .header("Call-ID", "c1")
            .header("CSeq", "2 BYE")
            .build();
        let msg = orbit_sip::frame::parse(&bytes, orbit_sip::frame::Framing::Datagram).unwrap();
        assert_eq!(
            msg.header("via"),
            Some("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc;rport")
        );
        assert_eq!(msg.header("cseq"), Some("2 BYE"));
        assert_eq!(
            local.contact(Transport::Tls),
            "<sips:orbit@192.0.2.1:5061;transport=tls>"
        );
    }

    #[test]
    fn display_names_cannot_break_quoting() {
        assert_eq!(
            name_addr("Al\"ice\\", "101", "acme.test"),
            "\"Alice\" <sip:101@acme.test>"
        );
        assert_eq!(name_addr("", "101", "a.test"), "<sip:101@a.test>");
    }
}
