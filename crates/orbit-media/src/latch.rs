//! Symmetric RTP latching (RFC 4961 style, as SBCs do for phones behind NAT).
//!
//! Rules:
//! - The address from SDP is the initial target.
//! - After each SDP update the first valid RTP packet from any address
//!   latches the leg to that address (NAT: the phone's public mapping
//!   differs from what it wrote in SDP).
//! - Once latched, packets from other addresses are dropped, unless the
//!   latched address has been silent for `relatch_after` (2 s by default):
//!   then the next packet re-latches (NAT rebinding, phone changed network).
//!   This keeps a stray sender from hijacking a live call's audio.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub const DEFAULT_RELATCH_AFTER: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct Latch {
    target: Option<SocketAddr>,
    latched: bool,
    last_from_target: Option<Instant>,
    relatch_after: Duration,
}

impl Latch {
    pub fn new(relatch_after: Duration) -> Self {
        Latch {
            target: None,
            latched: false,
            last_from_target: None,
            relatch_after,
        }
    }

    /// A new remote address from SDP (`None` for `c=0.0.0.0`); opens latching.
    pub fn set_signalled(&mut self, addr: Option<SocketAddr>) {
        self.target = addr;
        self.latched = false;
        self.last_from_target = None;
    }

    /// A valid RTP packet came from `src`; returns whether to accept it.
    pub fn on_packet(&mut self, src: SocketAddr, now: Instant) -> bool {
        let accept = self.target == Some(src)
            || !self.latched
            || self
                .last_from_target
                .is_none_or(|t| now.saturating_duration_since(t) >= self.relatch_after);
        if accept {
            self.target = Some(src);
            self.latched = true;
            self.last_from_target = Some(now);
        }
        accept
    }

    /// Where to send RTP now.
    pub fn target(&self) -> Option<SocketAddr> {
        self.target
    }
}

impl Default for Latch {
    fn default() -> Self {
        Latch::new(DEFAULT_RELATCH_AFTER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn latches_once_then_guards_then_relatches_after_silence() {
        let t = Instant::now();
        let mut l = Latch::default();
        l.set_signalled(Some(a("10.0.0.5:4000")));
        assert_eq!(l.target(), Some(a("10.0.0.5:4000")));
        // NAT: packets come from the public mapping.
        assert!(l.on_packet(a("198.51.100.7:61000"), t));
        assert_eq!(l.target(), Some(a("198.51.100.7:61000")));
        // A stray sender is ignored while the phone talks.
        let t1 = t + Duration::from_millis(500);
        assert!(!l.on_packet(a("203.0.113.66:5000"), t1));
        assert!(l.on_packet(a("198.51.100.7:61000"), t1));
        // After 2 s of silence from the latched address, re-latch.
        let t2 = t1 + Duration::from_secs(2);
        assert!(l.on_packet(a("198.51.100.7:62000"), t2));
        assert_eq!(l.target(), Some(a("198.51.100.7:62000")));
        // A new SDP opens latching again.
        l.set_signalled(None);
        assert_eq!(l.target(), None);
        assert!(l.on_packet(a("192.0.2.1:7000"), t2));
        assert_eq!(l.target(), Some(a("192.0.2.1:7000")));
    }
}
