use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::{admin_token_hash, api_paths, router, ApiState};
use orbit_store::now_ms;

struct NoBindings;

impl orbit_store::LiveBindings for NoBindings {
    fn tenant_bindings(&self, _tenant_id: &str) -> Vec<orbit_store::Binding> {
        Vec::new()
    }
}

/// Calls in progress as a test sets them. It answers every tenant's calls
/// whatever it is asked for: the API must filter.
#[derive(Default)]
struct FakeCalls(std::sync::Mutex<Vec<orbit_store::ActiveCall>>);

impl orbit_store::ActiveCalls for FakeCalls {
    fn active_calls(&self, _tenant_id: &str) -> Vec<orbit_store::ActiveCall> {
        self.0.lock().unwrap().clone()
    }
}

/// Music on hold that takes anything starting with "RIFF".
#[derive(Default)]
struct FakeMusic(std::sync::Mutex<std::collections::HashMap<String, usize>>);

impl orbit_store::MusicOnHold for FakeMusic {
    fn info(&self, tenant_id: &str) -> orbit_store::MusicInfo {
        let len = self.0.lock().unwrap().get(tenant_id).copied();
        orbit_store::MusicInfo {
            custom: len.is_some(),
            seconds: len.unwrap_or(0) as f64 / 16000.0,
        }
    }
    fn replace(&self, tenant_id: &str, wav: &[u8]) -> Result<orbit_store::MusicInfo, String> {
        if !wav.starts_with(b"RIFF") {
            return Err("music on hold upload must be an 8000 Hz mono 16-bit PCM WAV file".into());
        }
        self.0.lock().unwrap().insert(tenant_id.into(), wav.len());
        Ok(self.info(tenant_id))
    }
    fn reset(&self, tenant_id: &str) -> Result<(), String> {
        self.0.lock().unwrap().remove(tenant_id);
        Ok(())
    }
}

async fn state() -> ApiState {
    state_with_calls(Arc::new(orbit_store::NoCalls)).await
}

async fn state_with_calls(calls: Arc<dyn orbit_store::ActiveCalls>) -> ApiState {
    let dir = std::env::temp_dir().join(format!("orbit-http-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let store =
        orbit_store::Store::open(&format!("sqlite://{}?mode=rwc", dir.join("t.db").display()))
            .await
            .unwrap();
    ApiState {
        store,
        admin_token_hash: admin_token_hash("admin-secret"),
        metrics: Arc::new(|| "# metrics\n".to_string()),
        bindings: Arc::new(NoBindings),
        calls,
        music: Arc::new(FakeMusic::default()),
        control: Arc::new(orbit_store::NoCallControl),
    }
}

async fn call(
    s: &ApiState,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string()))
            .unwrap(),
        None => req.body(Body::empty()).unwrap(),
    };
    let resp = router(s.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

const ADMIN: Option<&str> = Some("admin-secret");

#[tokio::test]
async fn crud_with_validation_and_no_password_echo() {
    let s = state().await;
    let (st, t) = call(
        &s,
        "POST",
        "/api/v1/tenants",
        ADMIN,
        Some(json!({"name": "Acme", "domain": "Acme.test"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(t["domain"], "acme.test");
    let (st, e) = call(
        &s,
        "POST",
        "/api/v1/tenants",
        ADMIN,
        Some(json!({"name": "X", "domain": "acme.test"})),
    )
    .await;
    assert_eq!(
        (st, e["error"]["field"].clone()),
        (StatusCode::CONFLICT, json!("domain"))
    );
    let (st, e) = call(
        &s,
        "POST",
        "/api/v1/tenants",
        ADMIN,
        Some(json!({"name": "X", "domain": "bad_domain"})),
    )
    .await;
    assert_eq!(
        (st, e["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("domain"))
    );
    let (st, e) = call(
        &s,
        "POST",
        "/api/v1/tenants",
        ADMIN,
        Some(json!({"name": "X"})),
    )
    .await;
    assert_eq!(
        (st, e["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("domain"))
    );

    let ext = json!({"number": "101", "password": "pass-101-long", "display_name": "Alice"});
    let (st, e) = call(
        &s,
        "POST",
        "/api/v1/tenants/acme.test/extensions",
        ADMIN,
        Some(ext.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    assert!(!e.to_string().contains("pass-101-long"));
    let (st, _) = call(
        &s,
        "POST",
        "/api/v1/tenants/acme.test/extensions",
        ADMIN,
        Some(ext),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, e) = call(
        &s,
        "POST",
        "/api/v1/tenants/acme.test/extensions",
        ADMIN,
        Some(json!({"number": 5, "password": "x"})),
    )
    .await;
    assert_eq!(
        (st, e["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("number"))
    );
    let (st, e) = call(
        &s,
        "POST",
        "/api/v1/tenants/acme.test/extensions",
        ADMIN,
        Some(json!({"number": "5", "password": "x", "admin": true})),
    )
    .await;
    assert_eq!(
        (st, e["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("admin"))
    );

    let (st, e) = call(
        &s,
        "PATCH",
        "/api/v1/tenants/acme.test/extensions/101",
        ADMIN,
        Some(json!({"display_name": "Alice B"})),
    )
    .await;
    assert_eq!(
        (st, e["display_name"].clone()),
        (StatusCode::OK, json!("Alice B"))
    );
    let (st, list) = call(
        &s,
        "GET",
        &format!("/api/v1/tenants/{}/extensions", t["id"].as_str().unwrap()),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(
        (st, list["items"].as_array().unwrap().len()),
        (StatusCode::OK, 1)
    );
    let (st, _) = call(
        &s,
        "DELETE",
        "/api/v1/tenants/acme.test/extensions/101",
        ADMIN,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = call(
        &s,
        "GET",
        "/api/v1/tenants/acme.test/extensions/101",
        ADMIN,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tenant_tokens_are_confined() {
    let s = state().await;
    for (name, domain) in [("A", "a.test"), ("B", "b.test")] {
        call(
            &s,
            "POST",
            "/api/v1/tenants",
            ADMIN,
            Some(json!({"name": name, "domain": domain})),
        )
        .await;
    }
    call(
        &s,
        "POST",
        "/api/v1/tenants/b.test/extensions",
        ADMIN,
        Some(json!({"number": "200", "password": "pass-200-long"})),
    )
    .await;
    let (st, tok) = call(
        &s,
        "POST",
        "/api/v1/tenants/a.test/tokens",
        ADMIN,
        Some(json!({"name": "ci"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let a = tok["token"].as_str().unwrap().to_string();
    let a = Some(a.as_str());
    let (_, list) = call(&s, "GET", "/api/v1/tenants", a, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    for (m, p) in [
        ("GET", "/api/v1/tenants/b.test"),
        ("GET", "/api/v1/tenants/b.test/extensions"),
        ("GET", "/api/v1/tenants/b.test/extensions/200"),
        ("DELETE", "/api/v1/tenants/b.test/extensions/200"),
        ("GET", "/api/v1/tenants/b.test/registrations"),
        ("GET", "/api/v1/tenants/b.test/calls"),
        ("GET", "/api/v1/tenants/b.test/call-records"),
    ] {
        let (st, _) = call(&s, m, p, a, None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{m} {p}");
    }
    let (st, _) = call(
        &s,
        "PATCH",
        "/api/v1/tenants/b.test/extensions/200",
        a,
        Some(json!({"display_name": "x"})),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = call(
        &s,
        "POST",
        "/api/v1/tenants",
        a,
        Some(json!({"name": "C", "domain": "c.test"})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = call(&s, "GET", "/api/v1/tenants/a.test", a, None).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = call(&s, "GET", "/api/v1/tenants", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = call(&s, "GET", "/api/v1/tenants", Some("wrong"), None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let s = state().await;
    let (st, doc) = call(&s, "GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(st, StatusCode::OK);
    for p in api_paths() {
        assert!(
            doc["paths"].get(p).is_some(),
            "{p} missing from openapi.json"
        );
    }
    let (st, _) = call(&s, "GET", "/healthz", None, None).await;
    assert_eq!(st, StatusCode::OK);
}

async fn setup_ring_tenant(s: &ApiState, domain: &str, extensions: &[&str]) {
    let (st, _) = call(
        s,
        "POST",
        "/api/v1/tenants",
        ADMIN,
        Some(json!({"name": domain, "domain": domain})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    for n in extensions {
        let (st, _) = call(
            s,
            "POST",
            &format!("/api/v1/tenants/{domain}/extensions"),
            ADMIN,
            Some(json!({"number": n, "password": "pass-long-enough"})),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED);
    }
}

fn error_field(st: StatusCode, e: &Value) -> (StatusCode, Value) {
    (st, e["error"]["field"].clone())
}

#[tokio::test]
async fn ring_group_crud() {
    let s = state().await;
    setup_ring_tenant(&s, "acme.test", &["101", "102", "103"]).await;
    let base = "/api/v1/tenants/acme.test/ring-groups";
    let (st, g) = call(
        &s,
        "POST",
        base,
        ADMIN,
        Some(json!({"number": "600", "name": "Sales", "members": ["103", "101"], "strategy": "sequential"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    assert_eq!(g["members"], json!(["103", "101"]));
    assert_eq!(g["ring_time_s"], 20);
    assert_eq!(g["no_answer_destination"], Value::Null);
    assert_eq!(g["strategy"], "sequential");
    let (st, g2) = call(
        &s,
        "POST",
        base,
        ADMIN,
        Some(
            json!({"number": "61", "name": "Support", "strategy": "ring_all",
                    "ring_time_s": 45, "no_answer_destination": "600"}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{g2}");
    assert_eq!(g2["members"], json!([]));
    let (st, list) = call(&s, "GET", base, ADMIN, None).await;
    assert_eq!(st, StatusCode::OK);
    let numbers: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["number"].clone())
        .collect();
    assert_eq!(numbers, [json!("61"), json!("600")]);
    let (st, got) = call(&s, "GET", &format!("{base}/600"), ADMIN, None).await;
    assert_eq!((st, &got), (StatusCode::OK, &g));
    let (st, p) = call(
        &s,
        "PATCH",
        &format!("{base}/600"),
        ADMIN,
        Some(json!({"members": ["102", "101", "103"], "ring_time_s": 10, "no_answer_destination": "61"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["members"], json!(["102", "101", "103"]));
    assert_eq!(
        (&p["name"], &p["strategy"], &p["ring_time_s"]),
        (&json!("Sales"), &json!("sequential"), &json!(10))
    );
    assert_eq!(p["no_answer_destination"], "61");
    let (st, p) = call(
        &s,
        "PATCH",
        &format!("{base}/600"),
        ADMIN,
        Some(json!({"no_answer_destination": null, "name": "Sales EU", "strategy": "ring_all"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["no_answer_destination"], Value::Null);
    assert_eq!(p["members"], json!(["102", "101", "103"]));
    assert_eq!(
        (&p["name"], &p["strategy"]),
        (&json!("Sales EU"), &json!("ring_all"))
    );
    let (st, _) = call(&s, "DELETE", &format!("{base}/600"), ADMIN, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, e) = call(&s, "GET", &format!("{base}/600"), ADMIN, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{e}");
    let (st, _) = call(&s, "DELETE", &format!("{base}/600"), ADMIN, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // The destination that named the deleted group is cleared.
    let (_, g2) = call(&s, "GET", &format!("{base}/61"), ADMIN, None).await;
    assert_eq!(g2["no_answer_destination"], Value::Null);
    // Deleting the tenant takes its ring groups along.
    let (st, _) = call(&s, "DELETE", "/api/v1/tenants/acme.test", ADMIN, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    setup_ring_tenant(&s, "acme.test", &[]).await;
    let (_, list) = call(&s, "GET", base, ADMIN, None).await;
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn ring_group_validation_names_the_field() {
    let s = state().await;
    setup_ring_tenant(&s, "acme.test", &["101", "102"]).await;
    setup_ring_tenant(&s, "other.test", &["200"]).await;
    let base = "/api/v1/tenants/acme.test/ring-groups";
    let ok = json!({"number": "600", "name": "Sales", "members": ["101"], "strategy": "ring_all"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    for (body, field) in [
        (without("number"), "number"),
        (with("number", json!("")), "number"),
        (with("number", json!("60a")), "number"),
        (with("number", json!("1".repeat(16))), "number"),
        (with("number", json!(600)), "number"),
        (without("name"), "name"),
        (with("name", json!("")), "name"),
        (with("name", json!("x".repeat(101))), "name"),
        (without("strategy"), "strategy"),
        (with("strategy", json!("random")), "strategy"),
        (with("members", json!("101")), "members"),
        (with("members", json!([101])), "members"),
        (with("members", json!(["101", "101"])), "members"),
        (with("members", json!(["abc"])), "members"),
        (
            with(
                "members",
                json!((0..51).map(|i| format!("5{i}")).collect::<Vec<_>>()),
            ),
            "members",
        ),
        (with("ring_time_s", json!(4)), "ring_time_s"),
        (with("ring_time_s", json!(301)), "ring_time_s"),
        (with("ring_time_s", json!("20")), "ring_time_s"),
        (with("ring_time_s", json!(20.5)), "ring_time_s"),
        (
            with("no_answer_destination", json!("600")),
            "no_answer_destination",
        ),
        (
            with("no_answer_destination", json!("999")),
            "no_answer_destination",
        ),
        (
            with("no_answer_destination", json!("x")),
            "no_answer_destination",
        ),
        (
            with("no_answer_destination", json!(101)),
            "no_answer_destination",
        ),
        (with("priority", json!(1)), "priority"),
    ] {
        let (st, e) = call(&s, "POST", base, ADMIN, Some(body.clone())).await;
        assert_eq!(error_field(st, &e), (unprocessable, json!(field)), "{body}");
    }
    // Unknown and foreign members are named in the message.
    for bad in ["109", "200"] {
        let (st, e) = call(
            &s,
            "POST",
            base,
            ADMIN,
            Some(with("members", json!(["101", bad]))),
        )
        .await;
        assert_eq!(error_field(st, &e), (unprocessable, json!("members")));
        assert!(e["error"]["message"].as_str().unwrap().contains(bad), "{e}");
    }
    // Boundaries are accepted.
    let (st, g) = call(
        &s,
        "POST",
        base,
        ADMIN,
        Some(with("ring_time_s", json!(300))),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    let item = format!("{base}/600");
    for (body, field) in [
        (json!({"number": "601"}), "number"),
        (json!({"name": ""}), "name"),
        (json!({"members": ["102", "103"]}), "members"),
        (json!({"strategy": "all"}), "strategy"),
        (json!({"ring_time_s": 0}), "ring_time_s"),
        (
            json!({"no_answer_destination": "600"}),
            "no_answer_destination",
        ),
        (json!({"no_answer_destination": 5}), "no_answer_destination"),
    ] {
        let (st, e) = call(&s, "PATCH", &item, ADMIN, Some(body.clone())).await;
        assert_eq!(error_field(st, &e), (unprocessable, json!(field)), "{body}");
    }
    let (st, _) = call(&s, "POST", base, ADMIN, Some(json!([1]))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = call(
        &s,
        "PATCH",
        &format!("{base}/601"),
        ADMIN,
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Refusals changed nothing.
    let (_, g) = call(&s, "GET", &item, ADMIN, None).await;
    assert_eq!(
        (&g["members"], &g["ring_time_s"]),
        (&json!(["101"]), &json!(300))
    );
}

#[tokio::test]
async fn ring_group_numbers_clash_with_extensions_both_ways() {
    let s = state().await;
    setup_ring_tenant(&s, "acme.test", &["101"]).await;
    let (st, e) = call(
        &s,
        "POST",
        "/api/v1/tenants/acme.test/ring-groups",
        ADMIN,
        Some(json!({"number": "101", "name": "G", "strategy": "ring_all"})),
    )
    .await;
    assert_eq!(error_field(st, &e), (StatusCode::CONFLICT, json!("number")));
    let (st, _) = call(
        &s,
        "POST",
        "/api/v1/tenants/acme.test/ring-groups",
        ADMIN,
        Some(json!({"number": "600", "name": "G", "strategy": "ring_all"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, e) = call(
        &s,
        "POST",
        "/api/v1/tenants/acme.test/ring-groups",
        ADMIN,
        Some(json!({"number": "600", "name": "G2", "strategy": "ring_all"})),
    )
    .await;
    assert_eq!(error_field(st, &e), (StatusCode::CONFLICT, json!("number")));
    let (st, e) = call(
        &s,
        "POST",
        "/api/v1/tenants/acme.test/extensions",
        ADMIN,
        Some(json!({"number": "600", "password": "pass-long-enough"})),
    )
    .await;
    assert_eq!(error_field(st, &e), (StatusCode::CONFLICT, json!("number")));
}

#[tokio::test]
async fn deleting_an_extension_removes_it_from_ring_groups() {
    let s = state().await;
    setup_ring_tenant(&s, "acme.test", &["101", "102", "103"]).await;
    let base = "/api/v1/tenants/acme.test/ring-groups";
    for (n, members, dest) in [
        ("600", json!(["101", "102", "103"]), json!("102")),
        ("601", json!(["102"]), json!("600")),
    ] {
        let (st, _) = call(
            &s,
            "POST",
            base,
            ADMIN,
            Some(
                json!({"number": n, "name": "G", "members": members, "strategy": "sequential",
                        "no_answer_destination": dest}),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED);
    }
    let (st, _) = call(
        &s,
        "DELETE",
        "/api/v1/tenants/acme.test/extensions/102",
        ADMIN,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, g) = call(&s, "GET", &format!("{base}/600"), ADMIN, None).await;
    assert_eq!(g["members"], json!(["101", "103"]));
    assert_eq!(g["no_answer_destination"], Value::Null);
    let (_, g) = call(&s, "GET", &format!("{base}/601"), ADMIN, None).await;
    assert_eq!(g["members"], json!([]));
    assert_eq!(g["no_answer_destination"], "600");
}

#[tokio::test]
async fn ring_groups_are_confined_to_their_tenant() {
    let s = state().await;
    setup_ring_tenant(&s, "a.test", &["100"]).await;
    setup_ring_tenant(&s, "b.test", &["200"]).await;
    let (st, _) = call(
        &s,
        "POST",
        "/api/v1/tenants/b.test/ring-groups",
        ADMIN,
        Some(json!({"number": "700", "name": "B", "members": ["200"], "strategy": "ring_all"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let (_, tok) = call(
        &s,
        "POST",
        "/api/v1/tenants/a.test/tokens",
        ADMIN,
        Some(json!({"name": "ci"})),
    )
    .await;
    let a = tok["token"].as_str().unwrap().to_string();
    let a = Some(a.as_str());
    for (m, p, body) in [
        ("GET", "/api/v1/tenants/b.test/ring-groups", None),
        ("GET", "/api/v1/tenants/b.test/ring-groups/700", None),
        ("DELETE", "/api/v1/tenants/b.test/ring-groups/700", None),
        (
            "PATCH",
            "/api/v1/tenants/b.test/ring-groups/700",
            Some(json!({"name": "mine"})),
        ),
        (
            "POST",
            "/api/v1/tenants/b.test/ring-groups",
            Some(json!({"number": "701", "name": "x", "strategy": "ring_all"})),
        ),
    ] {
        let (st, _) = call(&s, m, p, a, body).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{m} {p}");
    }
    // Its own tenant works, and B's group is untouched.
    let (st, _) = call(
        &s,
        "POST",
        "/api/v1/tenants/a.test/ring-groups",
        a,
        Some(json!({"number": "700", "name": "A", "members": ["100"], "strategy": "ring_all"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let (_, list) = call(&s, "GET", "/api/v1/tenants/a.test/ring-groups", a, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, g) = call(
        &s,
        "GET",
        "/api/v1/tenants/b.test/ring-groups/700",
        ADMIN,
        None,
    )
    .await;
    assert_eq!((&g["name"], &g["members"]), (&json!("B"), &json!(["200"])));
    let (st, _) = call(&s, "GET", "/api/v1/tenants/a.test/ring-groups", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

/// A tenant token for `domain`.
async fn tenant_token(s: &ApiState, domain: &str) -> String {
    let (st, tok) = call(
        s,
        "POST",
        &format!("/api/v1/tenants/{domain}/tokens"),
        ADMIN,
        Some(json!({"name": "ci"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    tok["token"].as_str().unwrap().to_string()
}

fn tenant_id(s: &ApiState, domain: &str) -> String {
    s.store
        .directory()
        .tenant_by_domain(domain)
        .unwrap()
        .id
        .clone()
}

fn active(tenant_id: &str, id: &str, started_at: i64) -> orbit_store::ActiveCall {
    orbit_store::ActiveCall {
        id: id.into(),
        tenant_id: tenant_id.into(),
        caller: "100".into(),
        callee: "101".into(),
        answered_by: None,
        state: "ringing".into(),
        started_at,
        answered_at: None,
    }
}

#[tokio::test]
async fn active_calls_are_listed_oldest_first_for_their_tenant_only() {
    let calls = Arc::new(FakeCalls::default());
    let s = state_with_calls(calls.clone()).await;
    setup_ring_tenant(&s, "a.test", &["100", "101"]).await;
    setup_ring_tenant(&s, "b.test", &["200"]).await;
    let (a_id, b_id) = (tenant_id(&s, "a.test"), tenant_id(&s, "b.test"));
    // None yet.
    let (st, list) = call(&s, "GET", "/api/v1/tenants/a.test/calls", ADMIN, None).await;
    assert_eq!((st, list), (StatusCode::OK, json!({"calls": []})));
    *calls.0.lock().unwrap() = vec![
        orbit_store::ActiveCall {
            answered_by: Some("101".into()),
            state: "answered".into(),
            answered_at: Some(1_700_000_003_000),
            ..active(&a_id, "a2", 1_700_000_002_000)
        },
        active(&b_id, "b1", 1_700_000_000_000),
        active(&a_id, "a1", 1_700_000_001_000),
    ];
    let want = json!({"calls": [
        {"id": "a1", "tenant_id": a_id, "caller": "100", "callee": "101", "answered_by": null,
         "state": "ringing", "started_at": 1_700_000_001_000i64, "answered_at": null},
        {"id": "a2", "tenant_id": a_id, "caller": "100", "callee": "101", "answered_by": "101",
         "state": "answered", "started_at": 1_700_000_002_000i64, "answered_at": 1_700_000_003_000i64},
    ]});
    let (st, list) = call(&s, "GET", "/api/v1/tenants/a.test/calls", ADMIN, None).await;
    assert_eq!((st, &list), (StatusCode::OK, &want));
    // By id too, and with the tenant's own token.
    let a = tenant_token(&s, "a.test").await;
    let a = Some(a.as_str());
    let (st, list) = call(&s, "GET", &format!("/api/v1/tenants/{a_id}/calls"), a, None).await;
    assert_eq!((st, &list), (StatusCode::OK, &want));
    let (st, list) = call(&s, "GET", "/api/v1/tenants/b.test/calls", ADMIN, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list["calls"][0]["id"], "b1");
    assert_eq!(list["calls"].as_array().unwrap().len(), 1);
    // Another tenant's calls answer like a tenant that does not exist.
    for (token, path, want) in [
        (a, "/api/v1/tenants/b.test/calls", StatusCode::NOT_FOUND),
        (ADMIN, "/api/v1/tenants/c.test/calls", StatusCode::NOT_FOUND),
        (
            None,
            "/api/v1/tenants/a.test/calls",
            StatusCode::UNAUTHORIZED,
        ),
        (
            Some("wrong"),
            "/api/v1/tenants/a.test/calls",
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let (st, _) = call(&s, "GET", path, token, None).await;
        assert_eq!(st, want, "{path}");
    }
    let (st, _) = call(
        &s,
        "POST",
        "/api/v1/tenants/a.test/calls",
        ADMIN,
        Some(json!({})),
    )
    .await;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
}

fn record(tenant_id: &str, id: &str, started_at: i64) -> orbit_store::CallRecord {
    orbit_store::CallRecord {
        id: id.into(),
        tenant_id: tenant_id.into(),
        caller: "100".into(),
        caller_name: "Alice".into(),
        callee: "101".into(),
        answered_by: Some("101".into()),
        started_at,
        answered_at: Some(started_at + 3_000),
        ended_at: started_at + 60_000,
        end_reason: "caller_hangup".into(),
        transfers: Vec::new(),
    }
}

#[tokio::test]
async fn call_records_newest_first_with_filters() {
    let s = state().await;
    setup_ring_tenant(&s, "a.test", &["100", "101", "102"]).await;
    setup_ring_tenant(&s, "b.test", &["100"]).await;
    let (a_id, b_id) = (tenant_id(&s, "a.test"), tenant_id(&s, "b.test"));
    let base = "/api/v1/tenants/a.test/call-records";
    let (st, list) = call(&s, "GET", base, ADMIN, None).await;
    assert_eq!((st, list), (StatusCode::OK, json!({"call_records": []})));
    s.store
        .append_call_records(&[
            record(&a_id, "r1", 1_000),
            orbit_store::CallRecord {
                caller: "102".into(),
                caller_name: "Carol".into(),
                callee: "600".into(),
                answered_by: Some("100".into()),
                transfers: vec!["101".into()],
                end_reason: "transferred".into(),
                ..record(&a_id, "r3", 3_000)
            },
            orbit_store::CallRecord {
                caller: "101".into(),
                caller_name: "Bob".into(),
                callee: "102".into(),
                answered_by: None,
                answered_at: None,
                end_reason: "no_answer".into(),
                ..record(&a_id, "r2", 2_000)
            },
            record(&b_id, "other", 2_500),
        ])
        .await
        .unwrap();
    let ids = |v: &Value| -> Vec<String> {
        v["call_records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (st, list) = call(&s, "GET", base, ADMIN, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(ids(&list), ["r3", "r2", "r1"]);
    assert_eq!(
        list["call_records"][0],
        json!({"id": "r3", "tenant_id": a_id, "caller": "102", "caller_name": "Carol",
               "callee": "600", "answered_by": "100", "started_at": 3_000, "answered_at": 6_000,
               "ended_at": 63_000, "end_reason": "transferred", "transfers": ["101"]})
    );
    assert_eq!(list["call_records"][1]["answered_by"], Value::Null);
    assert_eq!(list["call_records"][1]["answered_at"], Value::Null);
    for (query, want) in [
        ("extension=100", &["r3", "r1"][..]),
        ("extension=101", &["r2", "r1"][..]),
        ("extension=102", &["r3", "r2"][..]),
        ("extension=600", &["r3"][..]),
        ("extension=999", &[][..]),
        ("since=2000", &["r3", "r2"][..]),
        ("until=2000", &["r1"][..]),
        ("since=1000&until=3000", &["r2", "r1"][..]),
        ("since=2000&until=2000", &[][..]),
        ("limit=2", &["r3", "r2"][..]),
        ("limit=1000", &["r3", "r2", "r1"][..]),
        ("extension=101&since=1500&limit=1", &["r2"][..]),
        ("since=0", &["r3", "r2", "r1"][..]),
        ("since=1970-01-01T00:00:02Z", &["r3", "r2"][..]),
        ("until=1970-01-01T00:00:02.001Z", &["r2", "r1"][..]),
    ] {
        let (st, list) = call(&s, "GET", &format!("{base}?{query}"), ADMIN, None).await;
        assert_eq!(st, StatusCode::OK, "{query}: {list}");
        assert_eq!(ids(&list), want, "{query}");
    }
    // The tenant's own token sees the same; B's records stay B's.
    let a = tenant_token(&s, "a.test").await;
    let (st, list) = call(&s, "GET", base, Some(&a), None).await;
    assert_eq!((st, ids(&list).len()), (StatusCode::OK, 3));
    let (st, list) = call(
        &s,
        "GET",
        "/api/v1/tenants/b.test/call-records",
        ADMIN,
        None,
    )
    .await;
    assert_eq!(
        (st, ids(&list)),
        (StatusCode::OK, vec!["other".to_string()])
    );
    // Another tenant's records answer 404 before the query is looked at.
    for path in [
        "/api/v1/tenants/b.test/call-records",
        "/api/v1/tenants/b.test/call-records?limit=x",
    ] {
        let (st, _) = call(&s, "GET", path, Some(&a), None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}");
    }
    let (st, _) = call(&s, "GET", base, None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // Deleting a tenant deletes its records.
    let (st, _) = call(&s, "DELETE", "/api/v1/tenants/b.test", ADMIN, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert!(matches!(
        s.store
            .call_records(&b_id, &orbit_store::CallRecordQuery::default())
            .await,
        Err(orbit_store::StoreError::NotFound("tenant"))
    ));
}

#[tokio::test]
async fn call_record_query_values_are_checked() {
    let s = state().await;
    setup_ring_tenant(&s, "a.test", &[]).await;
    let base = "/api/v1/tenants/a.test/call-records";
    let long = "1".repeat(65);
    for (query, field) in [
        ("limit=abc", "limit"),
        ("limit=1001", "limit"),
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=1.5", "limit"),
        ("limit=", "limit"),
        ("limit=99999999999", "limit"),
        ("since=abc", "since"),
        ("since=1.5", "since"),
        ("since=-1", "since"),
        ("since=", "since"),
        ("until=yesterday", "until"),
        ("until=99999999999999999999", "until"),
        ("since=2000&until=1000", "until"),
        ("extension=", "extension"),
        (&format!("extension={long}"), "extension"),
        ("extension=10%0A1", "extension"),
        ("limit=5&limit=6", "limit"),
        ("page=2", "page"),
    ] {
        let (st, e) = call(&s, "GET", &format!("{base}?{query}"), ADMIN, None).await;
        assert_eq!(
            error_field(st, &e),
            (StatusCode::BAD_REQUEST, json!(field)),
            "{query}: {e}"
        );
        assert_eq!(e["error"]["code"], "invalid_query", "{query}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(field),
            "{e}"
        );
    }
    for ok in [
        "",
        "?limit=1",
        "?limit=1000",
        "?since=0&until=0",
        "?extension=%2B4930123",
        "?extension=101&since=1&until=2&limit=10",
    ] {
        let (st, e) = call(&s, "GET", &format!("{base}{ok}"), ADMIN, None).await;
        assert_eq!(st, StatusCode::OK, "{ok}: {e}");
    }
}

async fn put_raw(s: &ApiState, path: &str, token: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let req = Request::builder()
        .method("PUT")
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "audio/wav")
        .body(Body::from(body))
        .unwrap();
    let resp = router(s.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn music_on_hold_upload_is_checked_and_confined() {
    let s = state().await;
    setup_ring_tenant(&s, "m1.test", &[]).await;
    setup_ring_tenant(&s, "m2.test", &[]).await;
    let path = "/api/v1/tenants/m1.test/music-on-hold";
    let (st, m) = call(&s, "GET", path, ADMIN, None).await;
    assert_eq!(
        (st, m["source"].clone()),
        (StatusCode::OK, json!("builtin"))
    );
    let (st, e) = put_raw(&s, path, "admin-secret", b"MP3 data".to_vec()).await;
    assert_eq!(
        error_field(st, &e),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("body"))
    );
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("8000 Hz mono 16-bit PCM"));
    // Bigger than the API's usual body bound: music files are allowed more.
    let mut wav = b"RIFF".to_vec();
    wav.resize(200_000, 0);
    let (st, m) = put_raw(&s, path, "admin-secret", wav).await;
    assert_eq!(
        (st, m["source"].clone()),
        (StatusCode::OK, json!("uploaded"))
    );
    let mut huge = b"RIFF".to_vec();
    huge.resize(crate::routes::MAX_MUSIC_BODY + 1, 0);
    let (st, _) = put_raw(&s, path, "admin-secret", huge).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    let other = tenant_token(&s, "m2.test").await;
    let (st, _) = put_raw(&s, path, &other, b"RIFF".to_vec()).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, m) = call(
        &s,
        "GET",
        "/api/v1/tenants/m2.test/music-on-hold",
        Some(&other),
        None,
    )
    .await;
    assert_eq!(
        (st, m["source"].clone()),
        (StatusCode::OK, json!("builtin"))
    );
    let (st, _) = call(&s, "DELETE", path, ADMIN, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, m) = call(&s, "GET", path, ADMIN, None).await;
    assert_eq!(m["source"], json!("builtin"));
}

// ---- call park ----

fn default_park_settings() -> Value {
    json!({"enabled": true, "park_code": "*68", "group_park_code": "*58", "retrieve_code": "*88",
           "notify_parker": false, "max_parked_per_extension": 10,
           "recall": {"recall_time_s": 45, "recall_to": "PARKER_ONLY", "recall_number": null,
                      "ring_group": null, "ring_group_wait_s": 20, "ring_s": 20,
                      "retry_interval_s": 10, "max_recall_attempts": 3,
                      "final_destination": null, "display_prefix": "Recall:"},
           "updated_at": null})
}

/// A tenant with extensions 101..=104 and ring groups 600 and 601.
async fn setup_park_tenant(s: &ApiState, domain: &str) {
    setup_ring_tenant(s, domain, &["101", "102", "103", "104"]).await;
    for n in ["600", "601"] {
        let (st, _) = call(
            s,
            "POST",
            &format!("/api/v1/tenants/{domain}/ring-groups"),
            ADMIN,
            Some(json!({"number": n, "name": "G", "members": ["101"], "strategy": "ring_all"})),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED);
    }
}

#[tokio::test]
async fn call_park_settings_default_then_replaced() {
    let s = state().await;
    setup_park_tenant(&s, "acme.test").await;
    let path = "/api/v1/tenants/acme.test/call-park";
    let (st, got) = call(&s, "GET", path, ADMIN, None).await;
    assert_eq!((st, got), (StatusCode::OK, default_park_settings()));
    let full = json!({"enabled": false, "park_code": "#70", "group_park_code": "*59",
        "retrieve_code": "*123456", "notify_parker": true, "max_parked_per_extension": 100,
        "recall": {"recall_time_s": 900, "recall_to": "PARKER_THEN_RING_GROUP",
                   "recall_number": "601", "ring_group": "600", "ring_group_wait_s": 300,
                   "ring_s": 5, "retry_interval_s": 1, "max_recall_attempts": 20,
                   "final_destination": "104", "display_prefix": ""}});
    let (st, put) = call(&s, "PUT", path, ADMIN, Some(full.clone())).await;
    assert_eq!(st, StatusCode::OK, "{put}");
    let mut want = full.clone();
    want["updated_at"] = put["updated_at"].clone();
    assert_eq!(put, want);
    assert!(put["updated_at"].as_str().unwrap().ends_with('Z'));
    let (st, got) = call(&s, "GET", path, ADMIN, None).await;
    assert_eq!((st, &got), (StatusCode::OK, &put));
    // Inside recall, what is left out takes its default (not what was stored).
    let mut partial = default_park_settings();
    partial.as_object_mut().unwrap().remove("updated_at");
    partial["recall"] = json!({"recall_time_s": 60});
    let (st, put) = call(&s, "PUT", path, ADMIN, Some(partial)).await;
    assert_eq!(st, StatusCode::OK, "{put}");
    let mut want = default_park_settings();
    want["recall"]["recall_time_s"] = json!(60);
    want["updated_at"] = put["updated_at"].clone();
    assert_eq!(put, want);
    let mut empty_recall = default_park_settings();
    empty_recall.as_object_mut().unwrap().remove("updated_at");
    empty_recall["recall"] = json!({});
    let (st, put) = call(&s, "PUT", path, ADMIN, Some(empty_recall)).await;
    assert_eq!(st, StatusCode::OK, "{put}");
    assert_eq!(put["recall"], default_park_settings()["recall"]);
    // The tenant's own token, and the tenant by id.
    let tok = tenant_token(&s, "acme.test").await;
    let id = tenant_id(&s, "acme.test");
    let (st, got) = call(
        &s,
        "GET",
        &format!("/api/v1/tenants/{id}/call-park"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!((st, &got), (StatusCode::OK, &put));
    let (st, _) = call(&s, "POST", path, ADMIN, Some(json!({}))).await;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn call_park_settings_validation_names_the_field() {
    let s = state().await;
    setup_park_tenant(&s, "acme.test").await;
    setup_park_tenant(&s, "other.test").await;
    call(
        &s,
        "POST",
        "/api/v1/tenants/other.test/ring-groups",
        ADMIN,
        Some(json!({"number": "700", "name": "G", "strategy": "ring_all"})),
    )
    .await;
    let path = "/api/v1/tenants/acme.test/call-park";
    let mut ok = default_park_settings();
    ok.as_object_mut().unwrap().remove("updated_at");
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let recall = |r: Value| with("recall", r);
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let mut cases = vec![];
    for f in [
        "enabled",
        "park_code",
        "group_park_code",
        "retrieve_code",
        "notify_parker",
        "max_parked_per_extension",
        "recall",
    ] {
        cases.push((without(f), f.to_string()));
    }
    for (body, field) in [
        (with("enabled", json!("yes")), "enabled"),
        (with("notify_parker", json!(1)), "notify_parker"),
        (with("park_code", json!("68")), "park_code"),
        (with("park_code", json!("*")), "park_code"),
        (with("park_code", json!("*1234567")), "park_code"),
        (with("park_code", json!(68)), "park_code"),
        (with("group_park_code", json!("*5#")), "group_park_code"),
        (with("retrieve_code", json!("")), "retrieve_code"),
        // Equal codes, or one beginning another.
        (with("group_park_code", json!("*68")), "group_park_code"),
        (with("group_park_code", json!("*6")), "group_park_code"),
        (with("retrieve_code", json!("*681")), "retrieve_code"),
        (
            with("max_parked_per_extension", json!(0)),
            "max_parked_per_extension",
        ),
        (
            with("max_parked_per_extension", json!(101)),
            "max_parked_per_extension",
        ),
        (
            with("max_parked_per_extension", json!(2.5)),
            "max_parked_per_extension",
        ),
        (with("recall", json!(null)), "recall"),
        (with("recall", json!([])), "recall"),
        (with("music", json!("x")), "music"),
        (recall(json!({"volume": 1})), "recall.volume"),
        (recall(json!({"recall_time_s": 0})), "recall.recall_time_s"),
        (
            recall(json!({"recall_time_s": 901})),
            "recall.recall_time_s",
        ),
        (
            recall(json!({"recall_time_s": "45"})),
            "recall.recall_time_s",
        ),
        (
            recall(json!({"recall_to": "USER_ONLY"})),
            "recall.recall_to",
        ),
        (
            recall(json!({"recall_to": "parker_only"})),
            "recall.recall_to",
        ),
        (
            recall(json!({"ring_group_wait_s": 4})),
            "recall.ring_group_wait_s",
        ),
        (recall(json!({"ring_s": 301})), "recall.ring_s"),
        (
            recall(json!({"retry_interval_s": 0})),
            "recall.retry_interval_s",
        ),
        (
            recall(json!({"max_recall_attempts": 21})),
            "recall.max_recall_attempts",
        ),
        (
            recall(json!({"display_prefix": "12345678901234567"})),
            "recall.display_prefix",
        ),
        (
            recall(json!({"display_prefix": "R\"x"})),
            "recall.display_prefix",
        ),
        (
            recall(json!({"display_prefix": "R\tx"})),
            "recall.display_prefix",
        ),
        (recall(json!({"ring_group": "60a"})), "recall.ring_group"),
        (
            recall(json!({"recall_number": 101})),
            "recall.recall_number",
        ),
        (
            recall(json!({"final_destination": "x"})),
            "recall.final_destination",
        ),
        // Modes need their target; references must exist here, of the right kind.
        (
            recall(json!({"recall_to": "PARKER_THEN_RING_GROUP"})),
            "recall.ring_group",
        ),
        (
            recall(json!({"recall_to": "RING_GROUP_ONLY", "recall_number": "600"})),
            "recall.ring_group",
        ),
        (
            recall(json!({"recall_to": "NUMBER", "ring_group": "600"})),
            "recall.recall_number",
        ),
        (recall(json!({"ring_group": "101"})), "recall.ring_group"),
        (recall(json!({"ring_group": "700"})), "recall.ring_group"),
        (
            recall(json!({"recall_to": "NUMBER", "recall_number": "109"})),
            "recall.recall_number",
        ),
        (
            recall(json!({"final_destination": "700"})),
            "recall.final_destination",
        ),
    ] {
        cases.push((body, field.to_string()));
    }
    for (body, field) in cases {
        let (st, e) = call(&s, "PUT", path, ADMIN, Some(body.clone())).await;
        assert_eq!(
            error_field(st, &e),
            (unprocessable, json!(field)),
            "{body}: {e}"
        );
        assert!(
            e["error"]["message"].as_str().unwrap().contains(&field),
            "{e}"
        );
    }
    // The clash names both codes.
    let (_, e) = call(
        &s,
        "PUT",
        path,
        ADMIN,
        Some(with("group_park_code", json!("*6"))),
    )
    .await;
    let m = e["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("*6") && m.contains("*68") && m.contains("park_code"),
        "{m}"
    );
    let (st, _) = call(&s, "PUT", path, ADMIN, Some(json!([1]))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // Refusals changed nothing.
    let (_, got) = call(&s, "GET", path, ADMIN, None).await;
    assert_eq!(got, default_park_settings());
    // Every mode with what it needs is accepted.
    for r in [
        json!({"recall_to": "PARKER_THEN_RING_GROUP", "ring_group": "600"}),
        json!({"recall_to": "RING_GROUP_ONLY", "ring_group": "601", "final_destination": "600"}),
        json!({"recall_to": "NUMBER", "recall_number": "601"}),
        json!({"recall_to": "NUMBER", "recall_number": "103", "ring_group": null}),
    ] {
        let (st, e) = call(&s, "PUT", path, ADMIN, Some(recall(r.clone()))).await;
        assert_eq!(st, StatusCode::OK, "{r}: {e}");
    }
}

#[tokio::test]
async fn call_park_group_crud() {
    let s = state().await;
    setup_park_tenant(&s, "acme.test").await;
    let base = "/api/v1/tenants/acme.test/call-park-groups";
    let (st, list) = call(&s, "GET", base, ADMIN, None).await;
    assert_eq!((st, list), (StatusCode::OK, json!({"items": []})));
    let (st, sales) = call(
        &s,
        "POST",
        base,
        ADMIN,
        Some(json!({"name": " Sales ", "members": ["103", "101"],
                    "recall": {"recall_to": "RING_GROUP_ONLY", "ring_group": "600", "recall_time_s": 30}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{sales}");
    assert_eq!(sales["name"], "Sales");
    assert_eq!(sales["members"], json!(["103", "101"]));
    let mut want_recall = default_park_settings()["recall"].clone();
    want_recall["recall_to"] = json!("RING_GROUP_ONLY");
    want_recall["ring_group"] = json!("600");
    want_recall["recall_time_s"] = json!(30);
    assert_eq!(sales["recall"], want_recall);
    let id = sales["id"].as_str().unwrap().to_string();
    let (st, admin) = call(&s, "POST", base, ADMIN, Some(json!({"name": "admin"}))).await;
    assert_eq!(st, StatusCode::CREATED, "{admin}");
    assert_eq!(
        (&admin["members"], &admin["recall"]),
        (&json!([]), &Value::Null)
    );
    let (st, list) = call(&s, "GET", base, ADMIN, None).await;
    assert_eq!(st, StatusCode::OK);
    let names: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].clone())
        .collect();
    assert_eq!(names, [json!("admin"), json!("Sales")]);
    let item = format!("{base}/{id}");
    let (st, got) = call(&s, "GET", &item, ADMIN, None).await;
    assert_eq!((st, &got), (StatusCode::OK, &sales));
    // PATCH: members replaced, the rest kept.
    let (st, p) = call(
        &s,
        "PATCH",
        &item,
        ADMIN,
        Some(json!({"members": ["102", "103", "104"]})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["members"], json!(["102", "103", "104"]));
    assert_eq!((&p["name"], &p["recall"]), (&json!("Sales"), &want_recall));
    assert_eq!(p["created_at"], sales["created_at"]);
    // recall replaces the override as a whole; null drops it.
    let (st, p) = call(
        &s,
        "PATCH",
        &item,
        ADMIN,
        Some(json!({"recall": {"ring_s": 10}})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    let mut r = default_park_settings()["recall"].clone();
    r["ring_s"] = json!(10);
    assert_eq!(p["recall"], r);
    let (st, p) = call(
        &s,
        "PATCH",
        &item,
        ADMIN,
        Some(json!({"recall": null, "name": "SALES"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!((&p["recall"], &p["name"]), (&Value::Null, &json!("SALES")));
    assert_eq!(p["members"], json!(["102", "103", "104"]));
    let (st, _) = call(&s, "DELETE", &item, ADMIN, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    for m in ["GET", "DELETE"] {
        let (st, e) = call(&s, m, &item, ADMIN, None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{m}");
        assert_eq!(e["error"]["message"], "park group not found");
    }
    let (st, _) = call(&s, "PATCH", &item, ADMIN, Some(json!({"name": "x"}))).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Its members are free again.
    let (st, _) = call(
        &s,
        "POST",
        base,
        ADMIN,
        Some(json!({"name": "Sales", "members": ["102"]})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    // Deleting the tenant takes its groups along.
    let (st, _) = call(&s, "DELETE", "/api/v1/tenants/acme.test", ADMIN, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    setup_ring_tenant(&s, "acme.test", &[]).await;
    let (_, list) = call(&s, "GET", base, ADMIN, None).await;
    assert_eq!(list["items"], json!([]));
    let (_, got) = call(
        &s,
        "GET",
        "/api/v1/tenants/acme.test/call-park",
        ADMIN,
        None,
    )
    .await;
    assert_eq!(got, default_park_settings());
}

#[tokio::test]
async fn call_park_group_validation_and_clashes() {
    let s = state().await;
    setup_park_tenant(&s, "acme.test").await;
    setup_park_tenant(&s, "other.test").await;
    call(
        &s,
        "POST",
        "/api/v1/tenants/other.test/extensions",
        ADMIN,
        Some(json!({"number": "200", "password": "pass-long-enough"})),
    )
    .await;
    let base = "/api/v1/tenants/acme.test/call-park-groups";
    let (st, sales) = call(
        &s,
        "POST",
        base,
        ADMIN,
        Some(json!({"name": "Sales", "members": ["101", "102"]})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let ok = json!({"name": "Support", "members": ["103"]});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    for (body, field) in [
        (json!({"members": ["103"]}), "name"),
        (with("name", json!("")), "name"),
        (with("name", json!("  ")), "name"),
        (with("name", json!("x".repeat(65))), "name"),
        (with("name", json!(5)), "name"),
        (with("members", json!("103")), "members"),
        (with("members", json!([103])), "members"),
        (with("members", json!(["103", "103"])), "members"),
        (with("members", json!(["*68"])), "members"),
        (with("members", json!(["109"])), "members"),
        (with("members", json!(["200"])), "members"),
        (with("members", json!(["600"])), "members"),
        (
            with(
                "members",
                json!((0..101).map(|i| format!("5{i}")).collect::<Vec<_>>()),
            ),
            "members",
        ),
        (with("recall", json!(5)), "recall"),
        (
            with("recall", json!({"recall_to": "RING_GROUP_ONLY"})),
            "recall.ring_group",
        ),
        (
            with("recall", json!({"final_destination": "200"})),
            "recall.final_destination",
        ),
        (
            with("recall", json!({"max_recall_attempts": 0})),
            "recall.max_recall_attempts",
        ),
        (with("recall", json!({"x": 1})), "recall.x"),
        (with("recall_to", json!("NUMBER")), "recall_to"),
    ] {
        let (st, e) = call(&s, "POST", base, ADMIN, Some(body.clone())).await;
        assert_eq!(
            error_field(st, &e),
            (unprocessable, json!(field)),
            "{body}: {e}"
        );
    }
    // Unknown and foreign members are named.
    for bad in ["109", "200"] {
        let (_, e) = call(
            &s,
            "POST",
            base,
            ADMIN,
            Some(with("members", json!(["103", bad]))),
        )
        .await;
        assert!(e["error"]["message"].as_str().unwrap().contains(bad), "{e}");
    }
    // 409: the name, ignoring case; a member of another group, named with the group.
    let (st, e) = call(&s, "POST", base, ADMIN, Some(with("name", json!("sALES")))).await;
    assert_eq!(error_field(st, &e), (StatusCode::CONFLICT, json!("name")));
    let (st, e) = call(
        &s,
        "POST",
        base,
        ADMIN,
        Some(with("members", json!(["103", "102"]))),
    )
    .await;
    assert_eq!(
        error_field(st, &e),
        (StatusCode::CONFLICT, json!("members"))
    );
    let m = e["error"]["message"].as_str().unwrap();
    assert!(m.contains("102") && m.contains("Sales"), "{m}");
    assert_eq!(e["error"]["code"], "conflict");
    // Another tenant may use the same name and numbers.
    let (st, _) = call(
        &s,
        "POST",
        "/api/v1/tenants/other.test/call-park-groups",
        ADMIN,
        Some(json!({"name": "sales", "members": ["101", "102"]})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, support) = call(&s, "POST", base, ADMIN, Some(ok.clone())).await;
    assert_eq!(st, StatusCode::CREATED);
    let item = format!("{base}/{}", support["id"].as_str().unwrap());
    for (body, status, field) in [
        (json!({"name": "SALES"}), StatusCode::CONFLICT, "name"),
        (
            json!({"members": ["103", "101"]}),
            StatusCode::CONFLICT,
            "members",
        ),
        (json!({"members": ["103", "109"]}), unprocessable, "members"),
        (
            json!({"name": null, "members": null, "recall": {"ring_s": 1}}),
            unprocessable,
            "recall.ring_s",
        ),
        (json!({"id": "x"}), unprocessable, "id"),
    ] {
        let (st, e) = call(&s, "PATCH", &item, ADMIN, Some(body.clone())).await;
        assert_eq!(error_field(st, &e), (status, json!(field)), "{body}: {e}");
    }
    let (st, _) = call(&s, "POST", base, ADMIN, Some(json!("x"))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // Refusals changed nothing; renaming to its own name in another case is fine.
    let (_, g) = call(&s, "GET", &item, ADMIN, None).await;
    assert_eq!(g, support);
    let (st, g) = call(&s, "PATCH", &item, ADMIN, Some(json!({"name": "SUPPORT"}))).await;
    assert_eq!((st, g["name"].clone()), (StatusCode::OK, json!("SUPPORT")));
    let sales_item = format!("{base}/{}", sales["id"].as_str().unwrap());
    let (_, g) = call(&s, "GET", &sales_item, ADMIN, None).await;
    assert_eq!(g["members"], json!(["101", "102"]));
}

#[tokio::test]
async fn call_park_is_confined_to_its_tenant() {
    let s = state().await;
    setup_park_tenant(&s, "a.test").await;
    setup_park_tenant(&s, "b.test").await;
    let (st, g) = call(
        &s,
        "POST",
        "/api/v1/tenants/b.test/call-park-groups",
        ADMIN,
        Some(json!({"name": "B", "members": ["101"]})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let b_group = g["id"].as_str().unwrap().to_string();
    let b_id = tenant_id(&s, "b.test");
    s.store
        .append_park_events(&[park_event(&b_id, "b1", 1_000, "parked")])
        .await
        .unwrap();
    let a = tenant_token(&s, "a.test").await;
    let a = Some(a.as_str());
    let settings = {
        let mut b = default_park_settings();
        b.as_object_mut().unwrap().remove("updated_at");
        b
    };
    for (m, p, body) in [
        ("GET", "/api/v1/tenants/b.test/call-park".to_string(), None),
        (
            "PUT",
            "/api/v1/tenants/b.test/call-park".to_string(),
            Some(settings.clone()),
        ),
        (
            "GET",
            "/api/v1/tenants/b.test/call-park-groups".to_string(),
            None,
        ),
        (
            "POST",
            "/api/v1/tenants/b.test/call-park-groups".to_string(),
            Some(json!({"name": "mine"})),
        ),
        (
            "GET",
            format!("/api/v1/tenants/b.test/call-park-groups/{b_group}"),
            None,
        ),
        (
            "PATCH",
            format!("/api/v1/tenants/b.test/call-park-groups/{b_group}"),
            Some(json!({"name": "mine"})),
        ),
        (
            "DELETE",
            format!("/api/v1/tenants/b.test/call-park-groups/{b_group}"),
            None,
        ),
        (
            "GET",
            "/api/v1/tenants/b.test/park-events".to_string(),
            None,
        ),
        (
            "GET",
            "/api/v1/tenants/b.test/park-events?kind=bogus".to_string(),
            None,
        ),
        // B's group under A's own path is not A's.
        (
            "GET",
            format!("/api/v1/tenants/a.test/call-park-groups/{b_group}"),
            None,
        ),
        (
            "PATCH",
            format!("/api/v1/tenants/a.test/call-park-groups/{b_group}"),
            Some(json!({"name": "mine"})),
        ),
        (
            "DELETE",
            format!("/api/v1/tenants/a.test/call-park-groups/{b_group}"),
            None,
        ),
    ] {
        let (st, _) = call(&s, m, &p, a, body).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{m} {p}");
    }
    // Not even the admin finds B's group under A.
    let (st, _) = call(
        &s,
        "GET",
        &format!("/api/v1/tenants/a.test/call-park-groups/{b_group}"),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // A's own work; B is untouched.
    let (st, _) = call(
        &s,
        "PUT",
        "/api/v1/tenants/a.test/call-park",
        a,
        Some(settings),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = call(
        &s,
        "POST",
        "/api/v1/tenants/a.test/call-park-groups",
        a,
        Some(json!({"name": "B", "members": ["101"]})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let (_, list) = call(&s, "GET", "/api/v1/tenants/a.test/park-events", a, None).await;
    assert_eq!(list, json!({"items": []}));
    let (_, g) = call(
        &s,
        "GET",
        &format!("/api/v1/tenants/b.test/call-park-groups/{b_group}"),
        ADMIN,
        None,
    )
    .await;
    assert_eq!((&g["name"], &g["members"]), (&json!("B"), &json!(["101"])));
    let (_, got) = call(&s, "GET", "/api/v1/tenants/b.test/call-park", ADMIN, None).await;
    assert_eq!(got["updated_at"], Value::Null);
    for p in [
        "/api/v1/tenants/a.test/call-park",
        "/api/v1/tenants/a.test/call-park-groups",
        "/api/v1/tenants/a.test/park-events",
    ] {
        let (st, _) = call(&s, "GET", p, None, None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{p}");
    }
}

#[tokio::test]
async fn deleting_extensions_and_ring_groups_updates_call_park() {
    let s = state().await;
    setup_park_tenant(&s, "acme.test").await;
    let settings = "/api/v1/tenants/acme.test/call-park";
    let mut body = default_park_settings();
    body.as_object_mut().unwrap().remove("updated_at");
    body["recall"] = json!({"recall_to": "NUMBER", "recall_number": "102",
                            "ring_group": "600", "final_destination": "601"});
    let (st, e) = call(&s, "PUT", settings, ADMIN, Some(body)).await;
    assert_eq!(st, StatusCode::OK, "{e}");
    let base = "/api/v1/tenants/acme.test/call-park-groups";
    let (st, g) = call(
        &s,
        "POST",
        base,
        ADMIN,
        Some(json!({"name": "A", "members": ["101", "102", "103"],
                    "recall": {"recall_to": "PARKER_THEN_RING_GROUP", "ring_group": "600",
                               "final_destination": "102"}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    let item = format!("{base}/{}", g["id"].as_str().unwrap());
    let (st, _) = call(
        &s,
        "DELETE",
        "/api/v1/tenants/acme.test/extensions/102",
        ADMIN,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, got) = call(&s, "GET", settings, ADMIN, None).await;
    assert_eq!(
        (
            &got["recall"]["recall_to"],
            &got["recall"]["recall_number"],
            &got["recall"]["ring_group"]
        ),
        (&json!("PARKER_ONLY"), &Value::Null, &json!("600"))
    );
    let (_, g) = call(&s, "GET", &item, ADMIN, None).await;
    assert_eq!(g["members"], json!(["101", "103"]));
    assert_eq!(g["recall"]["final_destination"], Value::Null);
    assert_eq!(g["recall"]["recall_to"], "PARKER_THEN_RING_GROUP");
    let (st, _) = call(
        &s,
        "DELETE",
        "/api/v1/tenants/acme.test/ring-groups/600",
        ADMIN,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, got) = call(&s, "GET", settings, ADMIN, None).await;
    assert_eq!(got["recall"]["ring_group"], Value::Null);
    assert_eq!(got["recall"]["final_destination"], "601");
    let (_, g) = call(&s, "GET", &item, ADMIN, None).await;
    assert_eq!(
        (&g["recall"]["recall_to"], &g["recall"]["ring_group"]),
        (&json!("PARKER_ONLY"), &Value::Null)
    );
    let (st, _) = call(
        &s,
        "DELETE",
        "/api/v1/tenants/acme.test/ring-groups/601",
        ADMIN,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, got) = call(&s, "GET", settings, ADMIN, None).await;
    assert_eq!(got["recall"]["final_destination"], Value::Null);
}

fn park_event(tenant_id: &str, id: &str, at_ms: i64, kind: &str) -> orbit_store::ParkEventRecord {
    orbit_store::ParkEventRecord {
        id: id.into(),
        tenant_id: tenant_id.into(),
        at_ms,
        kind: kind.into(),
        park_id: Some(format!("p-{id}")),
        extension: "103".into(),
        call_id: format!("c-{id}"),
        parker: "101".into(),
        parked_number: "106".into(),
        parked_name: "Zoë".into(),
        detail: String::new(),
    }
}

#[tokio::test]
async fn park_events_newest_first_with_filters() {
    let s = state().await;
    setup_ring_tenant(&s, "a.test", &[]).await;
    setup_ring_tenant(&s, "b.test", &[]).await;
    let (a_id, b_id) = (tenant_id(&s, "a.test"), tenant_id(&s, "b.test"));
    let base = "/api/v1/tenants/a.test/park-events";
    let (st, list) = call(&s, "GET", base, ADMIN, None).await;
    assert_eq!((st, list), (StatusCode::OK, json!({"items": []})));
    s.store
        .append_park_events(&[
            park_event(&a_id, "e1", 1_700_000_001_000, "parked"),
            orbit_store::ParkEventRecord {
                detail: "104".into(),
                ..park_event(&a_id, "e3", 1_700_000_003_000, "retrieved")
            },
            orbit_store::ParkEventRecord {
                extension: "105".into(),
                parker: "102".into(),
                park_id: None,
                detail: "no member available".into(),
                ..park_event(&a_id, "e2", 1_700_000_002_000, "park_failed")
            },
            park_event(&b_id, "other", 1_700_000_002_500, "parked"),
        ])
        .await
        .unwrap();
    let ids = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (st, list) = call(&s, "GET", base, ADMIN, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(ids(&list), ["e3", "e2", "e1"]);
    assert_eq!(
        list["items"][1],
        json!({"id": "e2", "tenant_id": a_id, "at": "2023-11-14T22:13:22.000Z",
               "kind": "park_failed", "park_id": null, "extension": "105", "call_id": "c-e2",
               "parker": "102", "parked_number": "106", "parked_name": "Zoë",
               "detail": "no member available"})
    );
    for (query, want) in [
        ("extension=103", &["e3", "e1"][..]),
        ("extension=102", &["e2"][..]),
        ("extension=101", &["e3", "e1"][..]),
        ("extension=999", &[][..]),
        ("kind=parked", &["e1"][..]),
        ("kind=parked,retrieved", &["e3", "e1"][..]),
        ("kind=ended", &[][..]),
        ("since=1700000002000", &["e3", "e2"][..]),
        ("until=1700000002000", &["e1"][..]),
        // RFC 3339 as the responses write times.
        ("since=2023-11-14T22:13:22.000Z", &["e3", "e2"][..]),
        (
            "since=2023-11-14T22:13:21Z&until=2023-11-14T22:13:23Z",
            &["e2", "e1"][..],
        ),
        ("limit=2", &["e3", "e2"][..]),
        ("extension=103&kind=retrieved,parked&limit=1", &["e3"][..]),
    ] {
        let (st, list) = call(&s, "GET", &format!("{base}?{query}"), ADMIN, None).await;
        assert_eq!(st, StatusCode::OK, "{query}: {list}");
        assert_eq!(ids(&list), want, "{query}");
    }
    let tok = tenant_token(&s, "b.test").await;
    let (st, list) = call(
        &s,
        "GET",
        "/api/v1/tenants/b.test/park-events",
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(
        (st, ids(&list)),
        (StatusCode::OK, vec!["other".to_string()])
    );
    // Bad queries: 400 naming the parameter.
    for (query, field) in [
        ("kind=bogus", "kind"),
        ("kind=parked,", "kind"),
        ("kind=", "kind"),
        ("kind=parked&kind=ended", "kind"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("since=yesterday", "since"),
        ("since=-1", "since"),
        ("until=2023-11-14", "until"),
        ("since=2000&until=1000", "until"),
        ("extension=", "extension"),
        ("park_id=x", "park_id"),
    ] {
        let (st, e) = call(&s, "GET", &format!("{base}?{query}"), ADMIN, None).await;
        assert_eq!(
            error_field(st, &e),
            (StatusCode::BAD_REQUEST, json!(field)),
            "{query}: {e}"
        );
        assert_eq!(e["error"]["code"], "invalid_query", "{query}");
    }
    // Deleting a tenant deletes its events.
    let (st, _) = call(&s, "DELETE", "/api/v1/tenants/b.test", ADMIN, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    setup_ring_tenant(&s, "b.test", &[]).await;
    let (_, list) = call(&s, "GET", "/api/v1/tenants/b.test/park-events", ADMIN, None).await;
    assert_eq!(list, json!({"items": []}));
}

/// A call layer that records commands and answers from a script.
#[derive(Default)]
struct FakeControl {
    parked: std::sync::Mutex<Vec<orbit_store::ParkedCall>>,
    commands: std::sync::Mutex<Vec<orbit_store::CallCommand>>,
    answer: std::sync::Mutex<Option<orbit_store::CommandError>>,
    events: std::sync::OnceLock<tokio::sync::broadcast::Sender<orbit_store::ParkEventRecord>>,
}

impl FakeControl {
    fn sender(&self) -> &tokio::sync::broadcast::Sender<orbit_store::ParkEventRecord> {
        self.events
            .get_or_init(|| tokio::sync::broadcast::channel(16).0)
    }
}

impl orbit_store::CallControl for FakeControl {
    fn parked_calls(&self, _tenant_id: &str) -> Vec<orbit_store::ParkedCall> {
        self.parked.lock().unwrap().clone()
    }
    fn command(
        &self,
        cmd: orbit_store::CallCommand,
    ) -> tokio::sync::oneshot::Receiver<Result<(), orbit_store::CommandError>> {
        self.commands.lock().unwrap().push(cmd);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = tx.send(match self.answer.lock().unwrap().clone() {
            Some(e) => Err(e),
            None => Ok(()),
        });
        rx
    }
    fn park_events(&self) -> tokio::sync::broadcast::Receiver<orbit_store::ParkEventRecord> {
        self.sender().subscribe()
    }
}

#[tokio::test]
async fn parked_calls_and_park_actions() {
    let control = Arc::new(FakeControl::default());
    let mut s = state().await;
    s.control = control.clone();
    setup_ring_tenant(&s, "p1.test", &["101", "103"]).await;
    setup_ring_tenant(&s, "p2.test", &[]).await;
    let t1 = tenant_id(&s, "p1.test");
    let parked = |tenant: &str, id: &str| orbit_store::ParkedCall {
        id: id.into(),
        call_id: "c1".into(),
        tenant_id: tenant.into(),
        parked_on: "103".into(),
        parked_by: "101".into(),
        caller_number: "106".into(),
        caller_name: "Outside".into(),
        parked_at: 1_700_000_000_000,
        recall_at: Some(1_700_000_045_000),
        state: "parked".into(),
        recalling: None,
        retrieve_number: "*88*7".into(),
    };
    // The provider may answer other tenants' calls: the API filters.
    control
        .parked
        .lock()
        .unwrap()
        .extend([parked(&t1, "7"), parked("other", "8")]);
    let (st, v) = call(
        &s,
        "GET",
        "/api/v1/tenants/p1.test/parked-calls",
        ADMIN,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["items"][0]["caller"]["number"], "106");
    assert_eq!(v["items"][0]["recall_at"], "2023-11-14T22:14:05.000Z");

    let base = "/api/v1/tenants/p1.test";
    let (st, e) = call(
        &s,
        "POST",
        &format!("{base}/calls/c1/park"),
        ADMIN,
        Some(json!({})),
    )
    .await;
    assert_eq!(
        error_field(st, &e),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("on"))
    );
    let (st, e) = call(
        &s,
        "POST",
        &format!("{base}/calls/c1/park"),
        ADMIN,
        Some(json!({"on": "1x"})),
    )
    .await;
    assert_eq!(
        error_field(st, &e),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("on"))
    );
    let (st, _) = call(
        &s,
        "POST",
        &format!("{base}/calls/c1/park"),
        ADMIN,
        Some(json!({"on": "103"})),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, v) = call(
        &s,
        "POST",
        &format!("{base}/parked-calls/7/retrieve"),
        ADMIN,
        Some(json!({"to": "101"})),
    )
    .await;
    assert_eq!(
        (st, v["ringing"].clone()),
        (StatusCode::ACCEPTED, json!("101"))
    );
    let (st, e) = call(
        &s,
        "POST",
        &format!("{base}/parked-calls/7/retrieve"),
        ADMIN,
        Some(json!({})),
    )
    .await;
    assert_eq!(
        error_field(st, &e),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("to"))
    );
    let (st, _) = call(&s, "DELETE", &format!("{base}/parked-calls/7"), ADMIN, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    {
        let cmds = control.commands.lock().unwrap();
        assert_eq!(cmds.len(), 3, "{cmds:?}");
        assert!(
            matches!(&cmds[0], orbit_store::CallCommand::Park { on: Some(o), group: false, tenant_id, .. } if o == "103" && *tenant_id == t1)
        );
    }
    *control.answer.lock().unwrap() = Some(orbit_store::CommandError::NotFound("parked call"));
    let (st, _) = call(&s, "DELETE", &format!("{base}/parked-calls/9"), ADMIN, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    *control.answer.lock().unwrap() = Some(orbit_store::CommandError::Conflict {
        field: "on",
        message: "103 holds as many parked calls as allowed".into(),
    });
    let (st, e) = call(
        &s,
        "POST",
        &format!("{base}/calls/c1/park"),
        ADMIN,
        Some(json!({"on": "103"})),
    )
    .await;
    assert_eq!(error_field(st, &e), (StatusCode::CONFLICT, json!("on")));
    // Another tenant's token sees nothing of p1.
    let other = tenant_token(&s, "p2.test").await;
    let (st, _) = call(
        &s,
        "GET",
        "/api/v1/tenants/p1.test/parked-calls",
        Some(&other),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = call(
        &s,
        "DELETE",
        &format!("{base}/parked-calls/7"),
        Some(&other),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn events_stream_only_the_tenants_park_events() {
    let control = Arc::new(FakeControl::default());
    let mut s = state().await;
    s.control = control.clone();
    setup_ring_tenant(&s, "e1.test", &[]).await;
    let t1 = tenant_id(&s, "e1.test");
    let req = Request::builder()
        .uri("/api/v1/tenants/e1.test/events")
        .header("authorization", "Bearer admin-secret")
        .body(Body::empty())
        .unwrap();
    let resp = router(s.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let ev = |tenant: &str, id: &str| orbit_store::ParkEventRecord {
        id: id.into(),
        tenant_id: tenant.into(),
        at_ms: 1_700_000_000_000,
        kind: "parked".into(),
        park_id: Some("1".into()),
        extension: "103".into(),
        call_id: "c".into(),
        parker: "101".into(),
        parked_number: "106".into(),
        parked_name: "Out".into(),
        detail: String::new(),
    };
    control.sender().send(ev("other", "x1")).unwrap();
    control.sender().send(ev(&t1, "mine")).unwrap();
    let mut body = resp.into_body().into_data_stream();
    use futures_util::StreamExt;
    let chunk = tokio::time::timeout(std::time::Duration::from_secs(2), body.next())
        .await
        .expect("an event in time")
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&chunk).to_string();
    assert!(text.contains("event: park"), "{text}");
    assert!(text.contains("id: mine"), "{text}");
    assert!(!text.contains("x1"), "{text}");
}

// ---- phones and provisioning ----

const MAC: &str = "000413a1b2c3";

/// A request to `app` (one router, so the provisioning limiter persists)
/// with a `Host`, optional Basic credentials and a peer address.
async fn fetch(
    app: &axum::Router,
    path: &str,
    basic: Option<(&str, &str)>,
    peer: &str,
) -> (StatusCode, axum::http::HeaderMap, String) {
    use base64::Engine;
    let mut req = Request::builder()
        .method("GET")
        .uri(path)
        .header("host", "pbx.test:8080");
    if let Some((u, p)) = basic {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        req = req.header("authorization", format!("Basic {b}"));
    }
    let mut req = req.body(Body::empty()).unwrap();
    let addr: std::net::SocketAddr = peer.parse().unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(addr));
    let resp = app.clone().oneshot(req).await.unwrap();
    let (st, headers) = (resp.status(), resp.headers().clone());
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (st, headers, String::from_utf8(bytes.to_vec()).unwrap())
}

/// Tenant `domain` with extensions 101..=104 and a park group of 101 and
/// 102; returns the group id.
async fn setup_phone_tenant(s: &ApiState, domain: &str) -> String {
    setup_ring_tenant(s, domain, &["101", "102", "103", "104"]).await;
    let (st, g) = call(
        s,
        "POST",
        &format!("/api/v1/tenants/{domain}/call-park-groups"),
        ADMIN,
        Some(json!({"name": "Front desk", "members": ["101", "102"]})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    g["id"].as_str().unwrap().to_string()
}

fn d785(mac: &str, extension: &str) -> Value {
    json!({"mac": mac, "vendor": "snom", "model": "D785", "extension": extension,
           "label": "Reception",
           "keys": [{"type": "visual_park"}, {"type": "visual_group_park"},
                    {"type": "blf", "target": "102", "label": "Bob"},
                    {"type": "speed_dial", "target": "+4930123456"},
                    {"type": "visual_park", "target": "103"}]})
}

/// Create a phone; returns (its JSON, its provisioning password).
async fn create_phone(s: &ApiState, domain: &str, body: Value) -> (Value, String) {
    let (st, p) = call(
        s,
        "POST",
        &format!("/api/v1/tenants/{domain}/phones"),
        ADMIN,
        Some(body),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    let pw = p["provisioning"]["password"].as_str().unwrap().to_string();
    (p, pw)
}

#[tokio::test]
async fn phones_crud_with_validation_and_isolation() {
    let s = state().await;
    setup_phone_tenant(&s, "acme.test").await;
    setup_phone_tenant(&s, "other.test").await;
    let base = "/api/v1/tenants/acme.test/phones";
    let (p, pw) = create_phone(&s, "acme.test", d785("00:04:13:A1:B2:C3", "101")).await;
    assert_eq!(p["mac"], MAC);
    assert_eq!(pw.len(), 24);
    assert_eq!(p["config_version"], 1);
    assert_eq!(p["provisioned_at"], Value::Null);
    assert_eq!(p["provisioning"]["username"], MAC);
    assert_eq!(
        p["keys"][2],
        json!({"type": "blf", "target": "102", "label": "Bob"})
    );
    let id = p["id"].as_str().unwrap().to_string();
    // The password is shown once: never in a read.
    let (st, list) = call(&s, "GET", base, ADMIN, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(&pw));
    for key in [id.as_str(), MAC, "00-04-13-a1-b2-c3"] {
        let (st, one) = call(&s, "GET", &format!("{base}/{key}"), ADMIN, None).await;
        assert_eq!(
            (st, one["id"].as_str()),
            (StatusCode::OK, Some(id.as_str()))
        );
        assert!(one["provisioning"].get("password").is_none());
    }
    // Changes raise config_version; reprovision raises it alone.
    let (st, v) = call(
        &s,
        "PATCH",
        &format!("{base}/{id}"),
        ADMIN,
        Some(json!({"label": "Desk 2", "keys": []})),
    )
    .await;
    assert_eq!(
        (st, v["config_version"].clone()),
        (StatusCode::OK, json!(2))
    );
    assert_eq!(v["keys"], json!([]));
    let (st, v) = call(
        &s,
        "POST",
        &format!("{base}/{MAC}/reprovision"),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(
        (st, v["config_version"].clone()),
        (StatusCode::OK, json!(3))
    );
    assert_eq!(v["label"], "Desk 2");
    // Validation names the field.
    let cases = [
        (
            json!({"mac": "0004", "vendor": "snom", "model": "D785"}),
            "mac",
        ),
        (json!({"vendor": "snom", "model": "D785"}), "mac"),
        (
            json!({"mac": "000413a1b2c4", "vendor": "polycom", "model": "D785"}),
            "vendor",
        ),
        (json!({"mac": "000413a1b2c4", "model": "D785"}), "vendor"),
        (
            json!({"mac": "000413a1b2c4", "vendor": "snom", "model": "D 7"}),
            "model",
        ),
        (
            json!({"mac": "000413a1b2c4", "vendor": "snom", "model": "D785", "extension": "999"}),
            "extension",
        ),
        (
            json!({"mac": "000413a1b2c4", "vendor": "snom", "model": "D785", "extension": "1a"}),
            "extension",
        ),
        (
            json!({"mac": "000413a1b2c4", "vendor": "snom", "model": "D785", "keys": [{"type": "park"}]}),
            "keys[0].type",
        ),
        (
            json!({"mac": "000413a1b2c4", "vendor": "snom", "model": "D785", "keys": [{}]}),
            "keys[0].type",
        ),
        (
            json!({"mac": "000413a1b2c4", "vendor": "snom", "model": "D785", "keys": [{"type": "blf", "x": 1}]}),
            "keys[0].x",
        ),
        (
            json!({"mac": "000413a1b2c4", "vendor": "snom", "model": "D785", "keys": [{"type": "blf"}]}),
            "keys",
        ),
        (
            json!({"mac": "000413a1b2c4", "vendor": "snom", "model": "D785", "keys": ["blf"]}),
            "keys",
        ),
        (
            json!({"mac": "000413a1b2c4", "vendor": "snom", "model": "D785", "owner": "x"}),
            "owner",
        ),
    ];
    for (body, field) in cases {
        let (st, e) = call(&s, "POST", base, ADMIN, Some(body.clone())).await;
        assert_eq!(
            error_field(st, &e),
            (StatusCode::UNPROCESSABLE_ENTITY, json!(field)),
            "{body}"
        );
    }
    let (st, e) = call(
        &s,
        "PATCH",
        &format!("{base}/{id}"),
        ADMIN,
        Some(json!({"mac": MAC})),
    )
    .await;
    assert_eq!(
        error_field(st, &e),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("mac"))
    );
    // One physical phone: its MAC is taken in every tenant.
    let (st, e) = call(
        &s,
        "POST",
        "/api/v1/tenants/other.test/phones",
        ADMIN,
        Some(d785(MAC, "101")),
    )
    .await;
    assert_eq!(error_field(st, &e), (StatusCode::CONFLICT, json!("mac")));
    // Another tenant's token sees no such phone, by id or by MAC.
    let other = tenant_token(&s, "other.test").await;
    for key in [id.as_str(), MAC] {
        for (method, path) in [
            ("GET", format!("/api/v1/tenants/other.test/phones/{key}")),
            ("DELETE", format!("/api/v1/tenants/other.test/phones/{key}")),
            (
                "POST",
                format!("/api/v1/tenants/other.test/phones/{key}/reprovision"),
            ),
            ("GET", format!("{base}/{key}")),
        ] {
            let (st, _) = call(&s, method, &path, Some(&other), None).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{method} {path}");
        }
    }
    let (_, list) = call(
        &s,
        "GET",
        "/api/v1/tenants/other.test/phones",
        Some(&other),
        None,
    )
    .await;
    assert_eq!(list, json!({"items": []}));
    // A new password replaces the old one.
    let (st, v) = call(&s, "POST", &format!("{base}/{id}/password"), ADMIN, None).await;
    assert_eq!(st, StatusCode::OK);
    let pw2 = v["provisioning"]["password"].as_str().unwrap();
    assert_ne!(pw2, pw);
    let app = router(s.clone());
    let file = format!("/provisioning/snom/{MAC}.xml");
    assert_eq!(
        fetch(&app, &file, Some((MAC, &pw)), "192.0.2.7:1").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        fetch(&app, &file, Some((MAC, pw2)), "192.0.2.7:1").await.0,
        StatusCode::OK
    );
    let (st, _) = call(&s, "DELETE", &format!("{base}/{id}"), ADMIN, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = call(&s, "GET", &format!("{base}/{id}"), ADMIN, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(
        fetch(&app, &file, Some((MAC, pw2)), "192.0.2.7:1").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn provisioning_authenticates_per_phone_and_hides_unknown_macs() {
    let s = state().await;
    let group = setup_phone_tenant(&s, "acme.test").await;
    let (_, pw) = create_phone(&s, "acme.test", d785(MAC, "101")).await;
    let app = router(s.clone());
    let peer = "192.0.2.7:5000";
    let known = format!("/provisioning/snom/{MAC}.xml");
    let unknown = "/provisioning/snom/000413ffffff.xml";
    // No credentials: the same challenge whether the MAC is known or not.
    let (st1, h1, b1) = fetch(&app, &known, None, peer).await;
    let (st2, h2, b2) = fetch(&app, unknown, None, peer).await;
    assert_eq!(
        (st1, st2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(h1.get("www-authenticate"), h2.get("www-authenticate"));
    assert!(h1["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic "));
    assert_eq!(b1, b2);
    // Wrong password, wrong user, unknown MAC: the same 404.
    let (st1, _, b1) = fetch(&app, &known, Some((MAC, "wrong")), peer).await;
    let (st2, _, b2) = fetch(&app, &known, Some(("000413ffffff", &pw)), peer).await;
    let (st3, _, b3) = fetch(&app, unknown, Some(("000413ffffff", &pw)), peer).await;
    assert_eq!([st1, st2, st3], [StatusCode::NOT_FOUND; 3]);
    assert!(b1 == b2 && b2 == b3);
    // The phone's own credentials: its configuration, in every file name
    // Snom phones ask for.
    let (_, p) = call(
        &s,
        "GET",
        &format!("/api/v1/tenants/acme.test/phones/{MAC}"),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(p["provisioned_at"], Value::Null);
    for file in [
        format!("{MAC}.xml"),
        "000413A1B2C3.htm".to_string(),
        "snomD785-000413A1B2C3.htm".to_string(),
    ] {
        let (st, h, body) = fetch(
            &app,
            &format!("/provisioning/snom/{file}"),
            Some(("000413A1B2C3", &pw)),
            peer,
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{file}");
        assert_eq!(h["content-type"], "text/xml; charset=utf-8");
        let t = tenant_id(&s, "acme.test");
        let ha1 = s
            .store
            .directory()
            .extension(&t, "101")
            .unwrap()
            .ha1_md5
            .clone();
        for needle in [
            format!("<user_hash idx=\"1\" perm=\"R\">{ha1}</user_hash>"),
            "<user_name idx=\"1\" perm=\"R\">101</user_name>".to_string(),
            "<user_host idx=\"1\" perm=\"R\">acme.test</user_host>".to_string(),
            "<user_outbound idx=\"1\" perm=\"R\">pbx.test:5060</user_outbound>".to_string(),
            "sip:park-101@acme.test".to_string(),
            format!("sip:parkgroup-{group}@acme.test"),
            "http://pbx.test:8080/provisioning/snom/000413a1b2c3/park.xml".to_string(),
            "http://pbx.test:8080/provisioning/snom/000413a1b2c3/park-103.xml".to_string(),
            "blf &lt;sip:102@acme.test&gt;".to_string(),
            "speed +4930123456".to_string(),
            "GP_XML[0] GP_XML[1]".to_string(),
        ] {
            assert!(body.contains(&needle), "{needle} not in {body}");
        }
        assert!(
            !body.contains("user_pass idx=\"1\" perm=\"R\">p"),
            "no password"
        );
    }
    let (_, p) = call(
        &s,
        "GET",
        &format!("/api/v1/tenants/acme.test/phones/{MAC}"),
        ADMIN,
        None,
    )
    .await;
    assert!(p["provisioned_at"].is_string(), "{p}");
    // The per-model file holds nothing and asks for nothing.
    let (st, _, body) = fetch(&app, "/provisioning/snom/snomD785.htm", None, peer).await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("<phone-settings e=\"2\"/>"));
    // Nonsense file names are 404.
    let (st, _, _) = fetch(&app, "/provisioning/snom/config.cfg", None, peer).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_phone_never_gets_another_tenants_settings() {
    let s = state().await;
    setup_phone_tenant(&s, "a.test").await;
    setup_phone_tenant(&s, "b.test").await;
    let (_, pw_a) = create_phone(&s, "a.test", d785("000413aaaaaa", "101")).await;
    let (_, pw_b) = create_phone(&s, "b.test", d785("000413bbbbbb", "101")).await;
    let app = router(s.clone());
    let peer = "198.51.100.1:1";
    // A's credentials open A's file only.
    let (st, _, body) = fetch(
        &app,
        "/provisioning/snom/000413aaaaaa.xml",
        Some(("000413aaaaaa", &pw_a)),
        peer,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("a.test") && !body.contains("b.test"));
    for (mac, user, pw) in [
        ("000413bbbbbb", "000413aaaaaa", &pw_a),
        ("000413bbbbbb", "000413bbbbbb", &pw_a),
        ("000413aaaaaa", "000413bbbbbb", &pw_b),
    ] {
        for path in [
            format!("/provisioning/snom/{mac}.xml"),
            format!("/provisioning/snom/{mac}/park.xml"),
        ] {
            let (st, _, _) = fetch(&app, &path, Some((user, pw)), peer).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{path} as {user}");
        }
    }
}

/// `d785` as another vendor's phone.
fn phone_of(vendor: &str, model: &str, mac: &str, extension: &str) -> Value {
    let mut v = d785(mac, extension);
    v["vendor"] = json!(vendor);
    v["model"] = json!(model);
    v
}

const YEALINK_MAC: &str = "805ec0a1b2c3";
const FANVIL_MAC: &str = "0c383ea1b2c3";

#[tokio::test]
async fn yealink_and_fanvil_phones_are_served_under_their_own_vendor_path_only() {
    let s = state().await;
    let group = setup_phone_tenant(&s, "acme.test").await;
    let (y, pw_y) = create_phone(
        &s,
        "acme.test",
        phone_of("yealink", "T54W", YEALINK_MAC, "101"),
    )
    .await;
    let (f, pw_f) = create_phone(
        &s,
        "acme.test",
        phone_of("fanvil", "X4U", FANVIL_MAC, "102"),
    )
    .await;
    let (_, pw_s) = create_phone(&s, "acme.test", d785(MAC, "103")).await;
    assert_eq!(
        y["provisioning"]["url"],
        "/provisioning/yealink/805ec0a1b2c3.cfg"
    );
    assert_eq!(
        f["provisioning"]["url"],
        "/provisioning/fanvil/0c383ea1b2c3.cfg"
    );
    let app = router(s.clone());
    let peer = "192.0.2.7:5000";
    // Yealink: its file, in any MAC case.
    let (st, h, body) = fetch(
        &app,
        "/provisioning/yealink/805EC0A1B2C3.cfg",
        Some(("805EC0A1B2C3", &pw_y)),
        peer,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(h["content-type"], "text/plain; charset=utf-8");
    for needle in [
        "#!version:1.0.0.1\n",
        "account.1.user_name = 101\n",
        "account.1.sip_server.1.address = acme.test\n",
        "account.1.outbound_proxy.1.address = pbx.test\n",
        "sip.notify_reboot_enable = 0\n",
        "features.call_park.park_code = *68\n",
        "features.call_park.group_enable = 1\n",
        "linekey.2.value = park-101\n",
        "linekey.2.extension = *88101\n",
        &format!("linekey.3.value = parkgroup-{group}\n"),
        "linekey.4.value = 102\n",
        "linekey.6.value = park-103\n",
        "static.auto_provision.server.url = http://pbx.test:8080/provisioning/yealink/\n",
    ] {
        assert!(body.contains(needle), "{needle} not in {body}");
    }
    assert!(!body.contains("password"), "{body}");
    let (_, p) = call(
        &s,
        "GET",
        &format!("/api/v1/tenants/acme.test/phones/{YEALINK_MAC}"),
        ADMIN,
        None,
    )
    .await;
    assert!(p["provisioned_at"].is_string(), "{p}");
    // Fanvil: its file, in Fanvil's frame.
    let (st, h, body) = fetch(
        &app,
        &format!("/provisioning/fanvil/{FANVIL_MAC}.cfg"),
        Some((FANVIL_MAC, &pw_f)),
        peer,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(h["content-type"], "text/plain; charset=utf-8");
    assert!(body.starts_with("<<VOIP CONFIG FILE>>"), "{body}");
    assert!(body.ends_with("<<END OF FILE>>\r\n"), "{body}");
    for needle in [
        "SIP1 Register User :102\r\n",
        "SIP1 Register Addr :acme.test\r\n",
        "Fkey2 Value        :park-102@1/ba\r\n",
    ] {
        assert!(body.contains(needle), "{needle} not in {body}");
    }
    // The common Yealink file asks for nothing and holds nothing.
    let (st, _, body) = fetch(&app, "/provisioning/yealink/y000000000028.cfg", None, peer).await;
    assert_eq!((st, body.as_str()), (StatusCode::OK, "#!version:1.0.0.1\n"));
    // No credentials: the one challenge, on every vendor path.
    let (_, h0, b0) = fetch(&app, &format!("/provisioning/snom/{MAC}.xml"), None, peer).await;
    for path in [
        format!("/provisioning/yealink/{YEALINK_MAC}.cfg"),
        "/provisioning/yealink/805ec0ffffff.cfg".to_string(),
        format!("/provisioning/fanvil/{FANVIL_MAC}.cfg"),
    ] {
        let (st, h, b) = fetch(&app, &path, None, peer).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(h.get("www-authenticate"), h0.get("www-authenticate"));
        assert_eq!(b, b0);
    }
    // The right credentials under another vendor's path: the same 404 as
    // wrong credentials.
    let (_, _, wrong) = fetch(
        &app,
        &format!("/provisioning/yealink/{YEALINK_MAC}.cfg"),
        Some((YEALINK_MAC, "wrong")),
        peer,
    )
    .await;
    for (path, user, pw) in [
        (
            format!("/provisioning/snom/{YEALINK_MAC}.xml"),
            YEALINK_MAC,
            &pw_y,
        ),
        (
            format!("/provisioning/fanvil/{YEALINK_MAC}.cfg"),
            YEALINK_MAC,
            &pw_y,
        ),
        (
            format!("/provisioning/yealink/{FANVIL_MAC}.cfg"),
            FANVIL_MAC,
            &pw_f,
        ),
        (
            format!("/provisioning/snom/{FANVIL_MAC}/park.xml"),
            FANVIL_MAC,
            &pw_f,
        ),
        (format!("/provisioning/yealink/{MAC}.cfg"), MAC, &pw_s),
        (format!("/provisioning/fanvil/{MAC}.cfg"), MAC, &pw_s),
    ] {
        let (st, _, b) = fetch(&app, &path, Some((user, pw)), peer).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(b, wrong, "{path}");
    }
    // Nonsense names are 404.
    for path in [
        "/provisioning/yealink/805ec0a1b2c3.xml",
        "/provisioning/fanvil/y000000000028.cfg",
    ] {
        let (st, _, _) = fetch(&app, path, None, peer).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn yealink_and_fanvil_phones_never_get_another_tenants_file() {
    let s = state().await;
    setup_phone_tenant(&s, "a.test").await;
    setup_phone_tenant(&s, "b.test").await;
    let (_, pw_a) = create_phone(
        &s,
        "a.test",
        phone_of("yealink", "T46U", "805ec0aaaaaa", "101"),
    )
    .await;
    let (_, pw_b) = create_phone(
        &s,
        "b.test",
        phone_of("yealink", "T46U", "805ec0bbbbbb", "101"),
    )
    .await;
    let (_, pw_c) = create_phone(
        &s,
        "b.test",
        phone_of("fanvil", "X6U", "0c383ecccccc", "102"),
    )
    .await;
    let app = router(s.clone());
    let peer = "198.51.100.1:1";
    let (st, _, body) = fetch(
        &app,
        "/provisioning/yealink/805ec0aaaaaa.cfg",
        Some(("805ec0aaaaaa", &pw_a)),
        peer,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        body.contains("a.test") && !body.contains("b.test"),
        "{body}"
    );
    for (path, user, pw) in [
        (
            "/provisioning/yealink/805ec0bbbbbb.cfg",
            "805ec0aaaaaa",
            &pw_a,
        ),
        (
            "/provisioning/yealink/805ec0bbbbbb.cfg",
            "805ec0bbbbbb",
            &pw_a,
        ),
        (
            "/provisioning/yealink/805ec0aaaaaa.cfg",
            "805ec0bbbbbb",
            &pw_b,
        ),
        (
            "/provisioning/fanvil/0c383ecccccc.cfg",
            "0c383ecccccc",
            &pw_a,
        ),
        (
            "/provisioning/fanvil/0c383ecccccc.cfg",
            "805ec0aaaaaa",
            &pw_a,
        ),
    ] {
        let (st, _, _) = fetch(&app, path, Some((user, pw)), peer).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path} as {user}");
    }
    let (st, _, body) = fetch(
        &app,
        "/provisioning/fanvil/0c383ecccccc.cfg",
        Some(("0c383ecccccc", &pw_c)),
        peer,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        body.contains("b.test") && !body.contains("a.test"),
        "{body}"
    );
}

#[tokio::test]
async fn wrong_vendor_paths_count_as_failed_attempts() {
    let s = state().await;
    setup_phone_tenant(&s, "acme.test").await;
    let (_, pw) = create_phone(
        &s,
        "acme.test",
        phone_of("yealink", "T54W", YEALINK_MAC, "101"),
    )
    .await;
    let app = router(s.clone());
    let prober = "203.0.113.20:1";
    for i in 0..20 {
        let (st, _, _) = fetch(
            &app,
            &format!("/provisioning/fanvil/{YEALINK_MAC}.cfg"),
            Some((YEALINK_MAC, &pw)),
            prober,
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "attempt {i}");
    }
    let file = format!("/provisioning/yealink/{YEALINK_MAC}.cfg");
    let (st, _, _) = fetch(&app, &file, Some((YEALINK_MAC, &pw)), prober).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    let (st, _, _) = fetch(&app, &file, Some((YEALINK_MAC, &pw)), "203.0.113.21:1").await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn failed_provisioning_attempts_are_rate_limited_per_source() {
    let s = state().await;
    setup_phone_tenant(&s, "acme.test").await;
    let (_, pw) = create_phone(&s, "acme.test", d785(MAC, "101")).await;
    let app = router(s.clone());
    let file = format!("/provisioning/snom/{MAC}.xml");
    let attacker = "203.0.113.9:4000";
    for i in 0..20 {
        let mac = format!("000413{i:06x}");
        let (st, _, _) = fetch(
            &app,
            &format!("/provisioning/snom/{mac}.xml"),
            Some((&mac, "guess")),
            attacker,
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "attempt {i}");
    }
    // Out of attempts: 429 before anything is checked, right credentials too.
    let (st, h, _) = fetch(&app, &file, Some((MAC, &pw)), attacker).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert!(h.contains_key("retry-after"));
    let (st, _, _) = fetch(&app, &file, None, "203.0.113.9:4001").await;
    assert_eq!(
        st,
        StatusCode::TOO_MANY_REQUESTS,
        "same address, other port"
    );
    // Challenges cost nothing: many phones behind one address all get one.
    for _ in 0..30 {
        let (st, _, _) = fetch(&app, &file, None, "198.51.100.99:1").await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        fetch(&app, &file, Some((MAC, &pw)), "198.51.100.99:2")
            .await
            .0,
        StatusCode::OK
    );
    // Another address, and another IPv6 /64, are not affected.
    assert_eq!(
        fetch(&app, &file, Some((MAC, &pw)), "203.0.113.10:1")
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        fetch(&app, &file, Some((MAC, &pw)), "[2001:db8:1:2::5]:1")
            .await
            .0,
        StatusCode::OK
    );
    // Successes cost nothing.
    for _ in 0..30 {
        assert_eq!(
            fetch(&app, &file, Some((MAC, &pw)), "198.51.100.4:1")
                .await
                .0,
            StatusCode::OK
        );
    }
}

#[test]
fn the_limiter_refills_and_stays_bounded() {
    use crate::{Guard, GuardConfig};
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::{Duration, Instant};
    let g = Guard::new(GuardConfig {
        burst: 2.0,
        per_second: 1.0,
        max_sources: 3,
    });
    let t0 = Instant::now();
    let a = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    assert!(g.allows(a, t0));
    g.failed(a, t0);
    g.failed(a, t0);
    assert!(!g.allows(a, t0));
    assert!(!g.allows(a, t0 + Duration::from_millis(900)));
    assert!(g.allows(a, t0 + Duration::from_millis(1000)));
    for i in 2..10 {
        g.failed(
            Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, i))),
            t0 + Duration::from_secs(1),
        );
        assert!(g.sources() <= 3);
    }
    // Unknown peers share one bucket.
    g.failed(None, t0);
    g.failed(None, t0);
    assert!(!g.allows(None, t0));
}

fn parked_call(tenant: &str, id: &str, on: &str, caller: &str, at: i64) -> orbit_store::ParkedCall {
    orbit_store::ParkedCall {
        id: id.into(),
        call_id: format!("call-{id}"),
        tenant_id: tenant.into(),
        parked_on: on.into(),
        parked_by: "104".into(),
        caller_number: caller.into(),
        caller_name: format!("Caller {caller}"),
        parked_at: at,
        recall_at: None,
        state: "parked".into(),
        recalling: None,
        retrieve_number: format!("*88{on}*{id}"),
    }
}

#[tokio::test]
async fn visual_park_pages_list_the_parked_calls_to_retrieve() {
    let control = Arc::new(FakeControl::default());
    let mut s = state().await;
    s.control = control.clone();
    setup_phone_tenant(&s, "acme.test").await;
    setup_phone_tenant(&s, "other.test").await;
    let t = tenant_id(&s, "acme.test");
    let o = tenant_id(&s, "other.test");
    let (_, pw) = create_phone(&s, "acme.test", d785(MAC, "101")).await;
    let (_, pw3) = create_phone(&s, "acme.test", d785("000413a1b2c4", "103")).await;
    let app = router(s.clone());
    let peer = "192.0.2.7:1";
    let page = |p: &str| format!("/provisioning/snom/{MAC}/{p}");
    // Nothing parked: a clear text.
    let (st, _, body) = fetch(&app, &page("park.xml"), Some((MAC, &pw)), peer).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        body.contains("<SnomIPPhoneText>") && body.contains("No calls are parked on 101."),
        "{body}"
    );
    let now = now_ms();
    control.parked.lock().unwrap().extend([
        parked_call(&t, "1", "101", "0301111", now - 65_000),
        parked_call(&t, "2", "102", "0302222", now - 5_000),
        parked_call(&t, "3", "101", "0303333", now - 1_000),
        parked_call(&t, "4", "103", "0304444", now - 1_000),
        // Another tenant's call parked on "101": never shown.
        parked_call(&o, "5", "101", "0305555", now - 1_000),
    ]);
    let (st, _, body) = fetch(&app, &page("park.xml"), Some((MAC, &pw)), peer).await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("<SnomIPPhoneDirectory>"), "{body}");
    assert!(body.contains("<Title>Parked on 101 (2)</Title>"), "{body}");
    assert!(
        body.contains("<Telephone>*88101*1</Telephone>")
            && body.contains("<Telephone>*88101*3</Telephone>")
    );
    assert!(body.contains("Caller 0301111 0301111, 1:0"), "{body}");
    assert!(
        body.find("*88101*1").unwrap() < body.find("*88101*3").unwrap(),
        "oldest first"
    );
    assert!(!body.contains("0305555") && !body.contains("0302222"));
    // The group: members 101 and 102, with the count.
    let (st, _, body) = fetch(&app, &page("group-park.xml"), Some((MAC, &pw)), peer).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        body.contains("<Title>Front desk: 3 parked</Title>"),
        "{body}"
    );
    assert!(
        body.contains("0302222 on 102") && !body.contains("0304444") && !body.contains("0305555")
    );
    // A colleague's park, only because a key watches it.
    let (st, _, body) = fetch(&app, &page("park-103.xml"), Some((MAC, &pw)), peer).await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("<Telephone>*88103*4</Telephone>"), "{body}");
    let (st, _, _) = fetch(&app, &page("park-104.xml"), Some((MAC, &pw)), peer).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _, _) = fetch(&app, &page("nope.xml"), Some((MAC, &pw)), peer).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Pages need the phone's own credentials.
    let (st, _, _) = fetch(&app, &page("park.xml"), None, peer).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _, _) = fetch(&app, &page("park.xml"), Some(("000413a1b2c4", &pw3)), peer).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // 103 is in no park group.
    let (st, _, body) = fetch(
        &app,
        "/provisioning/snom/000413a1b2c4/group-park.xml",
        Some(("000413a1b2c4", &pw3)),
        peer,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        body.contains("Extension 103 is in no call park group."),
        "{body}"
    );
    // Its configuration has no Group Park soft key and a cleared group key.
    let (_, _, body) = fetch(
        &app,
        "/provisioning/snom/000413a1b2c4.xml",
        Some(("000413a1b2c4", &pw3)),
        peer,
    )
    .await;
    assert!(
        body.contains("F_HOLD F_TRANSFER GP_XML[0]</call_screen") && !body.contains("parkgroup-"),
        "{body}"
    );
    assert!(
        body.contains("<fkey idx=\"1\" context=\"1\" label=\"\" perm=\"R\">none</fkey>"),
        "{body}"
    );
}

#[tokio::test]
async fn deleting_the_extension_leaves_a_phone_without_identity() {
    let s = state().await;
    setup_phone_tenant(&s, "acme.test").await;
    let (_, pw) = create_phone(&s, "acme.test", d785(MAC, "101")).await;
    let (st, _) = call(
        &s,
        "DELETE",
        "/api/v1/tenants/acme.test/extensions/101",
        ADMIN,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, p) = call(
        &s,
        "GET",
        &format!("/api/v1/tenants/acme.test/phones/{MAC}"),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(
        (p["extension"].clone(), p["config_version"].clone()),
        (Value::Null, json!(2))
    );
    let app = router(s.clone());
    let (st, _, body) = fetch(
        &app,
        &format!("/provisioning/snom/{MAC}.xml"),
        Some((MAC, &pw)),
        "192.0.2.1:1",
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        body.contains("<user_active idx=\"1\" perm=\"R\">off</user_active>"),
        "{body}"
    );
    assert!(body.contains("<user_hash idx=\"1\" perm=\"R\"></user_hash>"));
    let (_, _, body) = fetch(
        &app,
        &format!("/provisioning/snom/{MAC}/park.xml"),
        Some((MAC, &pw)),
        "192.0.2.1:1",
    )
    .await;
    assert!(body.contains("This phone has no extension."), "{body}");
}
