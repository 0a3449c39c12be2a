//! Reading a UDP datagram with the time the kernel received it.
//!
//! Under overload a request may wait in the socket's receive buffer (4 MB,
//! thousands of messages) before Orbit reads it; measured from the read,
//! that wait is invisible and a server that is seconds behind still looks
//! on time. `SO_TIMESTAMPNS` makes the kernel stamp each datagram as it
//! arrives (the only `nix` use in Orbit, wrapped here).

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage,
};
use nix::sys::time::TimeSpec;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Ask the kernel to stamp datagrams; false where it cannot.
pub(crate) fn enable_timestamps(socket: &UdpSocket) -> bool {
    setsockopt(socket, sockopt::ReceiveTimestampns, &true).is_ok()
}

/// The next datagram: its length in `buf`, its sender, and when it reached
/// the host (when it was read, if there is no kernel stamp).
pub(crate) async fn receive(
    socket: &UdpSocket,
    buf: &mut [u8],
    stamped: bool,
) -> io::Result<(usize, SocketAddr, Instant)> {
    if !stamped {
        let (len, remote) = socket.recv_from(buf).await?;
        return Ok((len, remote, Instant::now()));
    }
    let mut space = nix::cmsg_space!(TimeSpec);
    loop {
        socket.readable().await?;
        let r = socket.try_io(Interest::READABLE, || {
            let mut iov = [IoSliceMut::new(buf)];
            let msg = recvmsg::<SockaddrStorage>(
                socket.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_DONTWAIT,
            )
            .map_err(io::Error::from)?;
            let stamp = msg.cmsgs().ok().and_then(|mut c| {
                c.find_map(|m| match m {
                    ControlMessageOwned::ScmTimestampns(ts) => Some(ts),
                    _ => None,
                })
            });
            let remote = msg
                .address
                .as_ref()
                .and_then(socket_addr)
                .ok_or_else(|| io::Error::other("datagram without a sender address"))?;
            Ok((msg.bytes, remote, stamp))
        });
        match r {
            Ok((len, remote, stamp)) => return Ok((len, remote, arrival(stamp))),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    a.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

/// The kernel's wall-clock stamp as an `Instant`: now, less how long ago
/// the stamp was. A stamp from the future (the clock stepped) counts as now.
fn arrival(stamp: Option<TimeSpec>) -> Instant {
    let now = Instant::now();
    let Some(ts) = stamp else {
        return now;
    };
    let since_epoch = Duration::new(
        u64::try_from(ts.tv_sec()).unwrap_or(0),
        u32::try_from(ts.tv_nsec()).unwrap_or(0).min(999_999_999),
    );
    let Some(at) = UNIX_EPOCH.checked_add(since_epoch) else {
        return now;
    };
    let ago = SystemTime::now().duration_since(at).unwrap_or_default();
    now.checked_sub(ago).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_datagram_carries_its_sender_and_a_kernel_time() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert!(enable_timestamps(&rx));
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut buf = [0u8; 64];
        // The kernel may switch stamping on a moment after a socket first
        // asks (a deferred static key); until then a datagram is stamped
        // as it is read, which Orbit takes as "on time".
        tokio::time::sleep(Duration::from_millis(200)).await;
        tx.send_to(b"OPTIONS", rx.local_addr().unwrap())
            .await
            .unwrap();
        // The datagram waits in the buffer; its time is when it arrived,
        // not when it is read.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let before_read = Instant::now();
        let (len, from, at) = receive(&rx, &mut buf, true).await.unwrap();
        assert_eq!(&buf[..len], b"OPTIONS");
        assert_eq!(from, tx.local_addr().unwrap());
        let waited = before_read.duration_since(at);
        assert!(waited >= Duration::from_millis(40), "waited {waited:?}");
        assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    }

    #[test]
    fn a_missing_or_future_stamp_is_now() {
        let before = Instant::now();
        assert!(arrival(None) >= before);
        let future = TimeSpec::new(i64::MAX / 4, 0);
        assert!(arrival(Some(future)) >= before);
    }
}
