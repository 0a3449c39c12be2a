//! RTP port pool: even RTP ports with RTCP on the next odd port (RFC 3550
//! §11), both bound at allocation so a pair is really ours, released when
//! the `PortPair` is dropped.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("RTP port range {0}-{1} holds no even/odd port pair")]
    InvalidRange(u16, u16),
    #[error("no free RTP port pair ({in_use} in use, limit {limit})")]
    Exhausted { in_use: usize, limit: usize },
    #[error("cannot set up RTP socket: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug)]
struct State {
    /// Index of the pair to try first, so ports are reused last (a late
    /// packet from an old call does not land in a new one).
    next: usize,
    in_use: HashSet<u16>,
}

#[derive(Debug)]
struct Inner {
    ip: IpAddr,
    first: u16,
    pairs: usize,
    limit: usize,
    state: Mutex<State>,
}

/// A bounded pool of RTP/RTCP port pairs on one local address.
#[derive(Debug, Clone)]
pub struct PortPool {
    inner: Arc<Inner>,
}

/// An allocated pair of bound sockets; the ports go back to the pool on drop.
#[derive(Debug)]
pub struct PortPair {
    pub rtp: Arc<UdpSocket>,
    pub rtcp: Arc<UdpSocket>,
    port: u16,
    pool: Arc<Inner>,
}

impl PortPair {
    /// The RTP port (RTCP is this + 1), for the SDP `m=` line.
    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn rtp_addr(&self) -> SocketAddr {
        SocketAddr::new(self.pool.ip, self.port)
    }
}

impl Drop for PortPair {
    fn drop(&mut self) {
        if let Ok(mut s) = self.pool.state.lock() {
            s.in_use.remove(&self.port);
        }
    }
}

impl PortPool {
    /// `low..=high` as configured (e.g. 10000-20000); `limit` bounds the
    /// pairs in use at once.
    pub fn new(ip: IpAddr, low: u16, high: u16, limit: usize) -> Result<Self, PortError> {
        let first = low.checked_add(low % 2).filter(|f| *f < high);
        let Some(first) = first else {
            return Err(PortError::InvalidRange(low, high));
        };
        let pairs = ((high - first) as usize).div_ceil(2);
        Ok(PortPool {
            inner: Arc::new(Inner {
                ip,
                first,
                pairs,
                limit: limit.min(pairs),
                state: Mutex::new(State {
                    next: 0,
                    in_use: HashSet::new(),
                }),
            }),
        })
    }

    pub fn in_use(&self) -> usize {
        self.inner.state.lock().map(|s| s.in_use.len()).unwrap_or(0)
    }

    /// Bind the next free pair, skipping ports other programs hold.
    /// Must be called inside a tokio runtime.
    pub fn allocate(&self) -> Result<PortPair, PortError> {
        let inner = &self.inner;
        let mut state = inner
            .state
            .lock()
            .map_err(|_| std::io::Error::other("port pool lock poisoned"))?;
        let exhausted = |in_use| PortError::Exhausted {
            in_use,
            limit: inner.limit,
        };
        if state.in_use.len() >= inner.limit {
            return Err(exhausted(state.in_use.len()));
        }
        for step in 0..inner.pairs {
            let index = (state.next + step) % inner.pairs;
            let port = inner.first + 2 * index as u16;
            if state.in_use.contains(&port) {
                continue;
            }
            let Ok((rtp, rtcp)) = bind_pair(inner.ip, port) else {
                continue;
            };
            state.in_use.insert(port);
            state.next = (index + 1) % inner.pairs;
            return Ok(PortPair {
                rtp: Arc::new(UdpSocket::from_std(rtp)?),
                rtcp: Arc::new(UdpSocket::from_std(rtcp)?),
                port,
                pool: inner.clone(),
            });
        }
        Err(exhausted(state.in_use.len()))
    }
}

fn bind_pair(ip: IpAddr, port: u16) -> std::io::Result<(std::net::UdpSocket, std::net::UdpSocket)> {
    let rtp = std::net::UdpSocket::bind(SocketAddr::new(ip, port))?;
    let rtcp = std::net::UdpSocket::bind(SocketAddr::new(ip, port + 1))?;
    rtp.set_nonblocking(true)?;
    rtcp.set_nonblocking(true)?;
    Ok((rtp, rtcp))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn range_must_hold_a_pair() {
        assert!(matches!(
            PortPool::new(LO, 10001, 10002, 9),
            Err(PortError::InvalidRange(..))
        ));
        assert!(PortPool::new(LO, 10001, 10004, 9).is_ok());
    }

    #[tokio::test]
    async fn allocates_even_pairs_skips_busy_and_bounds() {
        let busy = std::net::UdpSocket::bind((LO, 41_102)).unwrap();
        let pool = PortPool::new(LO, 41_099, 41_109, 3).unwrap();
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert_eq!(a.port(), 41_100);
        assert_eq!(b.port(), 41_104, "41102 is taken by another socket");
        assert_eq!(a.rtcp.local_addr().unwrap().port(), 41_101);
        let c = pool.allocate().unwrap();
        assert!(matches!(
            pool.allocate(),
            Err(PortError::Exhausted {
                in_use: 3,
                limit: 3
            })
        ));
        drop(b);
        assert_eq!(pool.in_use(), 2);
        let d = pool.allocate().unwrap();
        assert_eq!(d.port(), 41_108);
        drop((a, c, d, busy));
        assert_eq!(pool.in_use(), 0);
    }
}
