//! Orbit's media layer: SDP offer/answer for audio, RTP header handling and
//! stream rewriting, G.711, music on hold, the RTP port pool and the relay
//! that anchors a call's media. It knows nothing of SIP.

pub mod dtmf;
pub mod g711;
pub mod latch;
pub mod moh;
pub mod ports;
pub mod relay;
pub mod rtp;
pub mod sdp;

pub use dtmf::DtmfDetector;
pub use latch::Latch;
pub use moh::{FrameSink, MohError, MohPlayer, MohSource, UdpSink};
pub use ports::{PortError, PortPair, PortPool};
pub use relay::{LegConfig, LegId, LegStats, MediaSession, Mode};
pub use rtp::{Rewriter, RtpError, RtpPacket};
pub use sdp::{
    negotiate, Codec, Direction, LocalMedia, LocalSession, Negotiated, SdpError, SessionDescription,
};
