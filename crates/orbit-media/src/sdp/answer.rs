//! Offer/answer for Orbit's audio (RFC 3264): codec intersection in the
//! offerer's order, telephone-event PT kept from the offerer, directions,
//! and rendering each leg's own SDP with a versioned origin.

use super::{Direction, MediaDescription, SdpError, SessionDescription};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// The audio codecs Orbit relays (both static payload types at 8 kHz).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }
}

/// Result of negotiating against a remote SDP (offer or answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Common codecs in the remote's order; the first is the one to send.
    pub codecs: Vec<Codec>,
    /// The remote's telephone-event payload type, if both sides support it.
    pub telephone_event: Option<u8>,
    /// Where to send RTP; `None` when the remote is on hold with `c=0.0.0.0`.
    pub remote_rtp: Option<SocketAddr>,
    /// Where to send RTCP (`a=rtcp` or RTP port + 1).
    pub remote_rtcp: Option<SocketAddr>,
    /// The remote's direction for the audio stream.
    pub remote_direction: Direction,
    /// The remote's `m=` lines (kind, proto, first format), so an answer can
    /// carry the same number of lines with the others rejected (port 0).
    pub m_lines: Vec<(String, String, String)>,
    /// Which of `m_lines` is the audio stream.
    pub audio_index: usize,
}

impl Negotiated {
    /// The codec to send.
    pub fn codec(&self) -> Codec {
        // `negotiate` never returns an empty list.
        self.codecs.first().copied().unwrap_or(Codec::Pcmu)
    }
}

fn codec_for(m: &MediaDescription, pt: u8) -> Option<Codec> {
    // A dynamic rtpmap could in theory rename 0/8; trust the map when present.
    let by_map = m.rtpmaps.iter().find(|r| r.pt == pt);
    match by_map {
        Some(r) if r.clock_rate == 8000 => match r.encoding.to_ascii_uppercase().as_str() {
            "PCMU" => Some(Codec::Pcmu),
            "PCMA" => Some(Codec::Pcma),
            _ => None,
        },
        Some(_) => None,
        None => match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        },
    }
}

/// Intersect a remote SDP with the codecs Orbit supports, in the remote's
/// order (RFC 3264 §6.1: the answerer should keep the offerer's preference).
/// Used both for a phone's offer and for a phone's answer to Orbit's offer.
pub fn negotiate(remote: &SessionDescription, supported: &[Codec]) -> Result<Negotiated, SdpError> {
    let idx = remote.audio_index().ok_or(SdpError::NoAudio)?;
    let m = &remote.media[idx];
    let mut codecs = Vec::new();
    let mut telephone_event = None;
    let mut offered = Vec::new();
    for f in &m.formats {
        let Ok(pt) = f.parse::<u8>() else { continue };
        offered.push(pt);
        if let Some(c) = codec_for(m, pt) {
            if supported.contains(&c) && !codecs.contains(&c) {
                codecs.push(c);
            }
        } else if telephone_event.is_none()
            && m.rtpmaps.iter().any(|r| {
                r.pt == pt
                    && r.encoding.eq_ignore_ascii_case("telephone-event")
                    && r.clock_rate == 8000
            })
        {
            telephone_event = Some(pt);
        }
    }
    if codecs.is_empty() {
        return Err(SdpError::NoCommonCodec { offered });
    }
    let ip = remote.audio_address().ok_or(SdpError::NoConnection)?;
    let (remote_rtp, remote_rtcp) = if ip.is_unspecified() {
        (None, None)
    } else {
        let rtcp = m.rtcp_port.unwrap_or(m.port.wrapping_add(1));
        (
            Some(SocketAddr::new(ip, m.port)),
            Some(SocketAddr::new(ip, rtcp)),
        )
    };
    Ok(Negotiated {
        codecs,
        telephone_event,
        remote_rtp,
        remote_rtcp,
        remote_direction: remote.audio_direction(),
        m_lines: remote
            .media
            .iter()
            .map(|m| {
                (
                    m.kind.clone(),
                    m.proto.clone(),
                    m.formats.first().cloned().unwrap_or_else(|| "0".into()),
                )
            })
            .collect(),
        audio_index: idx,
    })
}

/// What Orbit puts in the audio `m=` section of one leg's SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    pub port: u16,
    pub codecs: Vec<Codec>,
    pub telephone_event: Option<u8>,
    pub direction: Direction,
}

impl LocalMedia {
    /// An offer: the given codecs in Orbit's order, telephone-event on
    /// `DEFAULT_TELEPHONE_EVENT_PT`.
    pub fn offer(port: u16, codecs: &[Codec], direction: Direction) -> Self {
        LocalMedia {
            port,
            codecs: codecs.to_vec(),
            telephone_event: Some(DEFAULT_TELEPHONE_EVENT_PT),
            direction,
        }
    }

    /// An answer to `neg`: the common codecs in the offerer's order, the
    /// offerer's telephone-event PT, and the answering direction.
    pub fn answer(neg: &Negotiated, port: u16, local: Direction) -> Self {
        LocalMedia {
            port,
            codecs: neg.codecs.clone(),
            telephone_event: neg.telephone_event,
            direction: Direction::answer(neg.remote_direction, local),
        }
    }
}

/// Telephone-event payload type Orbit offers when it is the offerer.
pub const DEFAULT_TELEPHONE_EVENT_PT: u8 = 101;

/// One leg's SDP origin: the session id is fixed, the version goes up
/// each time the rendered body changes (RFC 3264 §8), and stays the same
/// when the same body is sent again.
#[derive(Debug, Clone)]
pub struct LocalSession {
    address: IpAddr,
    session_id: u64,
    version: u64,
    last_body: Option<String>,
}

impl LocalSession {
    /// `session_id` should be unique per leg (e.g. random or NTP time).
    pub fn new(address: IpAddr, session_id: u64) -> Self {
        LocalSession {
            address,
            session_id,
            version: session_id,
            last_body: None,
        }
    }

    /// The version the next changed body will not reuse.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Render an offer carrying just the audio stream.
    pub fn render_offer(&mut self, media: &LocalMedia) -> String {
        self.render(media, &[], 0)
    }

    /// Render an answer with as many `m=` lines as the offer; the others
    /// are rejected with port 0 (RFC 3264 §6).
    pub fn render_answer(&mut self, media: &LocalMedia, neg: &Negotiated) -> String {
        self.render(media, &neg.m_lines, neg.audio_index)
    }

    fn render(
        &mut self,
        media: &LocalMedia,
        m_lines: &[(String, String, String)],
        audio_index: usize,
    ) -> String {
        let body = self.body(media, m_lines, audio_index);
        if self.last_body.as_deref() != Some(body.as_str()) {
            if self.last_body.is_some() {
                self.version = self.version.wrapping_add(1);
            }
            self.last_body = Some(body.clone());
        }
        let ipv = if self.address.is_ipv4() { "IP4" } else { "IP6" };
        format!(
            "v=0\r\no=orbit {} {} IN {ipv} {}\r\n{body}",
            self.session_id, self.version, self.address
        )
    }

    fn body(
        &self,
        media: &LocalMedia,
        m_lines: &[(String, String, String)],
        audio_index: usize,
    ) -> String {
        let ipv = if self.address.is_ipv4() { "IP4" } else { "IP6" };
        let mut s = String::new();
        let _ = write!(s, "s=orbit\r\nc=IN {ipv} {}\r\nt=0 0\r\n", self.address);
        let count = m_lines.len().max(1);
        for i in 0..count {
            if i != audio_index {
                if let Some((kind, proto, fmt)) = m_lines.get(i) {
                    let _ = write!(s, "m={kind} 0 {proto} {fmt}\r\n");
                }
                continue;
            }
            let mut fmts: Vec<String> = media
                .codecs
                .iter()
                .map(|c| c.payload_type().to_string())
                .collect();
            if let Some(te) = media.telephone_event {
                fmts.push(te.to_string());
            }
            let _ = write!(s, "m=audio {} RTP/AVP {}\r\n", media.port, fmts.join(" "));
            for c in &media.codecs {
                let _ = write!(s, "a=rtpmap:{} {}/8000\r\n", c.payload_type(), c.name());
            }
            if let Some(te) = media.telephone_event {
                let _ = write!(
                    s,
                    "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n"
                );
            }
            let _ = write!(s, "a=ptime:20\r\na={}\r\n", media.direction.as_str());
        }
        s
    }
}
