//! Page load times of the portal with 1,000 extensions (all registered),
//! 100 parked calls, 100 calls in progress, 20 ring groups, 10 call park
//! groups and 1,000 park events and call records, over real HTTP on
//! localhost (one connection per request, as a browser's first load).
//!
//! Run with `bench/portal/run.sh` (release build). With `--serve` it only
//! sets up and serves (for `bench/portal/browser.mjs`, which loads the
//! pages in headless Chromium).

use std::sync::Arc;
use std::time::Instant;

use orbit_store::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Regs(Vec<Binding>);
impl LiveBindings for Regs {
    fn tenant_bindings(&self, t: &str) -> Vec<Binding> {
        self.0
            .iter()
            .filter(|b| b.tenant_id == t)
            .cloned()
            .collect()
    }
}
struct Calls(Vec<ActiveCall>);
impl ActiveCalls for Calls {
    fn active_calls(&self, t: &str) -> Vec<ActiveCall> {
        self.0
            .iter()
            .filter(|c| c.tenant_id == t)
            .cloned()
            .collect()
    }
}
struct Parked(
    Vec<ParkedCall>,
    tokio::sync::broadcast::Sender<ParkEventRecord>,
);
impl CallControl for Parked {
    fn parked_calls(&self, t: &str) -> Vec<ParkedCall> {
        self.0
            .iter()
            .filter(|p| p.tenant_id == t)
            .cloned()
            .collect()
    }
    fn command(&self, _c: CallCommand) -> tokio::sync::oneshot::Receiver<Result<(), CommandError>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = tx.send(Ok(()));
        rx
    }
    fn park_events(&self) -> tokio::sync::broadcast::Receiver<ParkEventRecord> {
        self.1.subscribe()
    }
}
struct Music;
impl MusicOnHold for Music {
    fn info(&self, _t: &str) -> MusicInfo {
        MusicInfo {
            custom: false,
            seconds: 30.0,
        }
    }
    fn replace(&self, _t: &str, _w: &[u8]) -> Result<MusicInfo, String> {
        Err("bench".into())
    }
    fn reset(&self, _t: &str) -> Result<(), String> {
        Ok(())
    }
}

async fn get(addr: std::net::SocketAddr, path: &str, cookie: &str) -> (u16, usize) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nCookie: orbit_session={cookie}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let status = std::str::from_utf8(&buf[9..12]).unwrap().parse().unwrap();
    (status, buf.len())
}

#[tokio::main]
async fn main() {
    let dir = std::env::temp_dir().join(format!("orbit-portal-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&format!("sqlite://{}?mode=rwc", dir.join("b.db").display()))
        .await
        .unwrap();
    let t = store.create_tenant("Bench", "bench.example").await.unwrap();
    let now = now_ms();
    let t0 = Instant::now();
    for i in 0..1000 {
        store
            .create_extension(
                &t.id,
                &format!("{}", 1000 + i),
                &format!("User {i}"),
                "bench-password",
            )
            .await
            .unwrap();
    }
    for g in 0..20 {
        let members = (0..10).map(|m| format!("{}", 1000 + g * 10 + m)).collect();
        store
            .create_ring_group(
                &t.id,
                RingGroupSpec {
                    number: format!("{}", 5000 + g),
                    name: format!("Group {g}"),
                    members,
                    strategy: RingStrategy::RingAll,
                    ring_time_s: 20,
                    no_answer_destination: None,
                },
            )
            .await
            .unwrap();
    }
    let mut park_group = String::new();
    for g in 0..10 {
        let members = (0..50).map(|m| format!("{}", 1000 + g * 50 + m)).collect();
        let pg = store
            .create_park_group(
                &t.id,
                ParkGroupSpec {
                    name: format!("Park group {g}"),
                    members,
                    recall: None,
                },
            )
            .await
            .unwrap();
        park_group = pg.id;
    }
    let events: Vec<ParkEventRecord> = (0..1000)
        .map(|i| ParkEventRecord {
            id: format!("ev{i}"),
            tenant_id: t.id.clone(),
            at_ms: now - i * 1000,
            kind: "parked".into(),
            park_id: Some(format!("{i}")),
            extension: format!("{}", 1000 + i % 1000),
            call_id: format!("c{i}"),
            parker: "1001".into(),
            parked_number: "1999".into(),
            parked_name: "Caller".into(),
            detail: String::new(),
        })
        .collect();
    store.append_park_events(&events).await.unwrap();
    let records: Vec<CallRecord> = (0..1000)
        .map(|i| CallRecord {
            id: format!("cr{i}"),
            tenant_id: t.id.clone(),
            caller: "1001".into(),
            caller_name: "User".into(),
            callee: format!("{}", 1000 + i % 1000),
            answered_by: Some("1002".into()),
            started_at: now - i * 1000,
            answered_at: Some(now - i * 1000 + 500),
            ended_at: now - i * 1000 + 30_000,
            end_reason: "caller_hangup".into(),
            transfers: vec![],
        })
        .collect();
    store.append_call_records(&records).await.unwrap();
    let hash = orbit_portal::hash_password("bench-password");
    let user = store
        .create_portal_user("bench", &hash, Some(&t.id))
        .await
        .unwrap();
    store
        .create_portal_session(&user.id, "benchcookie", "benchcsrf", now + 3_600_000)
        .await
        .unwrap();
    println!("setup: {:.1} s", t0.elapsed().as_secs_f64());

    let regs = (0..1000)
        .map(|i| Binding {
            tenant_id: t.id.clone(),
            extension: format!("{}", 1000 + i),
            contact: format!("sip:{}@192.0.2.{}:5060", 1000 + i, i % 250),
            contact_params: String::new(),
            expires_at: now + 3_600_000,
            call_id: format!("r{i}"),
            cseq: 1,
            source: format!("192.0.2.{}:5060", i % 250),
            transport: "udp".into(),
            user_agent: "snom D785/10.1.204.0".into(),
            registered_at: now,
        })
        .collect();
    let calls = (0..100)
        .map(|i| ActiveCall {
            id: format!("call{i}"),
            tenant_id: t.id.clone(),
            caller: format!("{}", 1100 + i),
            callee: format!("{}", 1200 + i),
            answered_by: Some(format!("{}", 1200 + i)),
            state: "parked".into(),
            started_at: now - 60_000,
            answered_at: Some(now - 55_000),
        })
        .collect();
    let parked = (0..100)
        .map(|i| ParkedCall {
            id: format!("{i}"),
            call_id: format!("call{i}"),
            tenant_id: t.id.clone(),
            parked_on: format!("{}", 1000 + i),
            parked_by: format!("{}", 1000 + i),
            caller_number: format!("{}", 1100 + i),
            caller_name: format!("Caller {i}"),
            parked_at: now - 10_000,
            recall_at: Some(now + 35_000),
            state: "parked".into(),
            recalling: None,
            retrieve_number: format!("*88*{i}"),
        })
        .collect();
    let state = orbit_http::ApiState {
        store,
        admin_token_hash: orbit_http::admin_token_hash("bench-admin-token"),
        metrics: Arc::new(String::new),
        bindings: Arc::new(Regs(regs)),
        calls: Arc::new(Calls(calls)),
        music: Arc::new(Music),
        control: Arc::new(Parked(parked, tokio::sync::broadcast::channel(16).0)),
    };
    let app = orbit_http::router(state.clone()).merge(orbit_portal::router(state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let tid = &t.id;
    if std::env::args().any(|a| a == "--serve") {
        // For bench/portal/browser.mjs: say where, then serve until killed.
        println!("READY http://{addr} {tid} {park_group} benchcookie");
        std::future::pending::<()>().await;
    }
    let pages = [
        format!("/portal/t/{tid}/extensions"),
        format!("/portal/t/{tid}/ring-groups"),
        format!("/portal/t/{tid}/call-park"),
        format!("/portal/t/{tid}/call-park/groups/{park_group}"),
        format!("/portal/t/{tid}/live"),
        format!("/portal/t/{tid}/log"),
        format!("/portal/t/{tid}/log?extension=1001"),
        format!("/portal/t/{tid}/log.csv"),
        format!("/portal/t/{tid}/extensions/1500"),
    ];
    const RUNS: usize = 30;
    println!(
        "{:<60} {:>8} {:>8} {:>8} {:>9}",
        "page", "median", "p95", "max", "bytes"
    );
    let mut worst: f64 = 0.0;
    for p in &pages {
        let (status, _) = get(addr, p, "benchcookie").await; // warm-up
        assert_eq!(status, 200, "{p}");
        let mut ms = Vec::with_capacity(RUNS);
        let mut bytes = 0;
        for _ in 0..RUNS {
            let t = Instant::now();
            let (status, n) = get(addr, p, "benchcookie").await;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(status, 200, "{p}");
            bytes = n;
        }
        ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let (med, p95, max) = (ms[RUNS / 2], ms[RUNS * 95 / 100], ms[RUNS - 1]);
        worst = worst.max(max);
        let shown = p
            .replace(tid.as_str(), "{tenant}")
            .replace(park_group.as_str(), "{group}");
        println!("{shown:<60} {med:>6.1}ms {p95:>6.1}ms {max:>6.1}ms {bytes:>9}");
    }
    println!("slowest single load: {worst:.1} ms (bar: 200 ms)");
    let _ = std::fs::remove_dir_all(&dir);
    if worst >= 200.0 {
        std::process::exit(1);
    }
}
