//! Sign-in, sessions and CSRF. The session cookie is random, stored only as
//! its SHA-256, `HttpOnly; SameSite=Strict; Path=/portal`, and `Secure`
//! when the request came over HTTPS (a TLS proxy in front sets
//! `X-Forwarded-Proto: https`). Every POST carries the session's CSRF token
//! (`_csrf` field or `X-CSRF-Token` header); the sign-in form carries one
//! tied to a short-lived pre-session cookie. After [`MAX_FAILURES`] wrong
//! passwords in a row an account is locked for [`LOCKOUT_MS`].

use std::sync::Arc;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use orbit_http::ApiState;
use orbit_store::{now_ms, Tenant};
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::html::{esc, page};
use crate::{not_found, Fields};

pub const SESSION_COOKIE: &str = "orbit_session";
const LOGIN_COOKIE: &str = "orbit_login";
/// A session lasts this long from sign-in.
pub const SESSION_MS: i64 = 12 * 3600 * 1000;
/// Wrong passwords in a row before the account is locked.
pub const MAX_FAILURES: i64 = 5;
/// How long a locked account refuses sign-in.
pub const LOCKOUT_MS: i64 = 15 * 60 * 1000;

/// The signed-in user of a request.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub username: String,
    /// `None`: system admin.
    pub tenant_id: Option<String>,
    pub csrf: String,
}

impl Session {
    pub fn is_system_admin(&self) -> bool {
        self.tenant_id.is_none()
    }

    /// The tenant named by `key` (id or domain) if this user may manage it;
    /// another tenant's pages are "not found", as in the API.
    pub fn tenant(&self, s: &ApiState, key: &str) -> Result<Arc<Tenant>, Response> {
        let t = s
            .store
            .directory()
            .tenant_by_key(key)
            .ok_or_else(|| not_found(Some(self)))?;
        match &self.tenant_id {
            None => Ok(t),
            Some(id) if *id == t.id => Ok(t),
            Some(_) => Err(not_found(Some(self))),
        }
    }

    /// 403 unless the form carries this session's CSRF token.
    pub fn check_csrf(&self, f: &Fields) -> Result<(), Response> {
        check_token(&self.csrf, f.get("_csrf").unwrap_or(""))
    }

    /// As [`Session::check_csrf`], for requests that send the token in a header.
    pub fn check_csrf_header(&self, h: &HeaderMap) -> Result<(), Response> {
        let got = h
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        check_token(&self.csrf, got)
    }

    pub fn require_system_admin(&self) -> Result<(), Response> {
        if self.is_system_admin() {
            Ok(())
        } else {
            Err(not_found(Some(self)))
        }
    }
}

fn check_token(want: &str, got: &str) -> Result<(), Response> {
    if !want.is_empty() && bool::from(want.as_bytes().ct_eq(got.as_bytes())) {
        Ok(())
    } else {
        Err((StatusCode::FORBIDDEN, Html(page("Form expired", None, None, r#"<p class="error banner">The form was not accepted (missing or stale security token). Go back, reload the page and try again.</p>"#))).into_response())
    }
}

pub fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

fn cookie_value<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn is_https(h: &HeaderMap) -> bool {
    h.get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn cookie(h: &HeaderMap, name: &str, value: &str, max_age_s: i64) -> String {
    format!(
        "{name}={value}; Path=/portal; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{}",
        if is_https(h) { "; Secure" } else { "" }
    )
}

impl FromRequestParts<ApiState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &ApiState) -> Result<Self, Response> {
        let to_login = || Redirect::to("/portal/login").into_response();
        let token = cookie_value(&parts.headers, SESSION_COOKIE).ok_or_else(to_login)?;
        match s.store.portal_session(token).await {
            Ok(Some(ps)) => Ok(Session {
                user_id: ps.user.id,
                username: ps.user.username,
                tenant_id: ps.user.tenant_id,
                csrf: ps.csrf,
            }),
            Ok(None) => Err(to_login()),
            Err(e) => {
                tracing::error!(error = %e, "portal session lookup");
                Err(StatusCode::INTERNAL_SERVER_ERROR.into_response())
            }
        }
    }
}

/// An argon2id hash (PHC string) of `password`. CPU-heavy: call it off the async threads.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters")
        .to_string()
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Hash off the async threads.
pub async fn hash_async(password: String) -> String {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .expect("hashing task")
}

fn login_page(csrf: &str, username: &str, error: Option<&str>) -> String {
    let e = error
        .map(|m| {
            format!(
                r#"<p class="error banner" role="alert" id="login-error">{}</p>"#,
                esc(m)
            )
        })
        .unwrap_or_default();
    page(
        "Sign in",
        None,
        None,
        &format!(
            r#"<form method="post" action="/portal/login" class="stack narrow" id="login">{e}<input type="hidden" name="_csrf" value="{c}"><label for="f-username"><span>Username</span><input type="text" name="username" id="f-username" value="{u}" autocomplete="username" autofocus></label><label for="f-password"><span>Password</span><input type="password" name="password" id="f-password" autocomplete="current-password"></label><button type="submit">Sign in</button></form>"#,
            c = esc(csrf),
            u = esc(username)
        ),
    )
}

fn with_login_cookie(h: &HeaderMap, body: String, status: StatusCode) -> Response {
    let pre = random_token();
    let body = body.replace("{{LOGIN_CSRF}}", &pre);
    (
        status,
        [(header::SET_COOKIE, cookie(h, LOGIN_COOKIE, &pre, 3600))],
        Html(body),
    )
        .into_response()
}

pub async fn login_form(headers: HeaderMap) -> Response {
    with_login_cookie(
        &headers,
        login_page("{{LOGIN_CSRF}}", "", None),
        StatusCode::OK,
    )
}

pub async fn login(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    let f = Fields(f);
    let username = f.get("username").unwrap_or("").trim().to_string();
    let password = f.get("password").unwrap_or("").to_string();
    let fail = |msg: &str, status| {
        with_login_cookie(
            &headers,
            login_page("{{LOGIN_CSRF}}", &username, Some(msg)),
            status,
        )
    };
    // The sign-in form's token must match its pre-session cookie.
    let pre = cookie_value(&headers, LOGIN_COOKIE).unwrap_or("");
    if pre.is_empty() || check_token(pre, f.get("_csrf").unwrap_or("")).is_err() {
        return fail(
            "The sign-in form expired; please try again.",
            StatusCode::FORBIDDEN,
        );
    }
    let user = match s.store.portal_user_by_name(&username).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "portal sign-in");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let now = now_ms();
    let wrong = "Wrong username or password.";
    let Some(user) = user else {
        // Same work as for a real account, so timing does not tell usernames apart.
        let _ = tokio::task::spawn_blocking(move || verify_password(&password, dummy_hash())).await;
        return fail(wrong, StatusCode::UNAUTHORIZED);
    };
    if user.locked_until > now {
        let mins = (user.locked_until - now + 59_999) / 60_000;
        return fail(
            &format!("Too many failed sign-ins: this account is locked for {mins} more minute(s)."),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let hash = user.password_hash.clone();
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    if !ok {
        let lock = (user.failed_logins + 1 >= MAX_FAILURES).then_some(now + LOCKOUT_MS);
        if let Err(e) = s.store.portal_login_failed(&user.id, lock).await {
            tracing::error!(error = %e, "portal sign-in");
        }
        tracing::info!(username = %user.username, locked = lock.is_some(), "portal sign-in failed");
        if lock.is_some() {
            return fail(
                &format!(
                    "Too many failed sign-ins: this account is locked for {} minutes.",
                    LOCKOUT_MS / 60_000
                ),
                StatusCode::TOO_MANY_REQUESTS,
            );
        }
        return fail(wrong, StatusCode::UNAUTHORIZED);
    }
    let token = random_token();
    let csrf = random_token();
    if let Err(e) = s
        .store
        .create_portal_session(&user.id, &token, &csrf, now + SESSION_MS)
        .await
    {
        tracing::error!(error = %e, "portal session");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let home = match &user.tenant_id {
        None => "/portal/admin/tenants".to_string(),
        Some(t) => format!("/portal/t/{}/extensions", crate::html::url(t)),
    };
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                cookie(&headers, SESSION_COOKIE, &token, SESSION_MS / 1000),
            ),
            (header::LOCATION, home),
        ],
    )
        .into_response()
}

pub async fn logout(
    State(s): State<ApiState>,
    session: Session,
    headers: HeaderMap,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(r) = session.check_csrf(&Fields(f)) {
        return r;
    }
    if let Some(token) = cookie_value(&headers, SESSION_COOKIE) {
        if let Err(e) = s.store.delete_portal_session(token).await {
            tracing::error!(error = %e, "portal sign-out");
        }
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie(&headers, SESSION_COOKIE, "", 0)),
            (header::LOCATION, "/portal/login".to_string()),
        ],
    )
        .into_response()
}

/// An argon2id hash of a random password nobody knows, for unknown
/// usernames (made once, with the same parameters as real ones).
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&random_token()))
}

fn account_page(session: &Session, err: Option<&orbit_http::ApiError>, ok: bool) -> String {
    use crate::html::{form, Field, Kind};
    let mut b = String::new();
    if ok {
        b.push_str(r#"<p class="ok banner" role="status" id="password-changed">Password changed. Your other sessions were signed out.</p>"#);
    }
    b.push_str(&form(
        "/portal/account",
        &session.csrf,
        "change-password",
        &[
            Field::new("current", "Current password", Kind::Password, ""),
            Field::new("password", "New password", Kind::Password, "").hint("8 to 128 characters"),
            Field::new("confirm", "New password again", Kind::Password, ""),
        ],
        err,
        "Change password",
    ));
    page(
        &format!("Account {}", session.username),
        Some(session),
        None,
        &b,
    )
}

pub async fn account(session: Session) -> Response {
    Html(account_page(&session, None, false)).into_response()
}

pub async fn change_password(
    State(s): State<ApiState>,
    session: Session,
    headers: HeaderMap,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    use orbit_http::ApiError;
    let f = Fields(f);
    if let Err(r) = session.check_csrf(&f) {
        return r;
    }
    let res = async {
        let user = s
            .store
            .portal_user_by_name(&session.username)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
        let current = f.str("current").to_string();
        let hash = user.password_hash.clone();
        let ok = tokio::task::spawn_blocking(move || verify_password(&current, &hash))
            .await
            .unwrap_or(false);
        if !ok {
            return Err(ApiError::invalid(
                "current",
                "this is not your current password",
            ));
        }
        let new = orbit_http::validate::password(f.str("password"))?;
        if f.str("confirm") != new {
            return Err(ApiError::invalid("confirm", "the two new passwords differ"));
        }
        let hash = hash_async(new).await;
        let token = cookie_value(&headers, SESSION_COOKIE).unwrap_or("");
        s.store.set_portal_password(&user.id, &hash, token).await?;
        Ok(())
    }
    .await;
    match res {
        Ok(()) => Html(account_page(&session, None, true)).into_response(),
        Err(e) => (e.status, Html(account_page(&session, Some(&e), false))).into_response(),
    }
}
