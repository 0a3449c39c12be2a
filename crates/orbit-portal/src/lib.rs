//! Orbit's web portal: server-rendered pages on the HTTP listener under
//! `/portal`, for the system admin (tenants and their admins) and for
//! tenant admins (extensions, ring groups, Advanced Services > Call Park,
//! phones, the Live view of parked calls, the event log). A little vanilla
//! JavaScript drives the Live page over server-sent events; CSS and
//! scripts are embedded at compile time (no CDN, no build step).
//!
//! Every form is checked by the same validation functions as the REST API
//! (`orbit_http::validate`) and written through the same store calls, so a
//! refused form changes nothing and shows the API's message next to its
//! field. It does not serve HTTPS itself (put a TLS proxy in front).

#![forbid(unsafe_code)]
// Handlers answer `Result<Response, Response>` (a page, or the redirect or
// error page that replaces it), as axum handlers commonly do.
#![allow(clippy::result_large_err)]

mod admin;
mod extensions;
pub mod html;
mod live;
mod log;
mod park;
mod phones;
pub mod session;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use orbit_http::{ApiError, ApiState};

pub use session::{hash_password, verify_password, Session};

/// A page or the response that replaces it (redirect, 403, 404).
pub type Page = Result<Response, Response>;

/// A submitted form as name/value pairs; the last value of a name wins
/// (a checked checkbox follows its hidden "false").
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// Trimmed; `None` when absent or blank.
    pub fn opt(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }
    pub fn str(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }
    /// An integer field; a non-number is the API's 422 on that field.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.opt(name) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::invalid(name, format!("{name} must be a whole number"))),
        }
    }
    pub fn flag(&self, name: &str) -> bool {
        self.get(name) == Some("true")
    }
}

const STYLE: &str = include_str!("assets/style.css");
const LIVE_JS: &str = include_str!("assets/live.js");
const PARK_JS: &str = include_str!("assets/park.js");

pub(crate) fn not_found(session: Option<&Session>) -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(html::page(
            "Not found",
            session,
            None,
            "<p>There is no such page, or it is not yours to see.</p>",
        )),
    )
        .into_response()
}

/// A store failure: logged, and a generic page for the user.
pub(crate) fn internal(e: orbit_store::StoreError) -> Response {
    tracing::error!(error = %e, "portal: store error");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html(html::page(
            "Error",
            None,
            None,
            "<p>Something went wrong on the server; it has been logged.</p>",
        )),
    )
        .into_response()
}

/// A store failure where no form is to blame: "not found" or [`internal`].
pub(crate) fn store_failure(session: &Session, e: orbit_store::StoreError) -> Response {
    match e {
        orbit_store::StoreError::NotFound(_) => not_found(Some(session)),
        e => internal(e),
    }
}

pub(crate) fn see_other(to: String) -> Response {
    Redirect::to(&to).into_response()
}

pub(crate) fn html(body: String) -> Response {
    Html(body).into_response()
}

/// A page re-rendered with a refused form: 422 (409 for a conflict), as the API.
pub(crate) fn refused(status: StatusCode, body: String) -> Response {
    (status, Html(body)).into_response()
}

async fn home(session: Session) -> Response {
    match &session.tenant_id {
        None => see_other("/portal/admin/tenants".into()),
        Some(t) => see_other(format!("/portal/t/{}/extensions", html::url(t))),
    }
}

fn asset(ct: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, ct),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// The portal's routes, for merging into the HTTP listener's router.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/portal/") }))
        .route("/portal", get(|| async { Redirect::to("/portal/") }))
        .route("/portal/", get(home))
        .route(
            "/portal/assets/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/portal/assets/live.js",
            get(|| async { asset("text/javascript; charset=utf-8", LIVE_JS) }),
        )
        .route(
            "/portal/assets/park.js",
            get(|| async { asset("text/javascript; charset=utf-8", PARK_JS) }),
        )
        .route(
            "/portal/login",
            get(session::login_form).post(session::login),
        )
        .route("/portal/logout", post(session::logout))
        .route(
            "/portal/account",
            get(session::account).post(session::change_password),
        )
        .merge(admin::routes())
        .merge(extensions::routes())
        .merge(park::routes())
        .merge(phones::routes())
        .merge(live::routes())
        .merge(log::routes())
        .layer(DefaultBodyLimit::max(orbit_http::MAX_BODY))
}

/// The portal as a router of its own, for merging into the API's.
pub fn router(state: ApiState) -> Router {
    routes().with_state(state)
}

#[cfg(test)]
mod tests;
