use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use orbit_store::{
    now_ms, ActiveCall, Binding, CallRecord, Extension, ParkGroup, ParkGroupPatch, ParkGroupSpec,
    ParkSettings, ParkSettingsSpec, RecallSettings, RingGroup, RingGroupPatch, RingGroupSpec,
    Tenant, MAX_PARKED_PER_EXTENSION, MAX_RECALL_ATTEMPTS, RECALL_RING_S, RECALL_TIME_S,
    RETRY_INTERVAL_S, RING_GROUP_WAIT_S,
};
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::Body;
use crate::{validate, ApiState};

pub const PATHS: &[&str] = &[
    "/api/v1/tenants",
    "/api/v1/tenants/{tenant}",
    "/api/v1/tenants/{tenant}/extensions",
    "/api/v1/tenants/{tenant}/extensions/{number}",
    "/api/v1/tenants/{tenant}/registrations",
    "/api/v1/tenants/{tenant}/tokens",
    "/api/v1/tenants/{tenant}/ring-groups",
    "/api/v1/tenants/{tenant}/ring-groups/{number}",
    "/api/v1/tenants/{tenant}/calls",
    "/api/v1/tenants/{tenant}/call-records",
    "/api/v1/tenants/{tenant}/music-on-hold",
    "/api/v1/tenants/{tenant}/call-park",
    "/api/v1/tenants/{tenant}/call-park-groups",
    "/api/v1/tenants/{tenant}/call-park-groups/{id}",
    "/api/v1/tenants/{tenant}/park-events",
];

/// Largest music-on-hold upload: about 17 minutes of 8 kHz 16-bit mono.
pub const MAX_MUSIC_BODY: usize = 16 * 1024 * 1024;

/// `ring_time_s` when a new ring group does not give one.
const DEFAULT_RING_TIME_S: u32 = 20;

const OPENAPI: &str = include_str!("openapi.json");

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/metrics", get(metrics))
        .route(
            "/api/v1/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route(PATHS[0], get(list_tenants).post(create_tenant))
        .route(
            PATHS[1],
            get(get_tenant).patch(patch_tenant).delete(delete_tenant),
        )
        .route(PATHS[2], get(list_extensions).post(create_extension))
        .route(
            PATHS[3],
            get(get_extension)
                .patch(patch_extension)
                .delete(delete_extension),
        )
        .route(PATHS[4], get(list_registrations))
        .route(PATHS[5], axum::routing::post(create_token))
        .route(PATHS[6], get(list_ring_groups).post(create_ring_group))
        .route(
            PATHS[7],
            get(get_ring_group)
                .patch(patch_ring_group)
                .delete(delete_ring_group),
        )
        .route(PATHS[8], get(list_calls))
        .route(PATHS[9], get(list_call_records))
        .route(
            PATHS[10],
            get(get_music)
                .put(put_music)
                .delete(delete_music)
                .layer(axum::extract::DefaultBodyLimit::max(MAX_MUSIC_BODY)),
        )
        .route(PATHS[11], get(get_park_settings).put(put_park_settings))
        .route(PATHS[12], get(list_park_groups).post(create_park_group))
        .route(
            PATHS[13],
            get(get_park_group)
                .patch(patch_park_group)
                .delete(delete_park_group),
        )
        .route(PATHS[14], get(list_park_events))
}

fn music_json(info: &orbit_store::MusicInfo) -> Value {
    json!({
        "source": if info.custom { "uploaded" } else { "builtin" },
        "seconds": (info.seconds * 100.0).round() / 100.0,
    })
}

async fn get_music(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    Ok(Json(music_json(&s.music.info(&t.id))))
}

/// The body is the WAV file itself (8 kHz mono 16-bit PCM).
async fn put_music(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    if body.is_empty() {
        return Err(ApiError::invalid(
            "body",
            "send the WAV file as the request body",
        ));
    }
    let music = s.music.clone();
    let id = t.id.clone();
    // Decoding and encoding a long file is CPU work: off the async threads.
    let info = tokio::task::spawn_blocking(move || music.replace(&id, &body))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "upload failed",
            )
        })?
        .map_err(|why| ApiError::invalid("body", why))?;
    Ok(Json(music_json(&info)))
}

async fn delete_music(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    s.music
        .reset(&t.id)
        .map_err(|why| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", why))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn metrics(State(s): State<ApiState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        (s.metrics)(),
    )
}

pub(crate) fn time(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

fn tenant_json(t: &Tenant) -> Value {
    json!({"id": t.id, "name": t.name, "domain": t.domain, "realm": t.realm,
           "created_at": time(t.created_at), "updated_at": time(t.updated_at)})
}

fn extension_json(e: &Extension) -> Value {
    json!({"number": e.number, "display_name": e.display_name,
           "created_at": time(e.created_at), "updated_at": time(e.updated_at)})
}

fn ring_group_json(g: &RingGroup) -> Value {
    json!({"number": g.number, "name": g.name, "members": g.members,
           "strategy": g.strategy.as_str(), "ring_time_s": g.ring_time_s,
           "no_answer_destination": g.no_answer_destination,
           "created_at": time(g.created_at), "updated_at": time(g.updated_at)})
}

fn binding_json(b: &Binding, now: i64) -> Value {
    json!({"extension": b.extension, "contact": b.contact, "contact_params": b.contact_params, "expires_at": time(b.expires_at),
           "expires_in": ((b.expires_at - now).max(0) + 999) / 1000, "source": b.source,
           "transport": b.transport, "user_agent": b.user_agent, "registered_at": time(b.registered_at)})
}

/// Times of calls are Unix milliseconds, as the `since`/`until` query takes them.
fn active_call_json(c: &ActiveCall) -> Value {
    json!({"id": c.id, "tenant_id": c.tenant_id, "caller": c.caller, "callee": c.callee,
           "answered_by": c.answered_by, "state": c.state,
           "started_at": c.started_at, "answered_at": c.answered_at})
}

fn call_record_json(r: &CallRecord) -> Value {
    json!({"id": r.id, "tenant_id": r.tenant_id, "caller": r.caller, "caller_name": r.caller_name,
           "callee": r.callee, "answered_by": r.answered_by, "started_at": r.started_at,
           "answered_at": r.answered_at, "ended_at": r.ended_at, "end_reason": r.end_reason,
           "transfers": r.transfers})
}

pub(crate) fn items(v: Vec<Value>) -> Json<Value> {
    Json(json!({ "items": v }))
}

/// The tenant named by `key` (id or domain), if the caller may see it.
/// Another tenant's resources answer 404, as if they did not exist.
pub(crate) fn tenant_for(
    s: &ApiState,
    caller: &Caller,
    key: &str,
) -> Result<Arc<Tenant>, ApiError> {
    let t = s
        .store
        .directory()
        .tenant_by_key(key)
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    match caller {
        Caller::Admin => Ok(t),
        Caller::Tenant(id) if *id == t.id => Ok(t),
        Caller::Tenant(_) => Err(ApiError::not_found("tenant")),
    }
}

fn admin_only(caller: &Caller) -> Result<(), ApiError> {
    match caller {
        Caller::Admin => Ok(()),
        Caller::Tenant(_) => Err(ApiError::forbidden("this needs the admin token")),
    }
}

async fn list_tenants(State(s): State<ApiState>, caller: Caller) -> Json<Value> {
    let all = s.store.directory().tenants();
    let visible = all
        .iter()
        .filter(|t| {
            matches!(&caller, Caller::Admin) || matches!(&caller, Caller::Tenant(id) if *id == t.id)
        })
        .map(|t| tenant_json(t))
        .collect();
    items(visible)
}

async fn create_tenant(
    State(s): State<ApiState>,
    caller: Caller,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    admin_only(&caller)?;
    let b = Body::parse(&body, &["name", "domain"])?;
    let name = validate::name(b.required("name")?)?;
    let domain = validate::domain(b.required("domain")?)?;
    let t = s.store.create_tenant(&name, &domain).await?;
    Ok((StatusCode::CREATED, Json(tenant_json(&t))))
}

async fn get_tenant(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    Ok(Json(tenant_json(&t)))
}

async fn patch_tenant(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let b = Body::parse(&body, &["name", "domain"])?;
    let name = b.string("name")?.map(validate::name).transpose()?;
    let domain = b.string("domain")?.map(validate::domain).transpose()?;
    if domain.is_some() && caller != Caller::Admin {
        return Err(ApiError {
            field: Some("domain".into()),
            ..ApiError::forbidden("only the admin can change a tenant's domain")
        });
    }
    let t = s
        .store
        .update_tenant(&t.id, name.as_deref(), domain.as_deref())
        .await?;
    Ok(Json(tenant_json(&t)))
}

async fn delete_tenant(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    admin_only(&caller)?;
    s.store.delete_tenant(&t.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_extensions(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let list = s
        .store
        .directory()
        .extensions(&t.id)
        .iter()
        .map(|e| extension_json(e))
        .collect();
    Ok(items(list))
}

async fn create_extension(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let b = Body::parse(&body, &["number", "password", "display_name"])?;
    let number = validate::number(b.required("number")?)?;
    let password = validate::password(b.required("password")?)?;
    let display = validate::display_name(b.string("display_name")?.unwrap_or(""))?;
    let e = s
        .store
        .create_extension(&t.id, &number, &display, &password)
        .await?;
    Ok((StatusCode::CREATED, Json(extension_json(&e))))
}

async fn get_extension(
    State(s): State<ApiState>,
    caller: Caller,
    Path((key, number)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let e = s
        .store
        .directory()
        .extension(&t.id, &number)
        .ok_or_else(|| ApiError::not_found("extension"))?;
    Ok(Json(extension_json(&e)))
}

async fn patch_extension(
    State(s): State<ApiState>,
    caller: Caller,
    Path((key, number)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let b = Body::parse(&body, &["password", "display_name"])?;
    let password = b.string("password")?.map(validate::password).transpose()?;
    let display = b
        .string("display_name")?
        .map(validate::display_name)
        .transpose()?;
    let e = s
        .store
        .update_extension(&t.id, &number, display.as_deref(), password.as_deref())
        .await?;
    Ok(Json(extension_json(&e)))
}

async fn delete_extension(
    State(s): State<ApiState>,
    caller: Caller,
    Path((key, number)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    s.store.delete_extension(&t.id, &number).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_registrations(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let now = now_ms();
    let list = s
        .bindings
        .tenant_bindings(&t.id)
        .iter()
        .map(|b| binding_json(b, now))
        .collect();
    Ok(items(list))
}

async fn create_token(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let b = Body::parse(&body, &["name"])?;
    let name = validate::name(b.required("name")?)?;
    let (tok, secret) = s.store.create_token(&t.id, &name).await?;
    let body = json!({"id": tok.id, "name": tok.name, "tenant_id": tok.tenant_id, "token": secret, "created_at": time(tok.created_at)});
    Ok((StatusCode::CREATED, Json(body)))
}

const RING_GROUP_FIELDS: &[&str] = &[
    "name",
    "members",
    "strategy",
    "ring_time_s",
    "no_answer_destination",
];

async fn list_ring_groups(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let list = s
        .store
        .directory()
        .ring_groups(&t.id)
        .iter()
        .map(|g| ring_group_json(g))
        .collect();
    Ok(items(list))
}

async fn create_ring_group(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let mut allowed = vec!["number"];
    allowed.extend_from_slice(RING_GROUP_FIELDS);
    let b = Body::parse(&body, &allowed)?;
    let spec = RingGroupSpec {
        number: validate::number(b.required("number")?)?,
        name: validate::name(b.required("name")?)?,
        members: validate::members(&b.strings("members")?.unwrap_or_default())?,
        strategy: validate::strategy(b.required("strategy")?)?,
        ring_time_s: b
            .integer("ring_time_s")?
            .map(validate::ring_time_s)
            .transpose()?
            .unwrap_or(DEFAULT_RING_TIME_S),
        no_answer_destination: b
            .string("no_answer_destination")?
            .map(validate::destination)
            .transpose()?,
    };
    let g = s.store.create_ring_group(&t.id, spec).await?;
    Ok((StatusCode::CREATED, Json(ring_group_json(&g))))
}

async fn get_ring_group(
    State(s): State<ApiState>,
    caller: Caller,
    Path((key, number)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let g = s
        .store
        .directory()
        .ring_group(&t.id, &number)
        .ok_or_else(|| ApiError::not_found("ring group"))?;
    Ok(Json(ring_group_json(&g)))
}

async fn patch_ring_group(
    State(s): State<ApiState>,
    caller: Caller,
    Path((key, number)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let b = Body::parse(&body, RING_GROUP_FIELDS)?;
    let patch = RingGroupPatch {
        name: b.string("name")?.map(validate::name).transpose()?,
        members: b
            .strings("members")?
            .map(|m| validate::members(&m))
            .transpose()?,
        strategy: b.string("strategy")?.map(validate::strategy).transpose()?,
        ring_time_s: b
            .integer("ring_time_s")?
            .map(validate::ring_time_s)
            .transpose()?,
        no_answer_destination: match b.nullable_string("no_answer_destination")? {
            None => None,
            Some(None) => Some(None),
            Some(Some(d)) => Some(Some(validate::destination(d)?)),
        },
    };
    let g = s.store.update_ring_group(&t.id, &number, patch).await?;
    Ok(Json(ring_group_json(&g)))
}

async fn delete_ring_group(
    State(s): State<ApiState>,
    caller: Caller,
    Path((key, number)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    s.store.delete_ring_group(&t.id, &number).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The tenant's calls in progress, oldest first.
async fn list_calls(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let mut calls: Vec<ActiveCall> = s
        .calls
        .active_calls(&t.id)
        .into_iter()
        // Whatever the provider answers, a tenant sees only its own calls.
        .filter(|c| c.tenant_id == t.id)
        .collect();
    calls.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
    let list: Vec<Value> = calls.iter().map(active_call_json).collect();
    Ok(Json(json!({ "calls": list })))
}

/// The query string as name/value pairs, in order; 400 if it cannot be read.
fn query_pairs(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Vec<(String, String)>, ApiError> {
    let Query(pairs) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("malformed query: {e}"),
        )
    })?;
    Ok(pairs)
}

/// The tenant's finished calls, newest first.
async fn list_call_records(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let q = validate::call_record_query(&query_pairs(query)?)?;
    let list: Vec<Value> = s
        .store
        .call_records(&t.id, &q)
        .await?
        .iter()
        .map(call_record_json)
        .collect();
    Ok(Json(json!({ "call_records": list })))
}

// ---- call park ----

const PARK_SETTINGS_FIELDS: &[&str] = &[
    "enabled",
    "park_code",
    "group_park_code",
    "retrieve_code",
    "notify_parker",
    "max_parked_per_extension",
    "recall",
];

const RECALL_FIELDS: &[&str] = &[
    "recall_time_s",
    "recall_to",
    "recall_number",
    "ring_group",
    "ring_group_wait_s",
    "ring_s",
    "retry_interval_s",
    "max_recall_attempts",
    "final_destination",
    "display_prefix",
];

const PARK_GROUP_FIELDS: &[&str] = &["name", "members", "recall"];

fn recall_json(r: &RecallSettings) -> Value {
    json!({"recall_time_s": r.recall_time_s, "recall_to": r.recall_to.as_str(),
           "recall_number": r.recall_number, "ring_group": r.ring_group,
           "ring_group_wait_s": r.ring_group_wait_s, "ring_s": r.ring_s,
           "retry_interval_s": r.retry_interval_s, "max_recall_attempts": r.max_recall_attempts,
           "final_destination": r.final_destination, "display_prefix": r.display_prefix})
}

/// `updated_at` is null while the tenant has the defaults.
fn park_settings_json(s: &ParkSettings) -> Value {
    json!({"enabled": s.enabled, "park_code": s.park_code, "group_park_code": s.group_park_code,
           "retrieve_code": s.retrieve_code, "notify_parker": s.notify_parker,
           "max_parked_per_extension": s.max_parked_per_extension,
           "recall": recall_json(&s.recall),
           "updated_at": (s.updated_at != 0).then(|| time(s.updated_at))})
}

fn park_group_json(g: &ParkGroup) -> Value {
    json!({"id": g.id, "name": g.name, "members": g.members,
           "recall": g.recall.as_ref().map(recall_json),
           "created_at": time(g.created_at), "updated_at": time(g.updated_at)})
}

/// A `recall` object (settings or a group's override): every field may be
/// left out and then takes its default; errors name `recall.<field>`.
fn recall_from(b: &Body) -> Result<RecallSettings, ApiError> {
    let d = RecallSettings::default();
    let int = |field: &str, range, default: u32| -> Result<u32, ApiError> {
        b.integer(field)?
            .map(|v| validate::in_range(&b.name(field), v, range, ""))
            .transpose()
            .map(|v| v.unwrap_or(default))
    };
    let number = |field: &str, what: &str| -> Result<Option<String>, ApiError> {
        b.string(field)?
            .map(|v| validate::number_in(&b.name(field), v, what))
            .transpose()
    };
    Ok(RecallSettings {
        recall_time_s: int("recall_time_s", &RECALL_TIME_S, d.recall_time_s)?,
        recall_to: b
            .string("recall_to")?
            .map(|v| validate::recall_to(&b.name("recall_to"), v))
            .transpose()?
            .unwrap_or(d.recall_to),
        recall_number: number("recall_number", "an extension or ring group number")?,
        ring_group: number("ring_group", "a ring group number")?,
        ring_group_wait_s: int("ring_group_wait_s", &RING_GROUP_WAIT_S, d.ring_group_wait_s)?,
        ring_s: int("ring_s", &RECALL_RING_S, d.ring_s)?,
        retry_interval_s: int("retry_interval_s", &RETRY_INTERVAL_S, d.retry_interval_s)?,
        max_recall_attempts: int(
            "max_recall_attempts",
            &MAX_RECALL_ATTEMPTS,
            d.max_recall_attempts,
        )?,
        final_destination: number("final_destination", "an extension or ring group number")?,
        display_prefix: b
            .string("display_prefix")?
            .map(|v| validate::display_prefix(&b.name("display_prefix"), v))
            .transpose()?
            .unwrap_or(d.display_prefix),
    })
}

/// `recall` of a park group body: `None` absent, `Some(None)` null.
fn recall_override(b: &Body) -> Result<Option<Option<RecallSettings>>, ApiError> {
    match b.object("recall", RECALL_FIELDS)? {
        None => Ok(None),
        Some(None) => Ok(Some(None)),
        Some(Some(r)) => Ok(Some(Some(recall_from(&r)?))),
    }
}

async fn get_park_settings(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let settings = s.store.directory().park_settings(&t.id);
    Ok(Json(park_settings_json(&settings)))
}

/// Replaces the settings: every top-level field is required; inside
/// `recall`, fields left out take their defaults.
async fn put_park_settings(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let b = Body::parse(&body, PARK_SETTINGS_FIELDS)?;
    let flag = |field: &str| b.boolean(field)?.ok_or_else(|| b.missing(field));
    let code = |field: &str| validate::feature_code(field, b.required(field)?);
    let spec = ParkSettingsSpec {
        enabled: flag("enabled")?,
        park_code: code("park_code")?,
        group_park_code: code("group_park_code")?,
        retrieve_code: code("retrieve_code")?,
        notify_parker: flag("notify_parker")?,
        max_parked_per_extension: validate::in_range(
            "max_parked_per_extension",
            b.integer("max_parked_per_extension")?
                .ok_or_else(|| b.missing("max_parked_per_extension"))?,
            &MAX_PARKED_PER_EXTENSION,
            "",
        )?,
        recall: match b.object("recall", RECALL_FIELDS)? {
            Some(Some(r)) => recall_from(&r)?,
            Some(None) => {
                return Err(ApiError::invalid(
                    "recall",
                    "recall must be an object (its fields may be left out)",
                ))
            }
            None => return Err(b.missing("recall")),
        },
    };
    let settings = s.store.put_park_settings(&t.id, spec).await?;
    Ok(Json(park_settings_json(&settings)))
}

async fn list_park_groups(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let list = s
        .store
        .directory()
        .park_groups(&t.id)
        .iter()
        .map(|g| park_group_json(g))
        .collect();
    Ok(items(list))
}

async fn create_park_group(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let b = Body::parse(&body, PARK_GROUP_FIELDS)?;
    let spec = ParkGroupSpec {
        name: validate::park_group_name(b.required("name")?)?,
        members: validate::park_members(&b.strings("members")?.unwrap_or_default())?,
        recall: recall_override(&b)?.flatten(),
    };
    let g = s.store.create_park_group(&t.id, spec).await?;
    Ok((StatusCode::CREATED, Json(park_group_json(&g))))
}

async fn get_park_group(
    State(s): State<ApiState>,
    caller: Caller,
    Path((key, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let g = s
        .store
        .directory()
        .park_group(&t.id, &id)
        .ok_or_else(|| ApiError::not_found("park group"))?;
    Ok(Json(park_group_json(&g)))
}

async fn patch_park_group(
    State(s): State<ApiState>,
    caller: Caller,
    Path((key, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let b = Body::parse(&body, PARK_GROUP_FIELDS)?;
    let patch = ParkGroupPatch {
        name: b
            .string("name")?
            .map(validate::park_group_name)
            .transpose()?,
        members: b
            .strings("members")?
            .map(|m| validate::park_members(&m))
            .transpose()?,
        recall: recall_override(&b)?,
    };
    let g = s.store.update_park_group(&t.id, &id, patch).await?;
    Ok(Json(park_group_json(&g)))
}

async fn delete_park_group(
    State(s): State<ApiState>,
    caller: Caller,
    Path((key, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    s.store.delete_park_group(&t.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The tenant's park event log, newest first.
async fn list_park_events(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let q = validate::park_event_query(&query_pairs(query)?)?;
    let list = s
        .store
        .park_events(&t.id, &q)
        .await?
        .iter()
        .map(crate::parking::event_json)
        .collect();
    Ok(items(list))
}
