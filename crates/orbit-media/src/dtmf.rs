//! RFC 4733 telephone-event reading: one digit per key press.
//!
//! A sender repeats an event's packets while the key is held and sends its
//! end packet three times; all carry the same RTP timestamp. A digit is
//! reported once, on the first end packet of a timestamp not seen before.

/// The digit of an RFC 4733 DTMF event code.
fn digit(event: u8) -> Option<char> {
    Some(match event {
        0..=9 => (b'0' + event) as char,
        10 => '*',
        11 => '#',
        12..=15 => (b'A' + event - 12) as char,
        _ => return None,
    })
}

#[derive(Debug, Default, Clone)]
pub struct DtmfDetector {
    last_end: Option<u32>,
}

impl DtmfDetector {
    /// Feed the payload of a telephone-event packet with its RTP timestamp.
    pub fn on_event(&mut self, payload: &[u8], timestamp: u32) -> Option<char> {
        let [event, flags, ..] = payload else {
            return None;
        };
        let end = flags & 0x80 != 0;
        if !end || self.last_end == Some(timestamp) {
            return None;
        }
        self.last_end = Some(timestamp);
        digit(*event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_digit_per_press() {
        let mut d = DtmfDetector::default();
        assert_eq!(d.on_event(&[5, 0x0a, 0, 160], 1000), None, "not ended yet");
        assert_eq!(d.on_event(&[5, 0x8a, 3, 32], 1000), Some('5'));
        assert_eq!(d.on_event(&[5, 0x8a, 3, 32], 1000), None, "end repeated");
        assert_eq!(d.on_event(&[5, 0x8a, 3, 32], 1000), None);
        assert_eq!(d.on_event(&[10, 0x8a, 3, 32], 2000), Some('*'));
        assert_eq!(d.on_event(&[11, 0x8a, 3, 32], 3000), Some('#'));
        assert_eq!(
            d.on_event(&[16, 0x8a, 3, 32], 4000),
            None,
            "not a DTMF event"
        );
        assert_eq!(d.on_event(&[1], 5000), None, "short payload");
    }
}
