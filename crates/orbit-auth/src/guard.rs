//! Brute-force guard: failed authentications from one source address are
//! first slowed down, then refused for a while.
//!
//! Failures are counted in a sliding window. Successes do not reset the
//! count: an attacker holding one valid account must not be able to wipe
//! the record of its guesses at others.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct GuardConfig {
    pub enabled: bool,
    /// Failures within `window` after which answers are delayed.
    pub delay_after: u32,
    pub delay: Duration,
    /// Failures within `window` after which the source is refused.
    pub block_after: u32,
    pub window: Duration,
    pub block_for: Duration,
    /// Sources tracked at once; the oldest are forgotten beyond it.
    pub max_tracked: usize,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            enabled: true,
            delay_after: 5,
            delay: Duration::from_millis(1000),
            block_after: 20,
            window: Duration::from_secs(60),
            block_for: Duration::from_secs(300),
            max_tracked: 65_536,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Delay(Duration),
    Refuse { until: Instant },
}

#[derive(Debug, Default)]
struct Record {
    failures: VecDeque<Instant>,
    blocked_until: Option<Instant>,
    last: Option<Instant>,
}

#[derive(Debug)]
pub struct Guard {
    config: GuardConfig,
    sources: HashMap<IpAddr, Record>,
    last_full_sweep: Option<Instant>,
}

/// Failures are counted per IPv4 address or per IPv6 /64: one host can
/// hold a whole /64 and would otherwise get a fresh count per address.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

impl Guard {
    pub fn new(config: GuardConfig) -> Self {
        Guard {
            config,
            sources: HashMap::new(),
            last_full_sweep: None,
        }
    }

    /// How to treat a request from `ip` at `now`.
    pub fn verdict(&mut self, ip: IpAddr, now: Instant) -> Verdict {
        if !self.config.enabled {
            return Verdict::Allow;
        }
        let ip = source_key(ip);
        let Some(rec) = self.sources.get_mut(&ip) else {
            return Verdict::Allow;
        };
        if let Some(until) = rec.blocked_until {
            if now < until {
                return Verdict::Refuse { until };
            }
            rec.blocked_until = None;
            rec.failures.clear();
        }
        prune(&mut rec.failures, now, self.config.window);
        if rec.failures.len() as u32 >= self.config.delay_after {
            Verdict::Delay(self.config.delay)
        } else {
            Verdict::Allow
        }
    }

    /// Count a failed authentication; returns the verdict that now applies.
    pub fn record_failure(&mut self, ip: IpAddr, now: Instant) -> Verdict {
        if !self.config.enabled {
            return Verdict::Allow;
        }
        let ip = source_key(ip);
        if !self.sources.contains_key(&ip) && self.sources.len() >= self.config.max_tracked {
            // Making room scans the table, so at most once a second; in
            // between, a new source's failure goes uncounted.
            if self
                .last_full_sweep
                .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
            {
                return Verdict::Allow;
            }
            self.last_full_sweep = Some(now);
            self.sweep(now);
            if self.sources.len() >= self.config.max_tracked {
                self.evict_oldest();
            }
        }
        let window = self.config.window;
        let rec = self.sources.entry(ip).or_default();
        prune(&mut rec.failures, now, window);
        rec.failures.push_back(now);
        rec.last = Some(now);
        if rec.failures.len() as u32 >= self.config.block_after {
            let until = now + self.config.block_for;
            rec.blocked_until = Some(until);
        }
        self.verdict(ip, now)
    }

    /// Forget sources with nothing recent and no block in force.
    pub fn sweep(&mut self, now: Instant) {
        let window = self.config.window;
        self.sources.retain(|_, r| {
            prune(&mut r.failures, now, window);
            !r.failures.is_empty() || r.blocked_until.is_some_and(|u| u > now)
        });
    }

    pub fn tracked(&self) -> usize {
        self.sources.len()
    }

    fn evict_oldest(&mut self) {
        if let Some(ip) = self
            .sources
            .iter()
            .filter(|(_, r)| r.blocked_until.is_none())
            .min_by_key(|(_, r)| r.last)
            .map(|(ip, _)| *ip)
        {
            self.sources.remove(&ip);
        }
    }
}

fn prune(failures: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while failures
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        failures.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> GuardConfig {
        GuardConfig {
            enabled: true,
            delay_after: 2,
            delay: Duration::from_millis(300),
            block_after: 4,
            window: Duration::from_secs(10),
            block_for: Duration::from_secs(60),
            max_tracked: 3,
        }
    }

    #[test]
    fn slows_then_refuses_then_forgives() {
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let mut g = Guard::new(cfg());
        assert_eq!(g.record_failure(ip, t0), Verdict::Allow);
        assert_eq!(
            g.record_failure(ip, t0),
            Verdict::Delay(Duration::from_millis(300))
        );
        g.record_failure(ip, t0);
        let until = t0 + Duration::from_secs(60);
        assert_eq!(g.record_failure(ip, t0), Verdict::Refuse { until });
        assert_eq!(
            g.verdict(ip, t0 + Duration::from_secs(59)),
            Verdict::Refuse { until }
        );
        assert_eq!(g.verdict(ip, until), Verdict::Allow);
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(g.verdict(other, t0), Verdict::Allow);
    }

    #[test]
    fn failures_age_out_of_the_window() {
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let mut g = Guard::new(cfg());
        g.record_failure(ip, t0);
        assert_eq!(
            g.record_failure(ip, t0 + Duration::from_secs(11)),
            Verdict::Allow
        );
    }

    #[test]
    fn bounded_and_disabled() {
        let t0 = Instant::now();
        let mut g = Guard::new(cfg());
        for i in 0..10u8 {
            g.record_failure(
                IpAddr::from([192, 0, 2, i]),
                t0 + Duration::from_millis(i as u64),
            );
        }
        assert!(g.tracked() <= 3);
        let mut off = Guard::new(GuardConfig {
            enabled: false,
            ..cfg()
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10 {
            assert_eq!(off.record_failure(ip, t0), Verdict::Allow);
        }
    }
}
