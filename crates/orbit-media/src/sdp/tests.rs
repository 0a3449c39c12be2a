use super::*;

const SNOM: &str = "v=0\r\no=root 1549745934 1549745934 IN IP4 192.168.1.50\r\ns=call\r\nc=IN IP4 192.168.1.50\r\nt=0 0\r\nm=audio 58266 RTP/AVP 9 0 8 3 99 112 18 101\r\na=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:abc\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:3 GSM/8000\r\na=rtpmap:99 G726-32/8000\r\na=rtpmap:112 opus/48000/2\r\na=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n";

const YEALINK: &str = "v=0\no=- 20023 20023 IN IP4 10.0.0.7\ns=SDP data\nc=IN IP4 10.0.0.7\nt=0 0\nm=audio 11796 RTP/AVP 8 0 18 9 96\na=rtpmap:8 PCMA/8000\na=rtpmap:0 PCMU/8000\na=rtpmap:18 G729/8000\na=fmtp:18 annexb=no\na=rtpmap:9 G722/8000\na=fmtp:96 0-15\na=rtpmap:96 telephone-event/8000\na=ptime:20\na=sendrecv\na=X-nat:0\nm=video 0 RTP/AVP 99\n";

const PJSIP: &str = "v=0\r\no=- 3912345678 3912345679 IN IP4 203.0.113.9\r\ns=pjmedia\r\nb=AS:84\r\nt=0 0\r\na=X-nat:0\r\nm=audio 4000 RTP/AVP 96 0 8 120\r\nc=IN IP4 203.0.113.9\r\nb=TIAS:64000\r\na=rtcp:4001 IN IP4 203.0.113.9\r\na=sendonly\r\na=rtpmap:96 speex/16000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:120 telephone-event/8000\r\na=fmtp:120 0-16\r\na=ssrc:123456 cname:abc\r\n";

const BOTH: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];

#[test]
fn snom_offer_negotiates_in_offerer_order() {
    let sd = SessionDescription::parse(SNOM).unwrap();
    assert_eq!(sd.origin_version, 1549745934);
    let n = negotiate(&sd, &BOTH).unwrap();
    assert_eq!(n.codecs, vec![Codec::Pcmu, Codec::Pcma]);
    assert_eq!(n.telephone_event, Some(101));
    assert_eq!(n.remote_rtp, Some("192.168.1.50:58266".parse().unwrap()));
    assert_eq!(n.remote_rtcp, Some("192.168.1.50:58267".parse().unwrap()));
    assert!(!sd.is_hold());
    assert!(sd.media[0].other.iter().any(|l| l.starts_with("a=crypto")));
}

#[test]
fn yealink_bare_lf_keeps_pcma_first_and_maps_te_96() {
    let sd = SessionDescription::parse(YEALINK).unwrap();
    let n = negotiate(&sd, &BOTH).unwrap();
    assert_eq!(n.codec(), Codec::Pcma);
    assert_eq!(n.telephone_event, Some(96));
    assert_eq!(n.m_lines.len(), 2);
    let mut local = LocalSession::new("198.51.100.1".parse().unwrap(), 42);
    let answer = local.render_answer(&LocalMedia::answer(&n, 20000, Direction::SendRecv), &n);
    assert!(
        answer.contains("m=audio 20000 RTP/AVP 8 0 96\r\n"),
        "{answer}"
    );
    assert!(answer.contains("a=rtpmap:96 telephone-event/8000\r\n"));
    assert!(answer.contains("m=video 0 RTP/AVP 99\r\n"));
    assert!(answer.contains("a=ptime:20\r\n"));
    // Orbit's answer parses back with our own reader.
    let back = SessionDescription::parse(&answer).unwrap();
    assert_eq!(back.audio_index(), Some(0));
}

#[test]
fn pjsip_sendonly_is_hold_and_answer_is_recvonly() {
    let sd = SessionDescription::parse(PJSIP).unwrap();
    assert!(sd.is_hold());
    let n = negotiate(&sd, &[Codec::Pcma]).unwrap();
    assert_eq!(n.codecs, vec![Codec::Pcma]);
    assert_eq!(n.telephone_event, Some(120));
    assert_eq!(n.remote_rtcp, Some("203.0.113.9:4001".parse().unwrap()));
    let m = LocalMedia::answer(&n, 30000, Direction::SendRecv);
    assert_eq!(m.direction, Direction::RecvOnly);
}

#[test]
fn old_hold_form_and_inactive() {
    let old = SNOM.replace("c=IN IP4 192.168.1.50", "c=IN IP4 0.0.0.0");
    let sd = SessionDescription::parse(&old).unwrap();
    assert!(sd.is_hold());
    assert_eq!(negotiate(&sd, &BOTH).unwrap().remote_rtp, None);
    let inactive = SNOM.replace("a=sendrecv", "a=inactive");
    assert!(SessionDescription::parse(&inactive).unwrap().is_hold());
    let recvonly = SNOM.replace("a=sendrecv", "a=recvonly");
    assert!(!SessionDescription::parse(&recvonly).unwrap().is_hold());
}

#[test]
fn session_level_direction_applies() {
    let s = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\na=sendonly\r\nm=audio 5000 RTP/AVP 0\r\n";
    assert!(SessionDescription::parse(s).unwrap().is_hold());
}

#[test]
fn no_common_codec_is_an_error() {
    let s = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 9 18 101\r\na=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
    let err = negotiate(&SessionDescription::parse(s).unwrap(), &BOTH).unwrap_err();
    assert_eq!(
        err,
        SdpError::NoCommonCodec {
            offered: vec![9, 18, 101]
        }
    );
}

#[test]
fn no_audio_and_syntax_errors() {
    let video = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 99\r\n";
    let sd = SessionDescription::parse(video).unwrap();
    assert_eq!(negotiate(&sd, &BOTH), Err(SdpError::NoAudio));
    let srtp_only = SNOM.replace("RTP/AVP", "RTP/SAVP");
    let sd = SessionDescription::parse(&srtp_only).unwrap();
    assert_eq!(negotiate(&sd, &BOTH), Err(SdpError::NoAudio));
    for bad in [
        "",
        "x=0\r\n",
        "v=0\r\ngarbage\r\n",
        "v=0\r\nm=audio notaport RTP/AVP 0\r\n",
        "v=0\r\nc=IN IP4 not-an-ip\r\n",
        "v=0\r\nm=audio 5 RTP/AVP 0\r\na=rtpmap:x PCMU/8000\r\n",
    ] {
        assert!(SessionDescription::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn version_increments_only_on_change() {
    let mut s = LocalSession::new("192.0.2.1".parse().unwrap(), 1000);
    let mut m = LocalMedia::offer(10000, &[Codec::Pcmu], Direction::SendRecv);
    let a = s.render_offer(&m);
    assert!(
        a.starts_with("v=0\r\no=orbit 1000 1000 IN IP4 192.0.2.1\r\n"),
        "{a}"
    );
    assert_eq!(s.render_offer(&m), a);
    m.direction = Direction::SendOnly;
    let b = s.render_offer(&m);
    assert!(b.contains("o=orbit 1000 1001 "));
    assert!(b.contains("a=sendonly\r\n"));
    assert!(b.contains("m=audio 10000 RTP/AVP 0 101\r\n"), "{b}");
    let v6 = LocalSession::new("2001:db8::1".parse().unwrap(), 7).render_offer(&m);
    assert!(v6.contains("c=IN IP6 2001:db8::1\r\n"));
}

#[test]
fn direction_answer_table() {
    use Direction::*;
    assert_eq!(Direction::answer(SendRecv, SendRecv), SendRecv);
    assert_eq!(Direction::answer(SendOnly, SendRecv), RecvOnly);
    assert_eq!(Direction::answer(RecvOnly, SendRecv), SendOnly);
    assert_eq!(Direction::answer(Inactive, SendRecv), Inactive);
    assert_eq!(Direction::answer(SendRecv, SendOnly), SendOnly);
}
