//! The Via header: where a response goes (RFC 3261 §18.2.2, RFC 3581).

use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Upper-case transport token (UDP, TCP, TLS, ...).
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub branch: Option<String>,
    /// `Some(None)` when `rport` is present without a value.
    pub rport: Option<Option<u16>>,
    pub received: Option<String>,
}

impl Via {
    /// Parse one via-parm (`SIP/2.0/UDP host:port;params`).
    pub fn parse(value: &str) -> Option<Via> {
        // Linear whitespace may surround the slashes, the colon and '='.
        let value = value.trim();
        let (head, params) = value.split_once(';').unwrap_or((value, ""));
        let has_params = value.contains(';');
        let mut parts = head.splitn(3, '/').map(str::trim);
        let (name, version, rest) = (parts.next()?, parts.next()?, parts.next()?);
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return None;
        }
        let mut words = rest.split_whitespace();
        let transport = words.next()?;
        let sent_by: String = words.collect();
        if !frame_token(transport) {
            return None;
        }
        let (host, port) = split_host_port(&sent_by)?;
        let mut via = Via {
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            branch: None,
            rport: None,
            received: None,
        };
        for p in params.split(';').map(str::trim) {
            if has_params && p.is_empty() {
                return None;
            }
            let (n, v) = match p.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (p, None),
            };
            match n.to_ascii_lowercase().as_str() {
                "branch" => via.branch = v.map(str::to_string),
                "received" => via.received = v.map(str::to_string),
                "rport" => via.rport = Some(v.and_then(|v| v.parse().ok())),
                _ => {}
            }
        }
        Some(via)
    }

    /// Where a response to a request with this top Via goes over an
    /// unreliable transport, given the packet's source.
    pub fn response_target(&self, source: SocketAddr) -> SocketAddr {
        if self.rport.is_some() {
            return source;
        }
        let port = self.port.unwrap_or(5060);
        SocketAddr::new(source.ip(), port)
    }

    /// The value of this Via as it must appear in a response: with
    /// `received` when the source differs from sent-by, and `rport` filled in.
    pub fn stamp(raw: &str, via: &Via, source: SocketAddr) -> String {
        let mut out = raw.trim().to_string();
        let host_is_source = via
            .host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .map(|ip| ip == source.ip())
            .unwrap_or(false);
        if via.rport.is_some() {
            out = remove_param(&out, "rport");
            out.push_str(&format!(";rport={}", source.port()));
        }
        if (!host_is_source || via.rport.is_some()) && via.received.is_none() {
            out.push_str(&format!(";received={}", source.ip()));
        }
        out
    }
}

fn frame_token(s: &str) -> bool {
    crate::frame::is_token(s)
}

fn remove_param(value: &str, name: &str) -> String {
    let mut parts = value.split(';');
    let mut out = parts.next().unwrap_or("").to_string();
    for p in parts {
        let n = p.split('=').next().unwrap_or("").trim();
        if !n.eq_ignore_ascii_case(name) {
            out.push(';');
            out.push_str(p);
        }
    }
    out
}

fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if s.is_empty() {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        host.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.trim().parse().ok()?),
            None if after.trim().is_empty() => None,
            None => return None,
        };
        return Some((format!("[{host}]"), port));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.trim().parse().ok()?)),
        None => (s, None),
    };
    let host = host.trim();
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
    {
        return None;
    }
    Some((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_routes() {
        let v = Via::parse("SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKx;rport").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.port, Some(5062));
        assert_eq!(v.rport, Some(None));
        let src: SocketAddr = "192.0.2.9:40000".parse().unwrap();
        assert_eq!(v.response_target(src), src);
        let stamped = Via::stamp("SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKx;rport", &v, src);
        assert_eq!(
            stamped,
            "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKx;rport=40000;received=192.0.2.9"
        );
        let plain = Via::parse("SIP/2.0/UDP host.example;branch=z9hG4bKy").unwrap();
        assert_eq!(
            plain.response_target(src),
            "192.0.2.9:5060".parse().unwrap()
        );
    }

    #[test]
    fn ipv6_sent_by() {
        let v = Via::parse("SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bK1").unwrap();
        assert_eq!(v.host, "[2001:db8::9]");
        assert_eq!(v.port, Some(5070));
        assert!(Via::parse("SIP/2.0/UDP [2001:db8::9:5070").is_none());
        assert!(Via::parse("SIP/2.0/UDP").is_none());
    }
}
