use super::*;
use crate::rtp::RtpPacket;
use std::io::Cursor;

fn wav(spec: hound::WavSpec, samples: usize) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut buf, spec).unwrap();
        for i in 0..samples {
            match (spec.sample_format, spec.bits_per_sample) {
                (hound::SampleFormat::Float, _) => w.write_sample(0.0f32).unwrap(),
                (_, 8) => w.write_sample(i as i8).unwrap(),
                _ => w.write_sample((i as i16).wrapping_mul(97)).unwrap(),
            }
        }
        w.finalize().unwrap();
    }
    buf.into_inner()
}

fn spec(rate: u32, channels: u16, bits: u16, fmt: hound::SampleFormat) -> hound::WavSpec {
    hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: fmt,
    }
}

#[test]
fn accepts_8k_mono_16bit_and_pads_last_frame() {
    let data = wav(spec(8000, 1, 16, hound::SampleFormat::Int), 400);
    let s = MohSource::from_wav_reader("hold.wav", Cursor::new(data)).unwrap();
    assert_eq!(s.frame_count(), 3);
    let last = &s.frames(Codec::Pcmu)[2];
    assert_eq!(last[FRAME_SAMPLES - 1], 0xFF); // µ-law silence
    assert_eq!(s.frames(Codec::Pcma)[2][FRAME_SAMPLES - 1], 0xD5);
}

#[test]
fn refuses_other_formats_naming_expected_and_found() {
    let cases = [
        (
            spec(44100, 2, 16, hound::SampleFormat::Int),
            "44100 Hz, 2 channel(s), 16-bit PCM",
        ),
        (
            spec(16000, 1, 16, hound::SampleFormat::Int),
            "16000 Hz, 1 channel(s), 16-bit PCM",
        ),
        (
            spec(8000, 1, 8, hound::SampleFormat::Int),
            "8000 Hz, 1 channel(s), 8-bit PCM",
        ),
        (
            spec(8000, 1, 32, hound::SampleFormat::Float),
            "8000 Hz, 1 channel(s), 32-bit float",
        ),
    ];
    for (sp, found) in cases {
        let err = MohSource::from_wav_reader("x.wav", Cursor::new(wav(sp, 10))).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("must be an 8000 Hz mono 16-bit PCM WAV file"),
            "{msg}"
        );
        assert!(msg.contains(found), "{msg}");
        assert!(msg.contains("x.wav"), "{msg}");
    }
    let err =
        MohSource::from_wav_reader("junk.wav", Cursor::new(b"not a wav".to_vec())).unwrap_err();
    assert!(err.to_string().contains("junk.wav"));
    let empty = wav(spec(8000, 1, 16, hound::SampleFormat::Int), 0);
    assert!(matches!(
        MohSource::from_wav_reader("e.wav", Cursor::new(empty)),
        Err(MohError::Empty { .. })
    ));
}

#[test]
fn builtin_is_a_few_seconds_and_not_silent() {
    let s = MohSource::builtin();
    assert_eq!(s.frame_count(), 200); // 4 s
    let loud = s
        .frames(Codec::Pcmu)
        .iter()
        .flatten()
        .filter(|b| crate::g711::decode(Codec::Pcmu, **b).unsigned_abs() > 1000);
    assert!(loud.count() > 10_000);
}

/// Records what it is sent, after rewriting like a real listener.
struct Recorder {
    codec: Codec,
    rw: Mutex<Rewriter>,
    got: Mutex<Vec<(Vec<u8>, Instant)>>,
}

impl Recorder {
    fn new(codec: Codec) -> Arc<Self> {
        Arc::new(Recorder {
            codec,
            rw: Mutex::new(Rewriter::new(9, 0, 0, 8000)),
            got: Mutex::default(),
        })
    }
}

impl FrameSink for Recorder {
    fn codec(&self) -> Codec {
        self.codec
    }
    fn send(&self, packet: &mut [u8], source: SourceId, now: Instant) {
        self.rw
            .lock()
            .unwrap()
            .rewrite(packet, source, now)
            .unwrap();
        self.got.lock().unwrap().push((packet.to_vec(), now));
    }
}

#[test]
fn frames_are_shared_not_copied() {
    let s = Arc::new(MohSource::builtin());
    let a = s.clone();
    assert!(Arc::ptr_eq(a.frames(Codec::Pcmu), s.frames(Codec::Pcmu)));
    assert!(!Arc::ptr_eq(s.frames(Codec::Pcmu), s.frames(Codec::Pcma)));
}

#[tokio::test(start_paused = true)]
async fn paces_every_20ms_to_each_listener_in_its_codec() {
    let source = Arc::new(MohSource::builtin());
    let player = MohPlayer::spawn(source.clone());
    let u = Recorder::new(Codec::Pcmu);
    let a = Recorder::new(Codec::Pcma);
    let _ = player.add_listener(u.clone());
    let id_a = player.add_listener(a.clone());
    assert_eq!(player.listener_count(), 2);
    tokio::time::sleep(Duration::from_millis(990)).await;
    player.remove_listener(id_a);
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let got = u.got.lock().unwrap();
    assert_eq!(got.len(), 100);
    for w in got.windows(2) {
        assert_eq!(w[1].1 - w[0].1, FRAME_INTERVAL);
        let (p, q) = (
            RtpPacket::parse(&w[0].0).unwrap(),
            RtpPacket::parse(&w[1].0).unwrap(),
        );
        assert_eq!(q.sequence(), p.sequence().wrapping_add(1));
        assert_eq!(q.timestamp(), p.timestamp().wrapping_add(160));
        assert_eq!(q.ssrc(), 9);
        assert_eq!(q.payload_type(), 0);
    }
    // Both listeners heard the same frames, each in its own codec.
    let first = RtpPacket::parse(&got[0].0).unwrap();
    assert_eq!(first.payload(), &source.frames(Codec::Pcmu)[0][..]);
    let got_a = a.got.lock().unwrap();
    assert_eq!(got_a.len(), 50);
    let pa = RtpPacket::parse(&got_a[0].0).unwrap();
    assert_eq!(pa.payload_type(), 8);
    assert_eq!(pa.payload(), &source.frames(Codec::Pcma)[0][..]);
}

#[tokio::test]
async fn udp_sink_sends_rewritten_frames_to_its_destination() {
    let lo = std::net::Ipv4Addr::LOCALHOST;
    let phone = UdpSocket::bind((lo, 0)).await.unwrap();
    let socket = Arc::new(UdpSocket::bind((lo, 0)).await.unwrap());
    let player = MohPlayer::spawn(Arc::new(MohSource::builtin()));
    let id = player.add_listener(Arc::new(UdpSink::new(
        socket,
        phone.local_addr().unwrap(),
        Codec::Pcma,
    )));
    let mut buf = [0u8; 512];
    let mut seqs = Vec::new();
    for _ in 0..3 {
        let n = tokio::time::timeout(Duration::from_secs(2), phone.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        assert_eq!((p.payload_type(), p.payload().len()), (8, FRAME_SAMPLES));
        seqs.push(p.sequence());
    }
    assert_eq!(seqs[1], seqs[0].wrapping_add(1));
    assert_eq!(seqs[2], seqs[1].wrapping_add(1));
    player.remove_listener(id);
    assert_eq!(player.listener_count(), 0);
}
