//! A call's anchored media: two legs, each on its own port pair, relaying
//! RTP between them or playing music on hold to one of them.
//!
//! Each leg's outgoing stream goes through that leg's `Rewriter`, so the
//! phone sees one continuous stream (own SSRC, sequence, timestamp) however
//! often the leg switches between the other party, music and silence.
//!
//! RTCP: read on port + 1, counted, and dropped. The relayed streams carry
//! Orbit's own SSRCs and renumbered sequences, so the other phone's
//! reports would describe streams the receiver never saw; forwarding them
//! would mislead more than help, and phones do not need RTCP to work.

use crate::dtmf::DtmfDetector;
use crate::g711;
use crate::latch::Latch;
use crate::moh::{FrameSink, ListenerId, MohPlayer};
use crate::ports::PortPair;
use crate::rtp::{set_payload_type, Rewriter, RtpPacket, SourceId};
use crate::sdp::{Codec, Negotiated};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// One of the two legs of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegId {
    A,
    B,
}

impl LegId {
    fn index(self) -> usize {
        match self {
            LegId::A => 0,
            LegId::B => 1,
        }
    }
}

/// What a leg hears.
#[derive(Clone)]
pub enum Mode {
    /// What the other leg sends.
    Bridge,
    /// The player's music.
    Music(Arc<MohPlayer>),
    /// Nothing.
    Silence,
}

/// A leg's negotiated media (from `sdp::negotiate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegConfig {
    /// From SDP; `None` while on hold with `c=0.0.0.0` (latching may still
    /// find the phone).
    pub remote_rtp: Option<SocketAddr>,
    pub codec: Codec,
    pub telephone_event: Option<u8>,
}

impl From<&Negotiated> for LegConfig {
    fn from(n: &Negotiated) -> Self {
        LegConfig {
            remote_rtp: n.remote_rtp,
            codec: n.codec(),
            telephone_event: n.telephone_event,
        }
    }
}

/// Counters for one leg; `last_packet_in` drives the RTP inactivity timeout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegStats {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub rtcp_in: u64,
    /// Time of the last valid RTP or RTCP packet received on this leg.
    pub last_packet_in: Option<Instant>,
}

impl LegStats {
    /// How long the leg has received nothing, for the call layer's RTP
    /// inactivity timeout; `None` if it never received anything.
    pub fn idle_for(&self, now: Instant) -> Option<Duration> {
        self.last_packet_in
            .map(|t| now.saturating_duration_since(t))
    }
}

enum ModeState {
    Bridge,
    Silence,
    Music {
        player: Arc<MohPlayer>,
        listener: ListenerId,
    },
}

struct LegState {
    config: Option<LegConfig>,
    latch: Latch,
    mode: ModeState,
}

#[derive(Default)]
struct Counters {
    packets_in: AtomicU64,
    bytes_in: AtomicU64,
    packets_out: AtomicU64,
    bytes_out: AtomicU64,
    rtcp_in: AtomicU64,
    last_in: Mutex<Option<Instant>>,
}

impl Counters {
    fn mark_in(&self, now: Instant) {
        if let Ok(mut l) = self.last_in.lock() {
            *l = Some(now);
        }
    }
}

/// Told of each DTMF digit a leg's phone sends (RFC 4733 events).
pub type DtmfSink = Arc<dyn Fn(LegId, char) + Send + Sync>;

struct Leg {
    id: LegId,
    pair: PortPair,
    state: Mutex<LegState>,
    out: Mutex<Rewriter>,
    counters: Counters,
    dtmf: Mutex<(DtmfDetector, Option<DtmfSink>)>,
}

impl Leg {
    /// Rewrite and send a packet to this leg's phone.
    fn send_out(&self, buf: &mut [u8], source: SourceId, now: Instant) {
        let target = match self.state.lock() {
            Ok(s) => s.latch.target(),
            Err(_) => None,
        };
        let Some(target) = target else { return };
        let ok = match self.out.lock() {
            Ok(mut rw) => rw.rewrite(buf, source, now).is_ok(),
            Err(_) => false,
        };
        // try_send: media never waits for a full socket buffer.
        if ok && self.pair.rtp.try_send_to(buf, target).is_ok() {
            self.counters.packets_out.fetch_add(1, Ordering::Relaxed);
            self.counters
                .bytes_out
                .fetch_add(buf.len() as u64, Ordering::Relaxed);
        }
    }
}

impl Leg {
    /// Pass a telephone-event packet's digit to the DTMF sink, if any.
    fn watch_dtmf(&self, packet: &[u8]) {
        let Ok(pkt) = RtpPacket::parse(packet) else {
            return;
        };
        let found = match self.dtmf.lock() {
            Ok(mut d) => match &d.1 {
                Some(sink) => {
                    let sink = sink.clone();
                    d.0.on_event(pkt.payload(), pkt.timestamp())
                        .map(|c| (sink, c))
                }
                None => None,
            },
            Err(_) => None,
        };
        if let Some((sink, digit)) = found {
            sink(self.id, digit);
        }
    }
}

impl FrameSink for Leg {
    fn codec(&self) -> Codec {
        match self.state.lock() {
            Ok(s) => s.config.as_ref().map_or(Codec::Pcmu, |c| c.codec),
            Err(_) => Codec::Pcmu,
        }
    }
    fn send(&self, packet: &mut [u8], source: SourceId, now: Instant) {
        // The player may hand out one frame from a snapshot taken just
        // before the leg switched away; do not send it.
        let playing = match self.state.lock() {
            Ok(s) => {
                matches!(&s.mode, ModeState::Music { player, .. } if player.source_id() == source)
            }
            Err(_) => false,
        };
        if playing {
            self.send_out(packet, source, now);
        }
    }
}

/// The media of one call. Dropping it stops its tasks and frees its ports.
pub struct MediaSession {
    legs: [Arc<Leg>; 2],
    tasks: Vec<JoinHandle<()>>,
}

impl MediaSession {
    /// Start relaying between two allocated port pairs (inside a tokio
    /// runtime). Both legs start in `Bridge` with no remote yet.
    pub fn start(a: PortPair, b: PortPair) -> Self {
        Self::with_relatch(a, b, crate::latch::DEFAULT_RELATCH_AFTER)
    }

    /// As `start`, with a custom re-latch delay (see `latch`).
    pub fn with_relatch(a: PortPair, b: PortPair, relatch_after: Duration) -> Self {
        let leg = |id, pair| {
            Arc::new(Leg {
                id,
                dtmf: Mutex::new((DtmfDetector::default(), None)),
                pair,
                state: Mutex::new(LegState {
                    config: None,
                    latch: Latch::new(relatch_after),
                    mode: ModeState::Bridge,
                }),
                out: Mutex::new(Rewriter::random()),
                counters: Counters::default(),
            })
        };
        let legs = [leg(LegId::A, a), leg(LegId::B, b)];
        let mut tasks = Vec::new();
        for i in 0..2 {
            tasks.push(tokio::spawn(rtp_loop(
                legs[i].clone(),
                legs[1 - i].clone(),
                i as SourceId,
            )));
            tasks.push(tokio::spawn(rtcp_loop(legs[i].clone())));
        }
        MediaSession { legs, tasks }
    }

    fn leg(&self, id: LegId) -> &Arc<Leg> {
        &self.legs[id.index()]
    }

    /// Report the DTMF digits both phones send to `sink`.
    pub fn on_dtmf(&self, sink: DtmfSink) {
        for leg in &self.legs {
            if let Ok(mut d) = leg.dtmf.lock() {
                d.1 = Some(sink.clone());
            }
        }
    }

    /// The leg's local RTP port, for its SDP.
    pub fn local_port(&self, id: LegId) -> u16 {
        self.leg(id).pair.port()
    }

    /// Apply a (re)negotiated SDP for a leg; re-opens latching.
    pub fn set_config(&self, id: LegId, config: LegConfig) {
        if let Ok(mut s) = self.leg(id).state.lock() {
            s.latch.set_signalled(config.remote_rtp);
            s.config = Some(config);
        }
    }

    /// Choose what a leg hears, at any time.
    pub fn set_mode(&self, id: LegId, mode: Mode) {
        let leg = self.leg(id);
        let Ok(mut s) = leg.state.lock() else { return };
        if let ModeState::Music { player, listener } = &s.mode {
            player.remove_listener(*listener);
        }
        s.mode = match mode {
            Mode::Bridge => ModeState::Bridge,
            Mode::Silence => ModeState::Silence,
            Mode::Music(player) => {
                let listener = player.add_listener(leg.clone());
                ModeState::Music { player, listener }
            }
        };
        drop(s);
        // Whatever comes next starts a new talk spurt (marker, +1 sequence).
        if let Ok(mut rw) = leg.out.lock() {
            rw.reset_source();
        }
    }

    /// Where the leg's RTP goes now (after latching).
    pub fn remote(&self, id: LegId) -> Option<SocketAddr> {
        self.leg(id)
            .state
            .lock()
            .ok()
            .and_then(|s| s.latch.target())
    }

    pub fn stats(&self, id: LegId) -> LegStats {
        let c = &self.leg(id).counters;
        LegStats {
            packets_in: c.packets_in.load(Ordering::Relaxed),
            bytes_in: c.bytes_in.load(Ordering::Relaxed),
            packets_out: c.packets_out.load(Ordering::Relaxed),
            bytes_out: c.bytes_out.load(Ordering::Relaxed),
            rtcp_in: c.rtcp_in.load(Ordering::Relaxed),
            last_packet_in: c.last_in.lock().ok().and_then(|l| *l),
        }
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        // Leave any music player: it holds the legs (and their ports).
        for id in [LegId::A, LegId::B] {
            self.set_mode(id, Mode::Silence);
        }
    }
}

/// Map a packet from `from`'s negotiation to `to`'s: audio PT (with
/// PCMU/PCMA transcoding when the legs differ) and telephone-event PT.
/// Returns false for anything else (comfort noise, unknown PTs): dropped.
fn map_payload(buf: &mut [u8], from: &LegConfig, to: &LegConfig) -> bool {
    let Ok(pkt) = RtpPacket::parse(buf) else {
        return false;
    };
    let pt = pkt.payload_type();
    if pt == from.codec.payload_type() {
        let range = pkt.payload_range();
        g711::transcode_in_place(from.codec, to.codec, &mut buf[range]);
        set_payload_type(buf, to.codec.payload_type());
        true
    } else if Some(pt) == from.telephone_event {
        match to.telephone_event {
            Some(te) => {
                set_payload_type(buf, te);
                true
            }
            None => false,
        }
    } else {
        false
    }
}

async fn rtp_loop(me: Arc<Leg>, other: Arc<Leg>, my_source: SourceId) {
    let mut buf = [0u8; 2048];
    loop {
        let Ok((len, src)) = me.pair.rtp.recv_from(&mut buf).await else {
            // ICMP errors surface here on some systems; keep serving.
            continue;
        };
        let now = Instant::now();
        let packet = &mut buf[..len];
        let Ok(pt) = RtpPacket::parse(packet).map(|p| p.payload_type()) else {
            continue;
        };
        let my_config = match me.state.lock() {
            Ok(mut s) => {
                if !s.latch.on_packet(src, now) {
                    continue;
                }
                s.config.clone()
            }
            Err(_) => continue,
        };
        me.counters.packets_in.fetch_add(1, Ordering::Relaxed);
        me.counters
            .bytes_in
            .fetch_add(len as u64, Ordering::Relaxed);
        me.counters.mark_in(now);
        // Only telephone-event packets can carry a digit; audio skips this.
        if my_config
            .as_ref()
            .is_some_and(|c| Some(pt) == c.telephone_event)
        {
            me.watch_dtmf(packet);
        }
        let other_config = match other.state.lock() {
            Ok(s) if matches!(s.mode, ModeState::Bridge) => s.config.clone(),
            _ => None,
        };
        if let (Some(from), Some(to)) = (my_config, other_config) {
            if map_payload(packet, &from, &to) {
                other.send_out(packet, my_source, now);
            }
        }
    }
}

async fn rtcp_loop(me: Arc<Leg>) {
    let mut buf = [0u8; 1500];
    loop {
        if me.pair.rtcp.recv_from(&mut buf).await.is_ok() {
            me.counters.rtcp_in.fetch_add(1, Ordering::Relaxed);
            me.counters.mark_in(Instant::now());
        }
    }
}

#[cfg(test)]
#[path = "relay_tests.rs"]
mod tests;
