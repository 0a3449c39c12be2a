use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::{admin_token_hash, router, ApiState, API_PATHS};

struct NoBindings;

impl orbit_store::LiveBindings for NoBindings {
    fn tenant_bindings(&self, _tenant_id: &str) -> Vec<orbit_store::Binding> {
        Vec::new()
    }
}

async fn state() -> ApiState {
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
    for p in API_PATHS {
        assert!(
            doc["paths"].get(*p).is_some(),
            "{p} missing from openapi.json"
        );
    }
    let (st, _) = call(&s, "GET", "/healthz", None, None).await;
    assert_eq!(st, StatusCode::OK);
}
