//! RTP (RFC 3550) header view and the per-receiver stream rewriter.
//!
//! The relay only reads the fixed header and rewrites SSRC, sequence,
//! timestamp, marker and payload type in place; nothing is copied.

use std::time::Instant;

/// Why a datagram is not an RTP packet we relay.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RtpError {
    #[error("packet shorter than the RTP header ({0} bytes)")]
    TooShort(usize),
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    #[error("CSRC list or header extension runs past the packet end")]
    Truncated,
    #[error("padding length is invalid")]
    BadPadding,
    #[error("payload type {0} is an RTCP packet type")]
    RtcpPayloadType(u8),
}

pub const HEADER_LEN: usize = 12;

/// A validated RTP packet borrowed from a receive buffer.
#[derive(Debug, Clone, Copy)]
pub struct RtpPacket<'a> {
    buf: &'a [u8],
    payload_start: usize,
    payload_end: usize,
}

/// Where the payload lies in a validated packet.
fn validate(buf: &[u8]) -> Result<(usize, usize), RtpError> {
    if buf.len() < HEADER_LEN {
        return Err(RtpError::TooShort(buf.len()));
    }
    let version = buf[0] >> 6;
    if version != 2 {
        return Err(RtpError::BadVersion(version));
    }
    let pt = buf[1] & 0x7F;
    // RFC 5761 §4: PTs 64-95 would collide with RTCP packet types 192-223.
    if (72..=76).contains(&pt) {
        return Err(RtpError::RtcpPayloadType(pt));
    }
    let csrc_count = (buf[0] & 0x0F) as usize;
    let mut start = HEADER_LEN + 4 * csrc_count;
    if buf.len() < start {
        return Err(RtpError::Truncated);
    }
    if buf[0] & 0x10 != 0 {
        let ext = buf.get(start..start + 4).ok_or(RtpError::Truncated)?;
        let words = u16::from_be_bytes([ext[2], ext[3]]) as usize;
        start += 4 + 4 * words;
        if buf.len() < start {
            return Err(RtpError::Truncated);
        }
    }
    let mut end = buf.len();
    if buf[0] & 0x20 != 0 {
        let pad = buf[end - 1] as usize;
        if pad == 0 || pad > end - start {
            return Err(RtpError::BadPadding);
        }
        end -= pad;
    }
    Ok((start, end))
}

impl<'a> RtpPacket<'a> {
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        let (payload_start, payload_end) = validate(buf)?;
        Ok(RtpPacket {
            buf,
            payload_start,
            payload_end,
        })
    }
    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }
    pub fn payload_type(&self) -> u8 {
        self.buf[1] & 0x7F
    }
    pub fn sequence(&self) -> u16 {
        u16::from_be_bytes([self.buf[2], self.buf[3]])
    }
    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
    }
    pub fn ssrc(&self) -> u32 {
        u32::from_be_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]])
    }
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.payload_start..self.payload_end]
    }
    /// Offset of the payload in the buffer (for in-place payload edits).
    pub fn payload_range(&self) -> std::ops::Range<usize> {
        self.payload_start..self.payload_end
    }
}

/// Write a minimal header (no CSRC, no extension) into `buf[..12]`.
pub fn write_header(buf: &mut [u8; HEADER_LEN], pt: u8, seq: u16, ts: u32, ssrc: u32) {
    buf[0] = 0x80;
    buf[1] = pt & 0x7F;
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&ts.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// Set the payload type of a packet validated before (keeps the marker).
pub fn set_payload_type(buf: &mut [u8], pt: u8) {
    if let Some(b) = buf.get_mut(1) {
        *b = (*b & 0x80) | (pt & 0x7F);
    }
}

/// Identifies where a packet came from, so the rewriter sees a switch.
/// The relay uses the leg number; the MOH player its own id.
pub type SourceId = u64;

/// Turns packets from changing sources into one continuous stream for one
/// receiver: own SSRC, sequence numbers that continue +1 across a switch,
/// and a timestamp that jumps by the wall time elapsed, so the receiver's
/// jitter buffer sees a talk spurt, not a new or broken stream. The first
/// packet after a switch carries the marker bit (RFC 3551 §4.1).
#[derive(Debug, Clone)]
pub struct Rewriter {
    ssrc: u32,
    clock_rate: u32,
    /// Current source and its SSRC; a new SSRC from the same source (a
    /// phone that restarted its stream) is a switch too.
    current: Option<(SourceId, u32)>,
    seq_offset: u16,
    ts_offset: u32,
    /// Highest sequence and timestamp sent, and when.
    last_seq: u16,
    last_ts: u32,
    last_time: Option<Instant>,
}

impl Rewriter {
    /// `ssrc`, `first_seq` and `first_ts` should be random (RFC 3550 §5.1).
    pub fn new(ssrc: u32, first_seq: u16, first_ts: u32, clock_rate: u32) -> Self {
        Rewriter {
            ssrc,
            clock_rate,
            current: None,
            seq_offset: 0,
            ts_offset: 0,
            last_seq: first_seq.wrapping_sub(1),
            last_ts: first_ts,
            last_time: None,
        }
    }

    /// A rewriter with random SSRC, sequence and timestamp at 8 kHz.
    pub fn random() -> Self {
        Rewriter::new(rand::random(), rand::random(), rand::random(), 8000)
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Forget the current source, so the next packet counts as a switch
    /// even if it comes from the same source again.
    pub fn reset_source(&mut self) {
        self.current = None;
    }

    /// Rewrite a packet in place. Invalid packets are refused untouched.
    pub fn rewrite(
        &mut self,
        buf: &mut [u8],
        source: SourceId,
        now: Instant,
    ) -> Result<(), RtpError> {
        let pkt = RtpPacket::parse(buf)?;
        let (in_seq, in_ts, in_ssrc) = (pkt.sequence(), pkt.timestamp(), pkt.ssrc());
        let mut marker = pkt.marker();
        if self.current != Some((source, in_ssrc)) {
            let out_seq = self.last_seq.wrapping_add(1);
            let elapsed = match self.last_time {
                Some(t) => now.saturating_duration_since(t),
                None => Default::default(),
            };
            let samples = (elapsed.as_micros() * self.clock_rate as u128 / 1_000_000) as u32;
            // At least one sample, so the new spurt never reuses a timestamp.
            let out_ts = self.last_ts.wrapping_add(samples.max(1));
            self.seq_offset = out_seq.wrapping_sub(in_seq);
            self.ts_offset = out_ts.wrapping_sub(in_ts);
            self.current = Some((source, in_ssrc));
            marker = true;
        }
        let seq = in_seq.wrapping_add(self.seq_offset);
        let ts = in_ts.wrapping_add(self.ts_offset);
        // Late (reordered) packets keep their place but do not move the
        // high-water marks the next switch continues from.
        if seq.wrapping_sub(self.last_seq) < 0x8000 {
            self.last_seq = seq;
        }
        if ts.wrapping_sub(self.last_ts) < 0x8000_0000 {
            self.last_ts = ts;
        }
        self.last_time = Some(now);
        buf[1] = (buf[1] & 0x7F) | if marker { 0x80 } else { 0 };
        buf[2..4].copy_from_slice(&seq.to_be_bytes());
        buf[4..8].copy_from_slice(&ts.to_be_bytes());
        buf[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
#[path = "rtp_tests.rs"]
mod tests;
