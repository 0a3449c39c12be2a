//! The RFC 4475 / RFC 5118 torture messages through Orbit's whole request
//! path (input checks, then the dispatcher with a real store and registrar).
//! The expected outcomes are in `orbit-sip/tests/torture/manifest.tsv`.

use std::path::PathBuf;
use std::sync::Arc;

use orbit_registrar::{AuthConfig, Authenticator, Registrar, RegistrarConfig};
use orbit_sip::frame::Framing;
use orbit_sip::sanity::{check, Inbound, Limits};
use orbit_sip::{Handler, Source, Transport};
use tokio_util::sync::CancellationToken;

use super::{precheck, Dispatcher, ALLOW};
use orbit_sip::Method;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../orbit-sip/tests/torture")
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Status(u16),
    /// Nothing sent back (dropped, or a response with no transaction).
    Silent,
    /// Passed its checks and went to the call layer (an INVITE).
    ToCalls,
}

fn acceptable(expect: &str, outcome: &Outcome) -> bool {
    match (expect, outcome) {
        ("handled", Outcome::Silent | Outcome::ToCalls) => true,
        ("handled", Outcome::Status(s)) => ![400, 505, 513].contains(s),
        ("drop", o) => *o == Outcome::Silent,
        (code, Outcome::Status(s)) => code.parse::<u16>().ok() == Some(*s),
        _ => false,
    }
}

#[tokio::test]
async fn every_torture_message_gets_the_answer_the_rfc_asks_for() {
    let dir = std::env::temp_dir().join(format!("orbit-torture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store =
        orbit_store::Store::open(&format!("sqlite://{}?mode=rwc", dir.join("t.db").display()))
            .await
            .unwrap();
    // The corpus addresses these domains; they exist so the registrar gets that far.
    for d in [
        "example.com",
        "example.net",
        "biloxi.example.com",
        "atlanta.example.com",
    ] {
        store.create_tenant(d, d).await.unwrap();
    }
    let auth = Arc::new(Authenticator::new(
        AuthConfig::default(),
        orbit_auth::NonceKey::new([1; 32]),
    ));
    let registrar = Registrar::start(
        store,
        auth,
        RegistrarConfig::default(),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let (calls, _inbox) = orbit_call::calls_channel();
    let dispatcher = Dispatcher { registrar, calls };
    let limits = Limits {
        max_message_size: 65_535,
        allow: ALLOW.into(),
    };
    let source = Source {
        transport: Transport::Udp,
        remote: "192.0.2.10:5060".parse().unwrap(),
        local: "192.0.2.1:5060".parse().unwrap(),
        received: std::time::Instant::now(),
    };

    let manifest = std::fs::read_to_string(corpus().join("manifest.tsv")).unwrap();
    let mut failures = Vec::new();
    let mut count = 0;
    for line in manifest.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, expect, note) = (cols[0], cols[3], cols.get(4).copied().unwrap_or(""));
        let alt = note
            .split("Alt:")
            .nth(1)
            .and_then(|a| {
                a.split(|c: char| !c.is_ascii_alphanumeric())
                    .find(|w| !w.is_empty())
            })
            .unwrap_or(expect);
        let bytes = std::fs::read(corpus().join(file)).unwrap();
        let outcome = match check(&bytes, Framing::Datagram, &limits) {
            Inbound::Drop(_) | Inbound::Response(_) => Outcome::Silent,
            Inbound::Reject(r) => Outcome::Status(r.status),
            Inbound::Request(req) => match (req.method, precheck(&req)) {
                (_, Some(resp)) => Outcome::Status(resp.status),
                (Method::Invite, None) => Outcome::ToCalls,
                _ => Outcome::Status(dispatcher.handle(&req, &source).response.status),
            },
        };
        count += 1;
        if !acceptable(expect, &outcome) && !acceptable(alt, &outcome) {
            failures.push(format!(
                "{file}: expected {expect} (alt {alt}), got {outcome:?}"
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(count >= 49, "corpus incomplete: {count} messages");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
