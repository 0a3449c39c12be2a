//! The I/O shell on real loopback sockets: UDP (IPv4 and IPv6), TCP framing
//! and its bounds, TLS, and response routing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use orbit_sip::transport::{
    bind_tcp, bind_udp, serve_stream, serve_udp, tls_acceptor, StreamLimits,
};
use orbit_sip::{Endpoint, EndpointConfig, Handler, Reply, Request, Response, Source};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

/// Answers 200 and says which transport the request came over.
struct Echo;

impl Handler for Echo {
    fn handle(&self, _req: &Request, source: &Source) -> Reply {
        Response::new(200, "OK")
            .header("X-Transport", source.transport.as_str())
            .into()
    }
}

fn options(branch: &str, via_host: &str, rport: bool) -> String {
    let rport = if rport { ";rport" } else { "" };
    format!(
        "OPTIONS sip:acme.test SIP/2.0\r\nVia: SIP/2.0/UDP {via_host};branch=z9hG4bK{branch}{rport}\r\nFrom: <sip:a@acme.test>;tag=1\r\nTo: <sip:acme.test>\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

fn endpoint(max_message_size: usize) -> Arc<Endpoint> {
    let mut config = EndpointConfig::default();
    config.limits.max_message_size = max_message_size;
    config.rate_limit_per_source = 0;
    Endpoint::new(Arc::new(Echo), config)
}

async fn udp_server(ep: &Arc<Endpoint>, addr: &str, cancel: &CancellationToken) -> SocketAddr {
    let sock = bind_udp(addr.parse().unwrap()).unwrap();
    let local = sock.local_addr().unwrap();
    tokio::spawn(serve_udp(ep.clone(), Arc::new(sock), cancel.clone()));
    local
}

async fn recv_text(sock: &UdpSocket) -> String {
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(Duration::from_secs(3), sock.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn udp_v4_and_v6_answer_to_the_source_with_rport() {
    let cancel = CancellationToken::new();
    let ep = endpoint(4096);
    for bind in ["127.0.0.1:0", "[::1]:0"] {
        let server = udp_server(&ep, bind, &cancel).await;
        let client = UdpSocket::bind(if server.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        })
        .await
        .unwrap();
        // The Via names another port; with rport the answer comes back to the source anyway.
        let branch = if server.is_ipv6() { "v6" } else { "v4" };
        client
            .send_to(options(branch, "192.0.2.99:5099", true).as_bytes(), server)
            .await
            .unwrap();
        let text = recv_text(&client).await;
        assert!(text.starts_with("SIP/2.0 200 OK\r\n"), "{text}");
        let port = client.local_addr().unwrap().port();
        assert!(text.contains(&format!(";rport={port};received=")), "{text}");
        // A retransmission gets the same answer without a second handler call.
        client
            .send_to(options(branch, "192.0.2.99:5099", true).as_bytes(), server)
            .await
            .unwrap();
        assert_eq!(recv_text(&client).await, text);
    }
    // Without rport the answer goes to the Via port on the source address.
    let server = udp_server(&ep, "127.0.0.1:0", &cancel).await;
    let listener = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let via = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    sender
        .send_to(options("n", &via, false).as_bytes(), server)
        .await
        .unwrap();
    assert!(recv_text(&listener).await.starts_with("SIP/2.0 200 OK"));
    // Oversize datagrams are answered 513.
    let big = options("b", "192.0.2.99", true).replace(
        "Max-Forwards: 70\r\n",
        &format!("X-Pad: {}\r\n", "x".repeat(5000)),
    );
    sender.send_to(big.as_bytes(), server).await.unwrap();
    assert!(recv_text(&sender).await.starts_with("SIP/2.0 513 "));
    cancel.cancel();
}

async fn read_until(
    stream: &mut (impl AsyncReadExt + Unpin),
    needle: &str,
    count: usize,
) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&out).into_owned();
        if text.matches(needle).count() >= count {
            return text;
        }
        let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            return text;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn tcp_frames_pipelined_and_split_messages_and_bounds_size() {
    let cancel = CancellationToken::new();
    let ep = endpoint(4096);
    let listener = bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_stream(
        ep.clone(),
        listener,
        None,
        StreamLimits::default(),
        cancel.clone(),
    ));

    let mut s = TcpStream::connect(addr).await.unwrap();
    // Two messages in one write, then one split across writes.
    let two = format!(
        "{}{}",
        options("p1", "192.0.2.1", false),
        options("p2", "192.0.2.1", false)
    );
    s.write_all(two.as_bytes()).await.unwrap();
    let third = options("p3", "192.0.2.1", false);
    s.write_all(&third.as_bytes()[..30]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.write_all(&third.as_bytes()[30..]).await.unwrap();
    let text = read_until(&mut s, "X-Transport: tcp", 3).await;
    assert_eq!(text.matches("SIP/2.0 200 OK").count(), 3, "{text}");

    // A header section that never ends within the limit: 513, then the connection closes.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let endless = format!("OPTIONS sip:acme.test SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bKbig\r\nFrom: <sip:a@acme.test>;tag=1\r\nTo: <sip:acme.test>\r\nCall-ID: big\r\nCSeq: 1 OPTIONS\r\nX-Pad: {}", "y".repeat(6000));
    s.write_all(endless.as_bytes()).await.unwrap();
    let mut rest = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_string(&mut rest))
        .await
        .unwrap();
    assert!(rest.starts_with("SIP/2.0 513 Message Too Large"), "{rest}");
    cancel.cancel();
}

#[tokio::test]
async fn tls_carries_sip() {
    let cancel = CancellationToken::new();
    let ep = endpoint(4096);
    let dir = std::env::temp_dir().join(format!("orbit-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    let acceptor = tls_acceptor(&dir.join("cert.pem"), &dir.join("key.pem")).unwrap();
    let listener = bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_stream(
        ep.clone(),
        listener,
        Some(acceptor),
        StreamLimits::default(),
        cancel.clone(),
    ));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(
        options("t", "192.0.2.1", false)
            .replace("SIP/2.0/UDP", "SIP/2.0/TLS")
            .as_bytes(),
    )
    .await
    .unwrap();
    let text = read_until(&mut tls, "X-Transport: tls", 1).await;
    assert!(text.starts_with("SIP/2.0 200 OK"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
    cancel.cancel();
}

fn request_to(target: SocketAddr, transport: &str, branch: &str, local: SocketAddr) -> String {
    format!(
        "OPTIONS sip:{target} SIP/2.0\r\nVia: SIP/2.0/{transport} {local};branch={branch};rport\r\nFrom: <sip:orbit@acme.test>;tag=o1\r\nTo: <sip:{target}>\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

#[tokio::test]
async fn requests_go_out_and_their_responses_come_back() {
    use orbit_sip::{new_branch, ClientEvent, Method, Outgoing, Transport};
    let cancel = CancellationToken::new();
    let a = endpoint(4096);
    let b = endpoint(4096);
    let a_addr = udp_server(&a, "127.0.0.1:0", &cancel).await;
    let b_addr = udp_server(&b, "127.0.0.1:0", &cancel).await;
    tokio::spawn(a.clone().run_timers(cancel.clone()));

    // UDP: A asks B, B's handler answers, the 200 reaches A's transaction.
    let branch = new_branch();
    let out = Outgoing {
        method: Method::Options,
        branch: branch.clone(),
        bytes: request_to(b_addr, "UDP", &branch, a_addr).into(),
        transport: Transport::Udp,
        target: b_addr,
    };
    let mut rx = a.send_request(out).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(3), rx.recv())
        .await
        .unwrap()
    {
        Some(ClientEvent::Response(m)) => assert_eq!(m.header("x-transport"), Some("udp")),
        other => panic!("{other:?}"),
    }

    // TCP: only over a connection the peer opened; without one, a clear error.
    let listener = bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
    let a_tcp = listener.local_addr().unwrap();
    tokio::spawn(serve_stream(
        a.clone(),
        listener,
        None,
        StreamLimits::default(),
        cancel.clone(),
    ));
    let mut phone = TcpStream::connect(a_tcp).await.unwrap();
    let phone_addr = phone.local_addr().unwrap();
    let branch = new_branch();
    let mk = |branch: &str| Outgoing {
        method: Method::Options,
        branch: branch.to_string(),
        bytes: request_to(phone_addr, "TCP", branch, a_tcp).into(),
        transport: Transport::Tcp,
        target: phone_addr,
    };
    assert!(a.send_request(mk(&branch)).await.is_err());
    phone
        .write_all(
            options("ph", "192.0.2.1", false)
                .replace("/UDP", "/TCP")
                .as_bytes(),
        )
        .await
        .unwrap();
    read_until(&mut phone, "SIP/2.0 200", 1).await;
    let mut rx = a.send_request(mk(&branch)).await.unwrap();
    let seen = read_until(&mut phone, "OPTIONS sip:", 1).await;
    assert!(seen.contains(&branch), "{seen}");
    let reply = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP {a_tcp};branch={branch}\r\nFrom: <sip:orbit@acme.test>;tag=o1\r\nTo: <sip:{phone_addr}>;tag=p\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    phone.write_all(reply.as_bytes()).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(3), rx.recv())
        .await
        .unwrap()
    {
        Some(ClientEvent::Response(m)) => assert_eq!(
            m.header("to"),
            Some(format!("<sip:{phone_addr}>;tag=p").as_str())
        ),
        other => panic!("{other:?}"),
    }
    cancel.cancel();
}
