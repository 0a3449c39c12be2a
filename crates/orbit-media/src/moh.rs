//! Music-on-hold sources and the player that paces them to listeners.
//!
//! A source is decoded and encoded once per codec into 20 ms frames held
//! in one shared allocation; every listener of every call reads the same
//! frames, and only the 12-byte header differs per listener.

use crate::g711;
use crate::rtp::{write_header, Rewriter, SourceId, HEADER_LEN};
use crate::sdp::Codec;
use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// Samples per 20 ms frame at 8 kHz, which is also the G.711 payload size.
pub const FRAME_SAMPLES: usize = 160;
pub const FRAME_INTERVAL: Duration = Duration::from_millis(20);

pub type Frame = [u8; FRAME_SAMPLES];

#[derive(Debug, thiserror::Error)]
pub enum MohError {
    #[error("music on hold {name}: cannot read: {source}")]
    Read {
        name: String,
        #[source]
        source: hound::Error,
    },
    #[error("music on hold {name} must be an 8000 Hz mono 16-bit PCM WAV file, but it is {found}")]
    Format { name: String, found: String },
    #[error("music on hold {name} has no audio")]
    Empty { name: String },
}

/// A music source encoded once for each codec.
#[derive(Debug)]
pub struct MohSource {
    name: String,
    pcmu: Arc<[Frame]>,
    pcma: Arc<[Frame]>,
}

impl MohSource {
    /// Load an 8 kHz mono 16-bit PCM WAV file; nothing else is accepted,
    /// because resampling in the PBX would hide a misconfigured file.
    pub fn from_wav_file(path: &Path) -> Result<Self, MohError> {
        let name = path.display().to_string();
        let reader = hound::WavReader::open(path).map_err(|source| MohError::Read {
            name: name.clone(),
            source,
        })?;
        Self::from_wav(name, reader)
    }

    /// Load from any reader (e.g. a file uploaded through the API).
    pub fn from_wav_reader<R: Read>(name: &str, reader: R) -> Result<Self, MohError> {
        let reader = hound::WavReader::new(reader).map_err(|source| MohError::Read {
            name: name.to_string(),
            source,
        })?;
        Self::from_wav(name.to_string(), reader)
    }

    fn from_wav<R: Read>(name: String, reader: hound::WavReader<R>) -> Result<Self, MohError> {
        let spec = reader.spec();
        let ok = spec.sample_rate == 8000
            && spec.channels == 1
            && spec.bits_per_sample == 16
            && spec.sample_format == hound::SampleFormat::Int;
        if !ok {
            let kind = match spec.sample_format {
                hound::SampleFormat::Int => "PCM",
                hound::SampleFormat::Float => "float",
            };
            let found = format!(
                "{} Hz, {} channel(s), {}-bit {kind}",
                spec.sample_rate, spec.channels, spec.bits_per_sample
            );
            return Err(MohError::Format { name, found });
        }
        let samples = reader
            .into_samples::<i16>()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| MohError::Read {
                name: name.clone(),
                source,
            })?;
        Self::from_samples(&name, &samples)
    }

    /// Encode 8 kHz linear samples; the last frame is padded with silence.
    pub fn from_samples(name: &str, samples: &[i16]) -> Result<Self, MohError> {
        if samples.is_empty() {
            return Err(MohError::Empty { name: name.into() });
        }
        Ok(Self::encode(name, samples))
    }

    fn encode(name: &str, samples: &[i16]) -> Self {
        let encode = |codec| -> Arc<[Frame]> {
            samples
                .chunks(FRAME_SAMPLES)
                .map(|chunk| {
                    let mut f = [g711::encode(codec, 0); FRAME_SAMPLES];
                    for (o, s) in f.iter_mut().zip(chunk) {
                        *o = g711::encode(codec, *s);
                    }
                    f
                })
                .collect()
        };
        MohSource {
            name: name.into(),
            pcmu: encode(Codec::Pcmu),
            pcma: encode(Codec::Pcma),
        }
    }

    /// The built-in music: a soft I-vi-IV-V chord loop in C major, four
    /// seconds, so music on hold works with no file configured.
    pub fn builtin() -> Self {
        const CHORDS: [[f64; 3]; 4] = [
            [261.63, 329.63, 392.00], // C
            [220.00, 261.63, 329.63], // Am
            [174.61, 220.00, 261.63], // F
            [196.00, 246.94, 293.66], // G
        ];
        let per_chord = 8000usize;
        let mut samples = Vec::with_capacity(per_chord * CHORDS.len());
        for chord in CHORDS {
            for i in 0..per_chord {
                let t = i as f64 / 8000.0;
                // Fade in 80 ms and out 200 ms: no clicks at chord changes
                // or at the loop point.
                let env = (t / 0.08).min(1.0) * ((1.0 - t) / 0.2).min(1.0);
                let v: f64 = chord
                    .iter()
                    .map(|f| (2.0 * std::f64::consts::PI * f * t).sin())
                    .sum();
                samples.push((v * env * 3000.0) as i16);
            }
        }
        Self::encode("built-in", &samples)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The shared frames for a codec.
    pub fn frames(&self, codec: Codec) -> &Arc<[Frame]> {
        match codec {
            Codec::Pcmu => &self.pcmu,
            Codec::Pcma => &self.pcma,
        }
    }

    pub fn frame_count(&self) -> usize {
        self.pcmu.len()
    }
}

/// A receiver of music frames: the relay's legs and plain UDP listeners.
pub trait FrameSink: Send + Sync {
    /// Which encoding this receiver wants.
    fn codec(&self) -> Codec;
    /// `packet` is a complete RTP packet in the player's own numbering
    /// (payload type = the codec's static PT); the sink rewrites it for its
    /// receiver and sends it without waiting.
    fn send(&self, packet: &mut [u8], source: SourceId, now: Instant);
}

/// A listener with its own socket and destination.
pub struct UdpSink {
    socket: Arc<UdpSocket>,
    dest: SocketAddr,
    codec: Codec,
    rewriter: Mutex<Rewriter>,
}

impl UdpSink {
    pub fn new(socket: Arc<UdpSocket>, dest: SocketAddr, codec: Codec) -> Self {
        UdpSink {
            socket,
            dest,
            codec,
            rewriter: Mutex::new(Rewriter::random()),
        }
    }
}

impl FrameSink for UdpSink {
    fn codec(&self) -> Codec {
        self.codec
    }
    fn send(&self, packet: &mut [u8], source: SourceId, now: Instant) {
        let ok = match self.rewriter.lock() {
            Ok(mut rw) => rw.rewrite(packet, source, now).is_ok(),
            Err(_) => false,
        };
        if ok {
            // Media is loss tolerant: a full socket buffer drops the frame.
            let _ = self.socket.try_send_to(packet, self.dest);
        }
    }
}

/// Identifies a listener within a player.
pub type ListenerId = u64;

type Listeners = Arc<Mutex<HashMap<ListenerId, Arc<dyn FrameSink>>>>;

static NEXT_PLAYER: AtomicU64 = AtomicU64::new(1 << 32);

/// Plays one source to any number of listeners, one frame every 20 ms on
/// an absolute schedule (missed ticks are caught up in a burst, so the
/// long-run rate stays exact under load). All listeners hear the same
/// position, like a radio. Dropping the player stops it.
pub struct MohPlayer {
    id: SourceId,
    listeners: Listeners,
    next_listener: AtomicU64,
    task: JoinHandle<()>,
}

impl MohPlayer {
    /// Start playing `source` (must be called inside a tokio runtime).
    pub fn spawn(source: Arc<MohSource>) -> Self {
        let id = NEXT_PLAYER.fetch_add(1, Ordering::Relaxed);
        let listeners: Listeners = Arc::default();
        let task = tokio::spawn(run(source, id, listeners.clone()));
        MohPlayer {
            id,
            listeners,
            next_listener: AtomicU64::new(1),
            task,
        }
    }

    /// The source id the player's packets carry into rewriters.
    pub fn source_id(&self) -> SourceId {
        self.id
    }

    pub fn add_listener(&self, sink: Arc<dyn FrameSink>) -> ListenerId {
        let id = self.next_listener.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut l) = self.listeners.lock() {
            l.insert(id, sink);
        }
        id
    }

    pub fn remove_listener(&self, id: ListenerId) {
        if let Ok(mut l) = self.listeners.lock() {
            l.remove(&id);
        }
    }

    pub fn listener_count(&self) -> usize {
        self.listeners.lock().map(|l| l.len()).unwrap_or(0)
    }
}

impl Drop for MohPlayer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(source: Arc<MohSource>, id: SourceId, listeners: Listeners) {
    let mut interval = tokio::time::interval(FRAME_INTERVAL);
    interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut snapshot: Vec<Arc<dyn FrameSink>> = Vec::new();
    let mut n: u64 = 0;
    loop {
        // The scheduled instant, not the wake-up time: timestamps follow
        // the schedule, so wake-up jitter does not reach the receivers.
        let tick = interval.tick().await.into_std();
        snapshot.clear();
        if let Ok(l) = listeners.lock() {
            snapshot.extend(l.values().cloned());
        }
        let index = (n % source.frame_count() as u64) as usize;
        if snapshot.is_empty() {
            // Keep the position moving so the music does not stall.
            n = n.wrapping_add(1);
            continue;
        }
        let seq = n as u16;
        let ts = (n as u32).wrapping_mul(FRAME_SAMPLES as u32);
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let mut packet = [0u8; HEADER_LEN + FRAME_SAMPLES];
            let mut header = [0u8; HEADER_LEN];
            write_header(&mut header, codec.payload_type(), seq, ts, id as u32);
            packet[..HEADER_LEN].copy_from_slice(&header);
            packet[HEADER_LEN..].copy_from_slice(&source.frames(codec)[index]);
            for sink in snapshot.iter().filter(|s| s.codec() == codec) {
                let mut copy = packet;
                sink.send(&mut copy, id, tick);
            }
        }
        n = n.wrapping_add(1);
    }
}

#[cfg(test)]
#[path = "moh_tests.rs"]
mod tests;
