use super::*;
use proptest::prelude::*;
use std::time::Duration;

fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut h = [0u8; HEADER_LEN];
    write_header(&mut h, pt, seq, ts, ssrc);
    let mut v = h.to_vec();
    v.extend_from_slice(payload);
    v
}

#[test]
fn parses_header_fields_and_skips_csrc_and_extension() {
    let mut p = packet(8, 1234, 0xDEADBEEF, 0x01020304, &[]);
    p[0] |= 0x10 | 0x02; // extension, two CSRCs
    p[1] |= 0x80;
    p.extend_from_slice(&[0; 8]); // CSRCs
    p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]); // one-word extension
    p.extend_from_slice(&[9, 9, 9, 0, 0, 3]); // payload + 3 bytes padding
    p[0] |= 0x20;
    let r = RtpPacket::parse(&p).unwrap();
    assert!(r.marker());
    assert_eq!(r.payload_type(), 8);
    assert_eq!(r.sequence(), 1234);
    assert_eq!(r.timestamp(), 0xDEADBEEF);
    assert_eq!(r.ssrc(), 0x01020304);
    assert_eq!(r.payload(), &[9, 9, 9]);
}

#[test]
fn rejects_malformed() {
    assert_eq!(
        RtpPacket::parse(&[0x80; 11]).unwrap_err(),
        RtpError::TooShort(11)
    );
    let mut p = packet(0, 1, 1, 1, &[1]);
    p[0] = 0x40;
    assert_eq!(RtpPacket::parse(&p).unwrap_err(), RtpError::BadVersion(1));
    let mut p = packet(0, 1, 1, 1, &[]);
    p[0] |= 0x01;
    assert_eq!(RtpPacket::parse(&p).unwrap_err(), RtpError::Truncated);
    let mut p = packet(0, 1, 1, 1, &[5]);
    p[0] |= 0x20;
    assert_eq!(RtpPacket::parse(&p).unwrap_err(), RtpError::BadPadding);
    // An RTCP sender report arriving on the RTP port.
    let sr = [0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0];
    assert_eq!(
        RtpPacket::parse(&sr).unwrap_err(),
        RtpError::RtcpPayloadType(72)
    );
}

#[test]
fn switch_continues_sequence_and_jumps_timestamp() {
    let t0 = Instant::now();
    let mut rw = Rewriter::new(77, 100, 5000, 8000);
    let mut out = Vec::new();
    for i in 0..3u16 {
        let mut p = packet(0, 40000 + i, 160 * i as u32, 1, &[0; 160]);
        rw.rewrite(&mut p, 1, t0 + Duration::from_millis(20 * i as u64))
            .unwrap();
        out.push(p);
    }
    // Music starts 100 ms after the last bridged packet.
    let mut p = packet(0, 7, 999_999, 2, &[0; 160]);
    rw.rewrite(&mut p, 2, t0 + Duration::from_millis(140))
        .unwrap();
    out.push(p);
    let v: Vec<_> = out.iter().map(|p| RtpPacket::parse(p).unwrap()).collect();
    assert_eq!(
        v.iter().map(|p| p.sequence()).collect::<Vec<_>>(),
        [100, 101, 102, 103]
    );
    assert_eq!(v[0].timestamp(), 5001); // first packet: at least one sample on
    assert_eq!(v[2].timestamp(), 5001 + 320);
    assert_eq!(v[3].timestamp(), 5001 + 320 + 800);
    assert!(v.iter().all(|p| p.ssrc() == 77));
    assert_eq!(
        v.iter().map(|p| p.marker()).collect::<Vec<_>>(),
        [true, false, false, true]
    );
}

proptest! {
    #[test]
    fn parse_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(p) = RtpPacket::parse(&buf) {
            prop_assert!(p.payload().len() <= buf.len());
        }
        let mut b = buf.clone();
        let mut rw = Rewriter::random();
        let before = b.clone();
        if rw.rewrite(&mut b, 1, Instant::now()).is_err() {
            prop_assert_eq!(b, before);
        }
    }

    /// Any sequence of bursts from random sources with random starting
    /// sequence/timestamp gives one stream: sequence +1 each packet, one
    /// SSRC, timestamps advancing by 160 within a burst and by the elapsed
    /// time across a switch, marker exactly on switches.
    #[test]
    fn continuity_across_switches(
        bursts in proptest::collection::vec((0u64..3, any::<u16>(), any::<u32>(), 1usize..20, 0u64..500, any::<u32>()), 1..12)
    ) {
        let t0 = Instant::now();
        let mut now_ms = 0u64;
        let mut rw = Rewriter::new(42, 1, 1, 8000);
        let mut prev: Option<(u16, u32)> = None;
        let mut last_source = None;
        for (source, seq0, ts0, len, gap_ms, ssrc) in bursts {
            now_ms += gap_ms;
            for i in 0..len {
                if i > 0 { now_ms += 20; }
                let mut p = packet(0, seq0.wrapping_add(i as u16), ts0.wrapping_add(160 * i as u32), ssrc, &[1; 4]);
                rw.rewrite(&mut p, source, t0 + Duration::from_millis(now_ms)).unwrap();
                let r = RtpPacket::parse(&p).unwrap();
                prop_assert_eq!(r.ssrc(), 42);
                let switched = i == 0 && last_source != Some((source, ssrc));
                prop_assert_eq!(r.marker(), switched);
                // The same source again with a random restart is not a real
                // stream; only switches and packets inside a burst are checked.
                if let (Some((s, ts)), true) = (prev, switched || i > 0) {
                    prop_assert_eq!(r.sequence(), s.wrapping_add(1));
                    let expect = if switched { (gap_ms * 8).max(1) as u32 } else { 160 };
                    prop_assert_eq!(r.timestamp().wrapping_sub(ts), expect);
                }
                prev = Some((r.sequence(), r.timestamp()));
            }
            last_source = Some((source, ssrc));
        }
    }
}
