//! G.711 µ-law (PCMU) and A-law (PCMA), from `audio-codec-algorithms`,
//! which the research note checked against CPython's `audioop` tables.

use crate::sdp::Codec;
use audio_codec_algorithms::{
    convert_alaw_to_ulaw, convert_ulaw_to_alaw, decode_alaw, decode_ulaw, encode_alaw, encode_ulaw,
};

/// Encode one linear sample.
pub fn encode(codec: Codec, sample: i16) -> u8 {
    match codec {
        Codec::Pcmu => encode_ulaw(sample),
        Codec::Pcma => encode_alaw(sample),
    }
}

/// Decode one code value.
pub fn decode(codec: Codec, code: u8) -> i16 {
    match codec {
        Codec::Pcmu => decode_ulaw(code),
        Codec::Pcma => decode_alaw(code),
    }
}

/// Transcode a payload in place between the two laws (a table lookup per
/// byte, cheap enough to do in the relay when the legs chose different codecs).
pub fn transcode_in_place(from: Codec, to: Codec, payload: &mut [u8]) {
    match (from, to) {
        (Codec::Pcmu, Codec::Pcma) => payload
            .iter_mut()
            .for_each(|b| *b = convert_ulaw_to_alaw(*b)),
        (Codec::Pcma, Codec::Pcmu) => payload
            .iter_mut()
            .for_each(|b| *b = convert_alaw_to_ulaw(*b)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_value_round_trips() {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            for code in 0..=255u8 {
                let linear = decode(codec, code);
                let again = encode(codec, linear);
                // µ-law has two zeros (0x7F and 0xFF); both decode to 0 and
                // encode back to the positive zero.
                if codec == Codec::Pcmu && code == 0x7F {
                    assert_eq!(again, 0xFF);
                } else {
                    assert_eq!(again, code, "{codec:?} code {code:#04x} -> {linear}");
                }
            }
        }
    }

    #[test]
    fn silence_and_sign() {
        assert_eq!(encode(Codec::Pcmu, 0), 0xFF);
        assert_eq!(encode(Codec::Pcma, 0), 0xD5);
        assert!(decode(Codec::Pcmu, encode(Codec::Pcmu, 10000)) > 9000);
        assert!(decode(Codec::Pcma, encode(Codec::Pcma, -10000)) < -9000);
    }

    #[test]
    fn transcoding_keeps_the_sample() {
        let mut p: Vec<u8> = (0..=255).collect();
        transcode_in_place(Codec::Pcmu, Codec::Pcma, &mut p);
        for (code, a) in (0..=255u8).zip(&p) {
            let diff = (decode(Codec::Pcmu, code) as i32 - decode(Codec::Pcma, *a) as i32).abs();
            let mag = (decode(Codec::Pcmu, code) as i32).abs();
            assert!(diff <= mag / 8 + 16, "code {code}: diff {diff}");
        }
    }
}
