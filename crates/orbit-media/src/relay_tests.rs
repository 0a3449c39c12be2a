use super::*;
use crate::moh::MohSource;
use crate::ports::PortPool;
use crate::rtp::{write_header, HEADER_LEN};
use std::net::{IpAddr, Ipv4Addr};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct Phone {
    sock: UdpSocket,
    seq: u16,
}

impl Phone {
    async fn new() -> Self {
        Phone {
            sock: UdpSocket::bind((LO, 0)).await.unwrap(),
            seq: 0,
        }
    }
    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }
    async fn send(&mut self, to: u16, pt: u8, payload: &[u8]) {
        let mut h = [0u8; HEADER_LEN];
        write_header(&mut h, pt, self.seq, self.seq as u32 * 160, 0xABCD);
        self.seq = self.seq.wrapping_add(1);
        let mut p = h.to_vec();
        p.extend_from_slice(payload);
        self.sock.send_to(&p, (LO, to)).await.unwrap();
    }
    async fn recv(&self) -> Vec<u8> {
        let mut buf = [0u8; 2048];
        let (n, _) = timeout(Duration::from_secs(2), self.sock.recv_from(&mut buf))
            .await
            .expect("no packet within 2 s")
            .unwrap();
        buf[..n].to_vec()
    }
    /// Receive until a packet whose payload satisfies `f` (skipping music
    /// frames still in flight), returning everything seen.
    async fn recv_until(&self, f: impl Fn(&[u8]) -> bool) -> Vec<Vec<u8>> {
        let mut seen = Vec::new();
        loop {
            let p = self.recv().await;
            let done = f(RtpPacket::parse(&p).unwrap().payload());
            seen.push(p);
            if done {
                return seen;
            }
        }
    }
}

fn cfg(phone: &Phone, codec: Codec, te: Option<u8>) -> LegConfig {
    LegConfig {
        remote_rtp: Some(phone.addr()),
        codec,
        telephone_event: te,
    }
}

#[tokio::test]
async fn bridge_music_and_back_with_continuous_sequence() {
    let pool = PortPool::new(LO, 42_000, 42_099, 10).unwrap();
    let session = MediaSession::start(pool.allocate().unwrap(), pool.allocate().unwrap());
    let (pa, pb) = (session.local_port(LegId::A), session.local_port(LegId::B));
    let mut a = Phone::new().await;
    let mut b = Phone::new().await;
    session.set_config(LegId::A, cfg(&a, Codec::Pcmu, Some(101)));
    session.set_config(LegId::B, cfg(&b, Codec::Pcmu, Some(96)));

    // Bridge: each phone hears the other's tagged payloads.
    a.send(pa, 0, b"from-a-1").await;
    let p = b.recv().await;
    let r = RtpPacket::parse(&p).unwrap();
    assert_eq!(r.payload(), b"from-a-1");
    assert_eq!(r.payload_type(), 0);
    assert!(r.marker());
    b.send(pb, 0, b"from-b-1").await;
    let first_to_a = a.recv().await;
    assert_eq!(
        RtpPacket::parse(&first_to_a).unwrap().payload(),
        b"from-b-1"
    );

    // DTMF: A's PT 101 arrives at B as PT 96; unknown PTs are dropped.
    a.send(pa, 13, b"cn").await;
    a.send(pa, 101, &[5, 0x0A, 0, 160]).await;
    let r = b.recv().await;
    let r = RtpPacket::parse(&r).unwrap();
    assert_eq!(
        (r.payload_type(), r.payload()),
        (96, &[5u8, 0x0A, 0, 160][..])
    );

    // A goes to music; B keeps hearing A.
    let player = Arc::new(MohPlayer::spawn(Arc::new(MohSource::builtin())));
    session.set_mode(LegId::A, Mode::Music(player.clone()));
    let mut music = Vec::new();
    while music.len() < 5 {
        music.push(a.recv().await);
    }
    let mut prev = RtpPacket::parse(&first_to_a).unwrap().sequence();
    for (i, m) in music.iter().enumerate() {
        let r = RtpPacket::parse(m).unwrap();
        assert_eq!(r.payload().len(), 160);
        assert_eq!(r.sequence(), prev.wrapping_add(1));
        assert_eq!(r.marker(), i == 0);
        assert_eq!(r.ssrc(), RtpPacket::parse(&first_to_a).unwrap().ssrc());
        prev = r.sequence();
    }
    a.send(pa, 0, b"from-a-2").await;
    assert_eq!(
        RtpPacket::parse(&b.recv().await).unwrap().payload(),
        b"from-a-2"
    );
    // While A hears music, B's audio does not reach A.
    b.send(pb, 0, b"from-b-hidden").await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Back to the bridge: B's audio again, sequence still continuous.
    session.set_mode(LegId::A, Mode::Bridge);
    assert_eq!(player.listener_count(), 0);
    b.send(pb, 0, b"from-b-2").await;
    let seen = a.recv_until(|p| p == b"from-b-2").await;
    for p in &seen {
        let r = RtpPacket::parse(p).unwrap();
        assert_ne!(r.payload(), b"from-b-hidden");
        assert_eq!(r.sequence(), prev.wrapping_add(1));
        prev = r.sequence();
    }
    assert!(RtpPacket::parse(seen.last().unwrap()).unwrap().marker());

    let sa = session.stats(LegId::A);
    assert_eq!(sa.packets_in, 4); // a-1, cn (counted, then dropped), dtmf, a-2
    assert!(sa.packets_out >= 7);
    assert!(sa.last_packet_in.is_some());
    assert_eq!(session.stats(LegId::B).packets_in, 3);
}

#[tokio::test]
async fn transcodes_and_latches_to_the_real_source() {
    let pool = PortPool::new(LO, 42_100, 42_199, 10).unwrap();
    let session = MediaSession::start(pool.allocate().unwrap(), pool.allocate().unwrap());
    let pa = session.local_port(LegId::A);
    let mut a = Phone::new().await;
    let b = Phone::new().await;
    // B's SDP names a wrong address (NAT); A's is on hold with c=0.0.0.0.
    session.set_config(
        LegId::A,
        LegConfig {
            remote_rtp: None,
            codec: Codec::Pcmu,
            telephone_event: None,
        },
    );
    session.set_config(
        LegId::B,
        LegConfig {
            remote_rtp: Some("127.0.0.1:9".parse().unwrap()),
            codec: Codec::Pcma,
            telephone_event: None,
        },
    );
    // B sends first (from its real address), so B's leg latches to it.
    let pb = session.local_port(LegId::B);
    let mut b = b;
    b.send(pb, 8, &[0xD5; 160]).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(session.remote(LegId::B), Some(b.addr()));
    // A hears B transcoded to PCMU once A's address is known by latching.
    assert_eq!(session.remote(LegId::A), None);
    a.send(pa, 0, &[0xFF; 160]).await;
    let r = b.recv().await;
    let r = RtpPacket::parse(&r).unwrap();
    assert_eq!(r.payload_type(), 8);
    assert_eq!(r.payload(), &[0xD5; 160][..]);
    b.send(pb, 8, &[0xD5; 160]).await;
    let r = a.recv().await;
    // A-law "+8" becomes the nearest µ-law value, not µ-law zero.
    let payload = RtpPacket::parse(&r).unwrap().payload().to_vec();
    assert_eq!(payload.len(), 160);
    assert!(payload
        .iter()
        .all(|c| g711::decode(Codec::Pcmu, *c).abs() <= 16));
    // Silence: nothing reaches A.
    session.set_mode(LegId::A, Mode::Silence);
    b.send(pb, 8, &[0xD5; 160]).await;
    let mut buf = [0u8; 64];
    assert!(
        timeout(Duration::from_millis(200), a.sock.recv_from(&mut buf))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn rtcp_is_counted_and_dropped() {
    let pool = PortPool::new(LO, 42_200, 42_299, 10).unwrap();
    let session = MediaSession::start(pool.allocate().unwrap(), pool.allocate().unwrap());
    let a = Phone::new().await;
    let sr = [0x80, 200, 0, 1, 0, 0, 0, 1];
    a.sock
        .send_to(&sr, (LO, session.local_port(LegId::A) + 1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let s = session.stats(LegId::A);
    assert_eq!((s.rtcp_in, s.packets_in), (1, 0));
    let idle = s.idle_for(Instant::now()).unwrap();
    assert!(idle < Duration::from_secs(1));
    drop(session);
    // Aborted tasks release their sockets when the runtime drops them.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn payload_mapping_between_negotiations() {
    let from = LegConfig {
        remote_rtp: None,
        codec: Codec::Pcma,
        telephone_event: Some(101),
    };
    let to_no_te = LegConfig {
        remote_rtp: None,
        codec: Codec::Pcma,
        telephone_event: None,
    };
    let mut h = [0u8; HEADER_LEN];
    write_header(&mut h, 101, 1, 1, 1);
    let mut p = h.to_vec();
    p.extend_from_slice(&[1, 0x80, 0, 80]);
    // DTMF to a leg that did not negotiate telephone-event: dropped.
    assert!(!map_payload(&mut p, &from, &to_no_te));
    // Audio in the same codec passes unchanged.
    write_header(&mut h, 8, 2, 2, 1);
    let mut p = h.to_vec();
    p.extend_from_slice(&[0x55; 4]);
    let before = p.clone();
    assert!(map_payload(&mut p, &from, &to_no_te));
    assert_eq!(p, before);
    // A PT the leg did not negotiate (e.g. PCMU on a PCMA leg): dropped.
    write_header(&mut h, 0, 3, 3, 1);
    let mut p = h.to_vec();
    p.push(0xFF);
    assert!(!map_payload(&mut p, &from, &to_no_te));
    // Garbage never passes.
    assert!(!map_payload(&mut [0u8; 3], &from, &to_no_te));
}
