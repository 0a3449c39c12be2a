//! Nonce-count replay protection (RFC 7616 §3.4): for each nonce in use,
//! the highest `nc` accepted. A response that does not raise it is a replay.
//!
//! Bounded: at most `capacity` nonces are remembered, the oldest forgotten
//! first, and none longer than the nonce lifetime (after which the nonce is
//! stale anyway). A replay of a forgotten nonce within its lifetime would be
//! accepted again; the bound trades that window for fixed memory.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct ReplayTable {
    seen: HashMap<String, u32>,
    order: VecDeque<(Instant, String)>,
    capacity: usize,
    lifetime: Duration,
}

impl ReplayTable {
    pub fn new(capacity: usize, lifetime: Duration) -> Self {
        ReplayTable {
            seen: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            lifetime,
        }
    }

    /// Accept `nc` for `nonce` if it is higher than any accepted before.
    /// `nc` is the 8-hex-digit count; one that does not parse is refused.
    pub fn accept(&mut self, nonce: &str, nc: &str, now: Instant) -> bool {
        let Ok(count) = u32::from_str_radix(nc, 16) else {
            return false;
        };
        if nc.len() != 8 || count == 0 {
            return false;
        }
        self.forget_old(now);
        match self.seen.get_mut(nonce) {
            Some(last) if count <= *last => false,
            Some(last) => {
                *last = count;
                true
            }
            None => {
                while self.seen.len() >= self.capacity {
                    match self.order.pop_front() {
                        Some((_, old)) => {
                            self.seen.remove(&old);
                        }
                        None => break,
                    }
                }
                self.seen.insert(nonce.to_string(), count);
                self.order.push_back((now, nonce.to_string()));
                true
            }
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    fn forget_old(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) <= self.lifetime {
                break;
            }
            if let Some((_, old)) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_must_rise_per_nonce() {
        let t0 = Instant::now();
        let mut r = ReplayTable::new(10, Duration::from_secs(300));
        assert!(r.accept("n1", "00000001", t0));
        assert!(!r.accept("n1", "00000001", t0));
        assert!(r.accept("n1", "00000002", t0));
        assert!(!r.accept("n1", "00000002", t0));
        assert!(r.accept("n2", "00000001", t0));
        assert!(!r.accept("n3", "1", t0));
        assert!(!r.accept("n3", "zzzzzzzz", t0));
        assert!(!r.accept("n3", "00000000", t0));
    }

    #[test]
    fn bounded_in_count_and_time() {
        let t0 = Instant::now();
        let mut r = ReplayTable::new(2, Duration::from_secs(10));
        r.accept("a", "00000001", t0);
        r.accept("b", "00000001", t0);
        r.accept("c", "00000001", t0);
        assert_eq!(r.len(), 2);
        // "a" was forgotten to make room: its count starts over.
        assert!(r.accept("a", "00000001", t0));
        assert!(r.accept("x", "00000001", t0 + Duration::from_secs(11)));
        assert_eq!(r.len(), 1);
    }
}
