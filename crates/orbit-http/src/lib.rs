//! The HTTP side of Orbit: REST API v1 (JSON, bearer tokens), its OpenAPI
//! document, `/healthz` and `/metrics`, and the phone provisioning server
//! (`/provisioning/...`). It sees the store only; nothing of SIP internals.

mod auth;
mod error;
mod json;
mod parking;
mod provisioning;
mod routes;
pub mod validate;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use orbit_store::{ActiveCalls, CallControl, LiveBindings, MusicOnHold, Store};

pub use auth::admin_token_hash;
pub use error::ApiError;
pub use parking::run_command;
pub use provisioning::{base_url, Guard, GuardConfig};

/// Renders the Prometheus text exposition.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    /// SHA-256 of the admin token; the token itself is not kept.
    pub admin_token_hash: [u8; 32],
    pub metrics: MetricsRender,
    /// Current registrations, from whoever holds them live.
    pub bindings: Arc<dyn LiveBindings>,
    /// Calls in progress, from the call layer
    /// ([`orbit_store::NoCalls`] without one).
    pub calls: Arc<dyn ActiveCalls>,
    /// Music on hold per tenant, from the media side.
    pub music: Arc<dyn MusicOnHold>,
    /// Parked calls and call actions, from the call layer
    /// ([`orbit_store::NoCallControl`] without one).
    pub control: Arc<dyn CallControl>,
}

/// Bounds on the HTTP listener.
pub const MAX_BODY: usize = 64 * 1024;
pub const MAX_CONCURRENT: usize = 256;

/// The API, provisioning and health routes, without the listener-wide
/// concurrency bound (see [`bounded`]).
pub fn api_router(state: ApiState) -> Router {
    routes::routes()
        .merge(parking::routes())
        .merge(provisioning::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Bound a whole HTTP app (the API merged with other routers such as the
/// portal): a layer applies only to routes present when it is added, so
/// this goes on last.
pub fn bounded(app: Router) -> Router {
    app.layer(tower::limit::ConcurrencyLimitLayer::new(MAX_CONCURRENT))
}

/// The API on its own, bounded.
pub fn router(state: ApiState) -> Router {
    bounded(api_router(state))
}

/// Every path the router serves under /api/v1, as written in the OpenAPI document.
pub fn api_paths() -> Vec<&'static str> {
    routes::PATHS
        .iter()
        .chain(parking::PATHS)
        .chain(provisioning::PATHS)
        .copied()
        .collect()
}

#[cfg(test)]
mod tests;
