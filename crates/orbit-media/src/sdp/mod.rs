//! Audio SDP: parse what phones send (here), negotiate (RFC 3264) and
//! render Orbit's own (`answer.rs`).
//!
//! Hand-written rather than `ezk-sdp-types`: Orbit anchors media, so it never
//! re-serialises a phone's SDP; it only needs the audio stream's address,
//! port, payload types, `rtpmap`, direction and ptime, and writes a fresh SDP
//! per leg. A small audio-only reader keeps that surface explicit and
//! avoids tying call control to a pinned 0.x crate's types. Unknown lines
//! and attributes are kept (`other`) for logging, never interpreted.

mod answer;

pub use answer::{
    negotiate, Codec, LocalMedia, LocalSession, Negotiated, DEFAULT_TELEPHONE_EVENT_PT,
};

use std::net::IpAddr;

/// What went wrong with an SDP body.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SdpError {
    #[error("SDP line {line}: {reason}")]
    Syntax { line: usize, reason: String },
    #[error("SDP has no RTP/AVP audio stream")]
    NoAudio,
    #[error("no common audio codec (offered payload types: {offered:?})")]
    NoCommonCodec { offered: Vec<u8> },
    #[error("SDP has no connection address for the audio stream")]
    NoConnection,
}

/// Media direction attribute (RFC 3264 §5.1); absent means `sendrecv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sendrecv" => Self::SendRecv,
            "sendonly" => Self::SendOnly,
            "recvonly" => Self::RecvOnly,
            "inactive" => Self::Inactive,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }
    /// The direction the answerer uses for an offered direction, given what
    /// the answerer itself wants (RFC 3264 §6.1).
    pub fn answer(offered: Direction, local: Direction) -> Direction {
        let (o_send, o_recv) = offered.flags();
        let (l_send, l_recv) = local.flags();
        Self::from_flags(l_send && o_recv, l_recv && o_send)
    }
    fn flags(self) -> (bool, bool) {
        match self {
            Self::SendRecv => (true, true),
            Self::SendOnly => (true, false),
            Self::RecvOnly => (false, true),
            Self::Inactive => (false, false),
        }
    }
    fn from_flags(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Self::SendRecv,
            (true, false) => Self::SendOnly,
            (false, true) => Self::RecvOnly,
            (false, false) => Self::Inactive,
        }
    }
}

/// An `a=rtpmap` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub pt: u8,
    pub encoding: String,
    pub clock_rate: u32,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    pub kind: String,
    pub port: u16,
    pub proto: String,
    /// Format tokens as written (payload type numbers for RTP/AVP).
    pub formats: Vec<String>,
    pub connection: Option<IpAddr>,
    pub rtpmaps: Vec<RtpMap>,
    pub direction: Option<Direction>,
    pub ptime: Option<u32>,
    /// `a=rtcp:` port, when the phone uses a non-default RTCP port.
    pub rtcp_port: Option<u16>,
    /// Lines this module does not interpret, kept for diagnostics.
    pub other: Vec<String>,
}

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin_session_id: String,
    pub origin_version: u64,
    pub connection: Option<IpAddr>,
    pub direction: Option<Direction>,
    pub media: Vec<MediaDescription>,
}

fn syntax(line: usize, reason: impl Into<String>) -> SdpError {
    SdpError::Syntax {
        line,
        reason: reason.into(),
    }
}

fn parse_connection(n: usize, v: &str) -> Result<IpAddr, SdpError> {
    // c=IN IP4 192.0.2.1[/ttl]; only IP literals: phones do not send names.
    let mut it = v.split_whitespace();
    let (Some("IN"), Some(at), Some(addr)) = (it.next(), it.next(), it.next()) else {
        return Err(syntax(n, "bad c= line"));
    };
    let addr = addr.split('/').next().unwrap_or(addr);
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| syntax(n, format!("c= address {addr:?} is not an IP address")))?;
    match (at, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Ok(ip),
        _ => Err(syntax(n, "c= address type does not match the address")),
    }
}

impl SessionDescription {
    /// Parse an SDP body with CRLF or bare LF line ends.
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        let mut sd = SessionDescription {
            origin_session_id: String::new(),
            origin_version: 0,
            connection: None,
            direction: None,
            media: Vec::new(),
        };
        let mut seen_v = false;
        for (i, raw) in text.split('\n').enumerate() {
            let n = i + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.trim().is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(syntax(n, "line is not <type>=<value>"));
            };
            if key.len() != 1 {
                return Err(syntax(n, "line type is not one letter"));
            }
            if !seen_v {
                if key != "v" || value.trim() != "0" {
                    return Err(syntax(n, "SDP must start with v=0"));
                }
                seen_v = true;
                continue;
            }
            match (key, sd.media.last_mut()) {
                ("o", None) => {
                    let f: Vec<&str> = value.split_whitespace().collect();
                    if f.len() != 6 {
                        return Err(syntax(n, "o= needs six fields"));
                    }
                    sd.origin_session_id = f[1].to_string();
                    sd.origin_version = f[2]
                        .parse()
                        .map_err(|_| syntax(n, "o= version is not a number"))?;
                }
                ("c", None) => sd.connection = Some(parse_connection(n, value)?),
                ("c", Some(m)) => m.connection = Some(parse_connection(n, value)?),
                ("m", _) => {
                    let f: Vec<&str> = value.split_whitespace().collect();
                    if f.len() < 3 {
                        return Err(syntax(n, "m= needs media, port and proto"));
                    }
                    let port_s = f[1].split('/').next().unwrap_or(f[1]);
                    let port = port_s
                        .parse()
                        .map_err(|_| syntax(n, "m= port is not a number"))?;
                    sd.media.push(MediaDescription {
                        kind: f[0].to_string(),
                        port,
                        proto: f[2].to_string(),
                        formats: f[3..].iter().map(|s| s.to_string()).collect(),
                        connection: None,
                        rtpmaps: Vec::new(),
                        direction: None,
                        ptime: None,
                        rtcp_port: None,
                        other: Vec::new(),
                    });
                }
                ("a", m) => {
                    let (name, arg) = value.split_once(':').unwrap_or((value, ""));
                    if let Some(d) = Direction::parse(name) {
                        match m {
                            Some(m) => m.direction = Some(d),
                            None => sd.direction = Some(d),
                        }
                        continue;
                    }
                    let Some(m) = m else { continue };
                    match name {
                        "rtpmap" => m.rtpmaps.push(parse_rtpmap(n, arg)?),
                        "ptime" => m.ptime = arg.trim().parse().ok(),
                        "rtcp" => {
                            m.rtcp_port = arg.split_whitespace().next().and_then(|p| p.parse().ok())
                        }
                        _ => m.other.push(line.to_string()),
                    }
                }
                (_, Some(m)) => m.other.push(line.to_string()),
                (_, None) => {}
            }
        }
        if !seen_v {
            return Err(syntax(1, "empty SDP"));
        }
        Ok(sd)
    }

    /// Index of the first usable audio stream: plain `RTP/AVP` (Orbit does
    /// not do SRTP or AVPF feedback, and answers with `RTP/AVP`), port not 0.
    pub fn audio_index(&self) -> Option<usize> {
        self.media.iter().position(|m| {
            m.kind.eq_ignore_ascii_case("audio")
                && m.port != 0
                && m.proto.eq_ignore_ascii_case("RTP/AVP")
        })
    }

    /// The audio stream's effective direction (media level over session level).
    pub fn audio_direction(&self) -> Direction {
        self.audio_index()
            .and_then(|i| self.media[i].direction)
            .or(self.direction)
            .unwrap_or(Direction::SendRecv)
    }

    /// The audio stream's connection address (media level over session level).
    pub fn audio_address(&self) -> Option<IpAddr> {
        let m = &self.media[self.audio_index()?];
        m.connection.or(self.connection)
    }

    /// Whether this offer puts the other side on hold: `sendonly`,
    /// `inactive`, or the RFC 2543 form `c=0.0.0.0`.
    pub fn is_hold(&self) -> bool {
        matches!(
            self.audio_direction(),
            Direction::SendOnly | Direction::Inactive
        ) || self.audio_address().is_some_and(|a| a.is_unspecified())
    }
}

fn parse_rtpmap(n: usize, arg: &str) -> Result<RtpMap, SdpError> {
    // a=rtpmap:<pt> <encoding>/<clock>[/<channels>]
    let (pt, rest) = arg
        .trim()
        .split_once(' ')
        .ok_or_else(|| syntax(n, "bad rtpmap"))?;
    let pt = pt
        .parse()
        .map_err(|_| syntax(n, "rtpmap PT is not a number"))?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next().unwrap_or("").to_string();
    let clock_rate = parts
        .next()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| syntax(n, "rtpmap without clock rate"))?;
    Ok(RtpMap {
        pt,
        encoding,
        clock_rate,
    })
}

#[cfg(test)]
mod tests;
