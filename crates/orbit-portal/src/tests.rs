//! The portal through its router, without a socket: sign-in, CSRF,
//! lockout, tenant isolation, and forms refused whole.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use orbit_http::ApiState;
use tower::ServiceExt;

use crate::{hash_password, router};

struct NoBindings;
impl orbit_store::LiveBindings for NoBindings {
    fn tenant_bindings(&self, _tenant_id: &str) -> Vec<orbit_store::Binding> {
        Vec::new()
    }
}

struct NoMusic;
impl orbit_store::MusicOnHold for NoMusic {
    fn info(&self, _t: &str) -> orbit_store::MusicInfo {
        orbit_store::MusicInfo {
            custom: false,
            seconds: 10.0,
        }
    }
    fn replace(&self, _t: &str, _w: &[u8]) -> Result<orbit_store::MusicInfo, String> {
        Err("no".into())
    }
    fn reset(&self, _t: &str) -> Result<(), String> {
        Ok(())
    }
}

async fn state() -> ApiState {
    let dir = std::env::temp_dir().join(format!("orbit-portal-{}", crate::session::random_token()));
    std::fs::create_dir_all(&dir).unwrap();
    let store =
        orbit_store::Store::open(&format!("sqlite://{}?mode=rwc", dir.join("t.db").display()))
            .await
            .unwrap();
    ApiState {
        store,
        admin_token_hash: orbit_http::admin_token_hash("admin-secret"),
        metrics: Arc::new(String::new),
        bindings: Arc::new(NoBindings),
        calls: Arc::new(orbit_store::NoCalls),
        music: Arc::new(NoMusic),
        control: Arc::new(orbit_store::NoCallControl),
    }
}

/// A browser: keeps cookies, knows the page's CSRF token.
struct Client {
    s: ApiState,
    cookies: Vec<(String, String)>,
    csrf: String,
}

struct Resp {
    status: StatusCode,
    location: String,
    body: String,
}

impl Client {
    fn new(s: &ApiState) -> Client {
        Client {
            s: s.clone(),
            cookies: Vec::new(),
            csrf: String::new(),
        }
    }

    async fn send(&mut self, method: &str, path: &str, form: Option<&[(&str, &str)]>) -> Resp {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::COOKIE, cookie.join("; "));
        let body = match form {
            Some(f) => {
                req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                f.iter()
                    .map(|(k, v)| format!("{}={}", crate::html::url(k), crate::html::url(v)))
                    .collect::<Vec<_>>()
                    .join("&")
            }
            None => String::new(),
        };
        let res = router(self.s.clone())
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        for c in res.headers().get_all(header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (kv, _) = c.split_once(';').unwrap();
            let (k, v) = kv.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            self.cookies.push((k.to_string(), v.to_string()));
        }
        let status = res.status();
        let location = res
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = String::from_utf8(bytes.to_vec()).unwrap();
        if let Some(i) = body.find(r#"name="_csrf" value=""#) {
            let rest = &body[i + 20..];
            self.csrf = rest[..rest.find('"').unwrap()].to_string();
        }
        Resp {
            status,
            location,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Resp {
        self.send("GET", path, None).await
    }

    /// POST a form with the current CSRF token.
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let csrf = self.csrf.clone();
        let mut f = vec![("_csrf", csrf.as_str())];
        f.extend_from_slice(fields);
        self.send("POST", path, Some(&f)).await
    }

    async fn login(&mut self, user: &str, password: &str) -> Resp {
        self.get("/portal/login").await;
        self.post(
            "/portal/login",
            &[("username", user), ("password", password)],
        )
        .await
    }
}

struct World {
    s: ApiState,
    a: Arc<orbit_store::Tenant>,
    b: Arc<orbit_store::Tenant>,
}

async fn world() -> World {
    let s = state().await;
    let a = s.store.create_tenant("Acme", "acme.example").await.unwrap();
    let b = s
        .store
        .create_tenant("Other", "other.example")
        .await
        .unwrap();
    let h = hash_password("password-1");
    s.store.create_portal_user("root", &h, None).await.unwrap();
    s.store
        .create_portal_user("acme", &h, Some(&a.id))
        .await
        .unwrap();
    s.store
        .create_portal_user("other", &h, Some(&b.id))
        .await
        .unwrap();
    let a = s.store.directory().tenant(&a.id).unwrap();
    let b = s.store.directory().tenant(&b.id).unwrap();
    World { s, a, b }
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_it() {
    let w = world().await;
    let mut c = Client::new(&w.s);
    assert_eq!(
        c.get("/portal/admin/tenants").await.location,
        "/portal/login"
    );
    let r = c.login("root", "password-1").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location, "/portal/admin/tenants");
    let r = c.get("/portal/admin/tenants").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("acme.example"));
    let r = c.post("/portal/logout", &[]).await;
    assert_eq!(r.location, "/portal/login");
    assert_eq!(
        c.get("/portal/admin/tenants").await.location,
        "/portal/login"
    );
}

#[tokio::test]
async fn cookies_are_http_only_same_site_strict_and_secure_behind_https() {
    let w = world().await;
    let req = Request::builder()
        .uri("/portal/login")
        .header("x-forwarded-proto", "https")
        .body(Body::empty())
        .unwrap();
    let res = router(w.s.clone()).oneshot(req).await.unwrap();
    let c = res.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"),
        "{c}"
    );
    let req = Request::builder()
        .uri("/portal/login")
        .body(Body::empty())
        .unwrap();
    let res = router(w.s.clone()).oneshot(req).await.unwrap();
    assert!(!res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Secure"));
}

#[tokio::test]
async fn a_form_without_the_csrf_token_is_refused_and_changes_nothing() {
    let w = world().await;
    let mut c = Client::new(&w.s);
    c.login("acme", "password-1").await;
    c.get(&format!("/portal/t/{}/extensions", w.a.id)).await;
    c.csrf = "forged".into();
    let r = c
        .post(
            &format!("/portal/t/{}/extensions", w.a.id),
            &[
                ("number", "101"),
                ("password", "secret-101"),
                ("display_name", ""),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(w.s.store.directory().extension(&w.a.id, "101").is_none());
    // The sign-in form needs its token too.
    let mut c = Client::new(&w.s);
    let r = c
        .send(
            "POST",
            "/portal/login",
            Some(&[("username", "acme"), ("password", "password-1")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_account() {
    let w = world().await;
    let mut c = Client::new(&w.s);
    for i in 0..4 {
        let r = c.login("acme", "wrong-password").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let r = c.login("acme", "wrong-password").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.body.contains("locked"));
    let r = c.login("acme", "password-1").await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the right password waits for the lock too"
    );
    // Other accounts are not affected.
    assert_eq!(
        c.login("other", "password-1").await.status,
        StatusCode::SEE_OTHER
    );
    // Unknown users get the same answer as wrong passwords.
    assert_eq!(
        c.login("nobody", "password-1").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_tenant_admin_cannot_open_another_tenants_pages() {
    let w = world().await;
    let g =
        w.s.store
            .create_park_group(
                &w.b.id,
                orbit_store::ParkGroupSpec {
                    name: "B".into(),
                    members: vec![],
                    recall: None,
                },
            )
            .await
            .unwrap();
    let mut c = Client::new(&w.s);
    c.login("acme", "password-1").await;
    assert_eq!(
        c.get(&format!("/portal/t/{}/extensions", w.a.id))
            .await
            .status,
        StatusCode::OK
    );
    for key in [w.b.id.as_str(), w.b.domain.as_str()] {
        for page in [
            "extensions",
            "ring-groups",
            "call-park",
            "phones",
            "live",
            "live/events",
            "log",
            "log.csv",
            &format!("call-park/groups/{}", g.id),
        ] {
            let r = c.get(&format!("/portal/t/{key}/{page}")).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{page} of {key}");
        }
    }
    for page in [
        "/portal/admin/tenants",
        &format!("/portal/admin/tenants/{}", w.b.id),
    ] {
        assert_eq!(c.get(page).await.status, StatusCode::NOT_FOUND, "{page}");
    }
    // Writes too, with a valid token of the signed-in session.
    c.get(&format!("/portal/t/{}/extensions", w.a.id)).await;
    let r = c
        .post(
            &format!("/portal/t/{}/extensions", w.b.id),
            &[("number", "201"), ("password", "secret-201")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(w.s.store.directory().extension(&w.b.id, "201").is_none());
    let r = c
        .post(
            &format!("/portal/t/{}/call-park/groups/{}/delete", w.b.id, g.id),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(w.s.store.directory().park_group(&w.b.id, &g.id).is_some());
    // A group id of another tenant under one's own tenant is not found either.
    assert_eq!(
        c.get(&format!("/portal/t/{}/call-park/groups/{}", w.a.id, g.id))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn refused_forms_show_the_error_next_to_the_field_and_save_nothing() {
    let w = world().await;
    let mut c = Client::new(&w.s);
    c.login("acme", "password-1").await;
    let ext = format!("/portal/t/{}/extensions", w.a.id);
    c.get(&ext).await;
    let r = c
        .post(
            &ext,
            &[
                ("number", "10a"),
                ("password", "secret-101"),
                ("display_name", "Desk"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body
            .contains(r#"data-field="number">number must be 1 to 15 digits"#),
        "{}",
        r.body
    );
    assert!(r.body.contains(r#"value="Desk""#), "typed values are kept");
    for n in ["101", "102", "103"] {
        let r = c
            .post(
                &ext,
                &[
                    ("number", n),
                    ("password", "secret-pass"),
                    ("display_name", ""),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    }
    let park = format!("/portal/t/{}/call-park", w.a.id);
    c.get(&park).await;
    let r = c
        .post(
            &format!("{park}/groups"),
            &[("name", "Front"), ("members", "101, 102")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = c
        .post(
            &format!("{park}/groups"),
            &[("name", "Back"), ("members", "103")],
        )
        .await;
    let back = r.location.clone();
    c.get(&back).await;
    let r = c
        .post(&format!("{back}/members"), &[("member", "101")])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.body.contains(r#"data-field="members">"#) && r.body.contains("101"),
        "{}",
        r.body
    );
    let g =
        w.s.store
            .directory()
            .park_groups(&w.a.id)
            .iter()
            .find(|g| g.name == "Back")
            .unwrap()
            .clone();
    assert_eq!(g.members, ["103"], "nothing half-saved");
    // Reorder and settings.
    let front =
        w.s.store
            .directory()
            .park_groups(&w.a.id)
            .iter()
            .find(|g| g.name == "Front")
            .unwrap()
            .id
            .clone();
    let r = c
        .post(&format!("{park}/groups/{front}/members/101/down"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        w.s.store
            .directory()
            .park_group(&w.a.id, &front)
            .unwrap()
            .members,
        ["102", "101"]
    );
    c.get(&park).await;
    let base: Vec<(&str, &str)> = vec![
        ("enabled", "true"),
        ("park_code", "*68"),
        ("group_park_code", "*58"),
        ("retrieve_code", "*88"),
        ("notify_parker", "false"),
        ("max_parked_per_extension", "10"),
        ("recall.recall_to", "PARKER_ONLY"),
        ("recall.display_prefix", "Recall:"),
    ];
    let mut bad = base.clone();
    bad.push(("recall.recall_time_s", "901"));
    let r = c.post(&park, &bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains(r#"data-field="recall.recall_time_s""#),
        "{}",
        r.body
    );
    assert_eq!(
        w.s.store.directory().park_settings(&w.a.id).updated_at,
        0,
        "nothing saved"
    );
    let mut good = base.clone();
    good.push(("recall.recall_time_s", "30"));
    assert_eq!(c.post(&park, &good).await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        w.s.store
            .directory()
            .park_settings(&w.a.id)
            .recall
            .recall_time_s,
        30
    );
}

#[tokio::test]
async fn the_event_log_filters_and_exports_csv() {
    let w = world().await;
    let mut c = Client::new(&w.s);
    c.login("acme", "password-1").await;
    let r = c
        .get(&format!(
            "/portal/t/{}/log?extension=101&since=2024-05-01T12:00&until=",
            w.a.id
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = c
        .get(&format!("/portal/t/{}/log?since=yesterday", w.a.id))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains(r#"data-field="since""#));
    let r = c.get(&format!("/portal/t/{}/log.csv", w.a.id)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.starts_with("type,time,kind"));
}

#[tokio::test]
async fn changing_the_password_signs_out_other_sessions() {
    let w = world().await;
    let mut a = Client::new(&w.s);
    let mut b = Client::new(&w.s);
    a.login("acme", "password-1").await;
    b.login("acme", "password-1").await;
    a.get("/portal/account").await;
    let r = a
        .post(
            "/portal/account",
            &[
                ("current", "wrong-one"),
                ("password", "password-2"),
                ("confirm", "password-2"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains(r#"data-field="current""#));
    let r = a
        .post(
            "/portal/account",
            &[
                ("current", "password-1"),
                ("password", "password-2"),
                ("confirm", "password-2"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(a.get("/portal/account").await.status, StatusCode::OK);
    assert_eq!(b.get("/portal/account").await.location, "/portal/login");
    assert_eq!(
        Client::new(&w.s).login("acme", "password-1").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        Client::new(&w.s).login("acme", "password-2").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn deleting_a_tenant_removes_its_admins_and_their_sessions() {
    let w = world().await;
    let mut other = Client::new(&w.s);
    other.login("other", "password-1").await;
    let mut root = Client::new(&w.s);
    root.login("root", "password-1").await;
    let del = format!("/portal/admin/tenants/{}/delete", w.b.id);
    root.get(&del).await;
    let r = root.post(&del, &[("confirm", "wrong.example")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(w.s.store.directory().tenant(&w.b.id).is_some());
    let r = root.post(&del, &[("confirm", "other.example")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(w.s.store.directory().tenant(&w.b.id).is_none());
    assert_eq!(other.get("/portal/").await.location, "/portal/login");
    assert!(w
        .s
        .store
        .portal_user_by_name("other")
        .await
        .unwrap()
        .is_none());
}
