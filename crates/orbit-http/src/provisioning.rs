//! Phones: the REST API that manages them (`/api/v1/tenants/{tenant}/phones`)
//! and the provisioning server phones fetch from (`/provisioning/snom/...`,
//! `/provisioning/yealink/...`, `/provisioning/fanvil/...`): the
//! configuration file by MAC and the XML minibrowser pages of the Snom
//! Visual Park keys. A phone is served only under its own vendor's path. Phones authenticate with HTTP Basic, user = their MAC,
//! password = the per-phone provisioning password (only its SHA-256 is
//! stored). Without credentials every MAC, known or not, gets the same 401
//! challenge; with wrong ones, or for an unknown MAC, the same 404. Failed
//! attempts (404) are rate-limited per source address. Documented in
//! `docs/phones/{snom,yealink,fanvil}.md`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use orbit_provision::{
    fanvil, snom, yealink, FeatureCodes, Identity, Key, ParkedEntry, PhoneConfig,
};
use orbit_store::{
    normalize_mac, now_ms, tokens::token_hash, Phone, PhoneKey, PhoneKeyKind, PhonePatch,
    PhoneSpec, Tenant,
};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::Body;
use crate::routes::{tenant_for, time};
use crate::ApiState;

pub const PATHS: &[&str] = &[
    "/api/v1/tenants/{tenant}/phones",
    "/api/v1/tenants/{tenant}/phones/{phone}",
    "/api/v1/tenants/{tenant}/phones/{phone}/reprovision",
    "/api/v1/tenants/{tenant}/phones/{phone}/password",
];

/// The provisioning server's routes (outside `/api/v1`: phones have no
/// bearer token).
pub const PROVISIONING_PATHS: &[&str] = &[
    "/provisioning/snom/{file}",
    "/provisioning/snom/{mac}/{page}",
    "/provisioning/yealink/{file}",
    "/provisioning/fanvil/{file}",
];

/// SIP port put into `user_outbound` with the host the phone reached
/// Orbit's HTTP listener by.
pub const SIP_PORT: u16 = 5060;

const PHONE_FIELDS: &[&str] = &["mac", "vendor", "model", "extension", "label", "keys"];
const PHONE_PATCH_FIELDS: &[&str] = &["model", "extension", "label", "keys"];
const KEY_FIELDS: &[&str] = &["type", "target", "label"];

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(PATHS[0], get(list_phones).post(create_phone))
        .route(
            PATHS[1],
            get(get_phone).patch(patch_phone).delete(delete_phone),
        )
        .route(PATHS[2], post(reprovision_phone))
        .route(PATHS[3], post(reset_password))
        .route(PROVISIONING_PATHS[0], get(fetch_file))
        .route(PROVISIONING_PATHS[1], get(fetch_page))
        .route(PROVISIONING_PATHS[2], get(fetch_yealink))
        .route(PROVISIONING_PATHS[3], get(fetch_fanvil))
        .layer(Extension(Arc::new(Guard::new(GuardConfig::default()))))
}

// ---- the REST API ----

/// `http://<host>` as the request names Orbit (`Host` header), or an empty
/// string (URLs are then given as paths).
/// `http://<Host>` of a request, for URLs a phone must fetch (empty when
/// the Host header is missing or odd).
pub fn base_url(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .map(|h| format!("http://{h}"))
        .unwrap_or_default()
}

fn key_json(k: &PhoneKey) -> Value {
    json!({"type": k.kind.as_str(), "target": k.target, "label": k.label})
}

fn phone_json(p: &Phone, base: &str) -> Value {
    json!({"id": p.id, "mac": p.mac, "vendor": p.vendor, "model": p.model,
           "extension": p.extension, "label": p.label,
           "keys": p.keys.iter().map(key_json).collect::<Vec<_>>(),
           "config_version": p.config_version,
           "provisioned_at": p.provisioned_at.map(time),
           "provisioning": {"url": orbit_provision::config_url(&p.vendor, base, &p.mac),
                            "username": p.mac},
           "created_at": time(p.created_at), "updated_at": time(p.updated_at)})
}

/// The phone JSON with the provisioning password, shown this once.
fn phone_with_password(p: &Phone, base: &str, password: &str) -> Value {
    let mut v = phone_json(p, base);
    v["provisioning"]["password"] = json!(password);
    v
}

/// The tenant's phone named by id or MAC (any usual spelling).
fn phone_for(s: &ApiState, t: &Tenant, key: &str) -> Result<Arc<Phone>, ApiError> {
    let dir = s.store.directory();
    dir.phone(&t.id, key)
        .or_else(|| {
            normalize_mac(key)
                .and_then(|m| dir.phone_by_mac(&m))
                .filter(|p| p.tenant_id == t.id)
        })
        .ok_or_else(|| ApiError::not_found("phone"))
}

fn keys_from(b: &Body) -> Result<Option<Vec<PhoneKey>>, ApiError> {
    let Some(items) = b.objects("keys", KEY_FIELDS)? else {
        return Ok(None);
    };
    items
        .iter()
        .map(|k| {
            let kind = PhoneKeyKind::parse(k.required("type")?).ok_or_else(|| {
                let f = k.name("type");
                ApiError::invalid(
                    &f,
                    format!("{f} must be visual_park, visual_group_park, blf or speed_dial"),
                )
            })?;
            Ok(PhoneKey {
                kind,
                target: k.string("target")?.map(str::to_string),
                label: k.string("label")?.map(str::to_string),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn extension_from(b: &Body) -> Result<Option<Option<String>>, ApiError> {
    b.nullable_string("extension")?
        .map(|v| {
            v.map(|e| crate::validate::number_in("extension", e, "an extension number"))
                .transpose()
        })
        .transpose()
}

async fn list_phones(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let base = base_url(&headers);
    let list: Vec<Value> = s
        .store
        .directory()
        .phones(&t.id)
        .iter()
        .map(|p| phone_json(p, &base))
        .collect();
    Ok(crate::routes::items(list))
}

async fn create_phone(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let b = Body::parse(&body, PHONE_FIELDS)?;
    let mac = normalize_mac(b.required("mac")?).ok_or_else(|| {
        ApiError::invalid(
            "mac",
            "mac must be 12 hexadecimal digits, such as 00:04:13:a1:b2:c3",
        )
    })?;
    let spec = PhoneSpec {
        mac,
        vendor: b.required("vendor")?.to_string(),
        model: b.required("model")?.to_string(),
        extension: extension_from(&b)?.flatten(),
        label: b.string("label")?.unwrap_or("").trim().to_string(),
        keys: keys_from(&b)?.unwrap_or_default(),
    };
    let (p, password) = s.store.create_phone(&t.id, spec).await?;
    Ok((
        StatusCode::CREATED,
        Json(phone_with_password(&p, &base_url(&headers), &password)),
    ))
}

async fn get_phone(
    State(s): State<ApiState>,
    caller: Caller,
    Path((key, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let p = phone_for(&s, &t, &id)?;
    Ok(Json(phone_json(&p, &base_url(&headers))))
}

async fn patch_phone(
    State(s): State<ApiState>,
    caller: Caller,
    Path((key, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let p = phone_for(&s, &t, &id)?;
    let b = Body::parse(&body, PHONE_PATCH_FIELDS)?;
    let patch = PhonePatch {
        model: b.string("model")?.map(str::to_string),
        extension: extension_from(&b)?,
        label: b.string("label")?.map(|l| l.trim().to_string()),
        keys: keys_from(&b)?,
    };
    let p = s.store.update_phone(&t.id, &p.id, patch).await?;
    Ok(Json(phone_json(&p, &base_url(&headers))))
}

async fn delete_phone(
    State(s): State<ApiState>,
    caller: Caller,
    Path((key, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let p = phone_for(&s, &t, &id)?;
    s.store.delete_phone(&t.id, &p.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Raises `config_version`: the phone gets the current configuration the
/// next time it fetches it (at boot or on its refresh timer).
async fn reprovision_phone(
    State(s): State<ApiState>,
    caller: Caller,
    Path((key, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let p = phone_for(&s, &t, &id)?;
    let p = s.store.reprovision_phone(&t.id, &p.id).await?;
    // Tell the phone now if it is registered; otherwise it picks the new
    // configuration up at its next scheduled fetch or reboot.
    if let Some(ext) = &p.extension {
        // Fire and forget: the answer says nothing the response needs.
        drop(s.control.command(orbit_store::CallCommand::CheckSync {
            tenant_id: t.id.clone(),
            extension: ext.clone(),
        }));
    }
    Ok(Json(phone_json(&p, &base_url(&headers))))
}

/// A new provisioning password, shown in this response only.
async fn reset_password(
    State(s): State<ApiState>,
    caller: Caller,
    Path((key, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let p = phone_for(&s, &t, &id)?;
    let (p, password) = s.store.reset_phone_password(&t.id, &p.id).await?;
    Ok(Json(phone_with_password(
        &p,
        &base_url(&headers),
        &password,
    )))
}

// ---- the provisioning server ----

/// Bounds of the failed-attempt limiter.
#[derive(Debug, Clone, Copy)]
pub struct GuardConfig {
    /// Failed attempts a source may make at once.
    pub burst: f64,
    /// Attempts regained per second.
    pub per_second: f64,
    /// Sources tracked at most; beyond, the fullest buckets are forgotten.
    pub max_sources: usize,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            burst: 20.0,
            per_second: 1.0 / 3.0,
            max_sources: 10_000,
        }
    }
}

/// A token bucket per source (IPv4 address, IPv6 /64) charged by failed
/// provisioning attempts (404: wrong credentials, unknown MAC or file), in
/// a bounded table.
pub struct Guard {
    config: GuardConfig,
    buckets: Mutex<HashMap<Option<IpAddr>, (f64, Instant)>>,
}

impl Guard {
    pub fn new(config: GuardConfig) -> Guard {
        Guard {
            config,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn refilled(&self, (tokens, at): (f64, Instant), now: Instant) -> f64 {
        let dt = now.saturating_duration_since(at).as_secs_f64();
        (tokens + dt * self.config.per_second).min(self.config.burst)
    }

    /// Whether `source` may try now (it has an attempt left).
    pub fn allows(&self, source: Option<IpAddr>, now: Instant) -> bool {
        let table = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        table
            .get(&source)
            .is_none_or(|b| self.refilled(*b, now) >= 1.0)
    }

    /// Charge one failed attempt to `source`.
    pub fn failed(&self, source: Option<IpAddr>, now: Instant) {
        let mut table = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !table.contains_key(&source) && table.len() >= self.config.max_sources {
            // Full buckets say nothing a missing entry would not.
            let burst = self.config.burst;
            table.retain(|_, b| self.refilled(*b, now) < burst);
            if table.len() >= self.config.max_sources {
                if let Some(oldest) = table.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| *k) {
                    table.remove(&oldest);
                }
            }
        }
        let tokens = table
            .get(&source)
            .map_or(self.config.burst, |b| self.refilled(*b, now));
        table.insert(source, ((tokens - 1.0).max(0.0), now));
    }

    pub fn sources(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The source a request is charged to: its IPv4 address or IPv6 /64
/// (`None` when the listener does not pass the peer address).
fn source_of(parts: &axum::http::Extensions) -> Option<IpAddr> {
    let ConnectInfo(addr) = parts.get::<ConnectInfo<SocketAddr>>()?;
    Some(match addr.ip() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::V6(seg.into())
            }
        },
    })
}

const XML: &str = "text/xml; charset=utf-8";
/// Yealink's and Fanvil's `.cfg` files are plain text.
const TEXT: &str = "text/plain; charset=utf-8";

fn xml(body: String) -> Response {
    ([(header::CONTENT_TYPE, XML)], body).into_response()
}

fn challenge() -> Response {
    let mut r = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "provisioning needs the phone's credentials (HTTP Basic)",
    )
    .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Orbit provisioning\", charset=\"UTF-8\""),
    );
    r
}

fn too_many() -> Response {
    let mut r = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many failed provisioning attempts from this address",
    )
    .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
    r
}

/// `(user, password)` of an `Authorization: Basic` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(b64.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// The phone `mac` names if the request carries its credentials and the
/// phone is of `vendor` (the path it asked under). Wrong credentials, an
/// unknown MAC or another vendor's path cost the source one attempt and
/// get the same 404; a source out of attempts gets 429 before anything is
/// looked up. The password is hashed and compared in constant time whether
/// the MAC is known or not.
#[allow(clippy::result_large_err)] // the error is the response itself
fn authenticate(
    s: &ApiState,
    guard: &Guard,
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
    mac: &str,
    vendor: &str,
) -> Result<Arc<Phone>, Response> {
    let source = source_of(extensions);
    let now = Instant::now();
    if !guard.allows(source, now) {
        return Err(too_many());
    }
    // A challenge costs nothing: it is the same for every MAC, and every
    // phone behind one address gets one at each fetch.
    let Some((user, password)) = basic_credentials(headers) else {
        return Err(challenge());
    };
    let phone = s.store.directory().phone_by_mac(mac);
    let given = token_hash(&password);
    // Unknown MACs are compared against a hash no password has.
    let stored = phone
        .as_ref()
        .map_or_else(|| "-".repeat(given.len()), |p| p.password_hash.clone());
    let password_ok = bool::from(given.as_bytes().ct_eq(stored.as_bytes()));
    let user_ok = user.eq_ignore_ascii_case(mac);
    match phone {
        Some(p) if password_ok && user_ok && p.vendor == vendor => Ok(p),
        _ => {
            guard.failed(source, now);
            Err(ApiError::not_found("phone").into_response())
        }
    }
}

/// The phone's configuration, resolved against its tenant now.
fn phone_config(s: &ApiState, p: &Phone, headers: &HeaderMap) -> PhoneConfig {
    let dir = s.store.directory();
    let tenant = dir.tenant(&p.tenant_id);
    let domain = tenant
        .as_ref()
        .map(|t| t.domain.clone())
        .unwrap_or_default();
    let ext = p
        .extension
        .as_deref()
        .and_then(|e| dir.extension(&p.tenant_id, e));
    let group = ext
        .as_ref()
        .and_then(|e| dir.park_group_of(&p.tenant_id, &e.number));
    let exists = |n: &str| dir.extension(&p.tenant_id, n).is_some();
    let keys = p
        .keys
        .iter()
        .map(|k| {
            let label = k.label.clone();
            match k.kind {
                PhoneKeyKind::VisualPark => {
                    match k
                        .target
                        .as_deref()
                        .or(ext.as_ref().map(|e| e.number.as_str()))
                    {
                        Some(t) if exists(t) => Key::VisualPark {
                            extension: t.to_string(),
                            label,
                        },
                        _ => Key::Unavailable,
                    }
                }
                PhoneKeyKind::VisualGroupPark => match &group {
                    Some(g) => Key::VisualGroupPark {
                        group_id: g.id.clone(),
                        label,
                    },
                    None => Key::Unavailable,
                },
                PhoneKeyKind::Blf => match k.target.as_deref() {
                    Some(t) if exists(t) => Key::Blf {
                        extension: t.to_string(),
                        label,
                    },
                    _ => Key::Unavailable,
                },
                PhoneKeyKind::SpeedDial => match &k.target {
                    Some(n) => Key::SpeedDial {
                        number: n.clone(),
                        label,
                    },
                    None => Key::Unavailable,
                },
            }
        })
        .collect();
    let settings = dir.park_settings(&p.tenant_id);
    let base = base_url(headers);
    PhoneConfig {
        mac: p.mac.clone(),
        model: p.model.clone(),
        config_version: p.config_version,
        domain,
        outbound_proxy: outbound_proxy(headers),
        identity: ext.as_ref().map(|e| Identity {
            user: e.number.clone(),
            display_name: if e.display_name.is_empty() {
                e.number.clone()
            } else {
                e.display_name.clone()
            },
            ha1_md5: e.ha1_md5.clone(),
        }),
        keys,
        codes: FeatureCodes {
            park: settings.park_code.clone(),
            group_park: settings.group_park_code.clone(),
            retrieve: settings.retrieve_code.clone(),
        },
        in_park_group: group.is_some(),
        base_url: base,
        language: orbit_provision::DEFAULT_LANGUAGE.into(),
        timezone: orbit_provision::DEFAULT_TIMEZONE.into(),
        ntp_server: orbit_provision::DEFAULT_NTP_SERVER.into(),
    }
}

/// The host the phone reached Orbit's HTTP listener by, with the SIP port.
fn outbound_proxy(headers: &HeaderMap) -> String {
    let base = base_url(headers);
    let host = base.strip_prefix("http://").unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((h, port))
            if !h.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!h.contains(':') || h.ends_with(']')) =>
        {
            h
        }
        _ => host,
    };
    if host.is_empty() {
        String::new()
    } else {
        format!("{host}:{SIP_PORT}")
    }
}

async fn fetch_file(
    State(s): State<ApiState>,
    Extension(guard): Extension<Arc<Guard>>,
    Path(file): Path<String>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
) -> Response {
    match snom::file_request(&file) {
        // The per-model file holds nothing of any tenant: no credentials
        // asked, no attempt charged (phones fetch it at every boot).
        Some(snom::FileRequest::ModelDefaults) => xml(snom::model_defaults()),
        Some(snom::FileRequest::Config { mac }) => {
            let served = Served {
                vendor: "snom",
                content_type: XML,
                render: snom::config_xml,
            };
            serve_config(&s, &guard, &extensions, &headers, &mac, served).await
        }
        None => unknown_file(&guard, &extensions),
    }
}

async fn fetch_yealink(
    State(s): State<ApiState>,
    Extension(guard): Extension<Arc<Guard>>,
    Path(file): Path<String>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
) -> Response {
    match yealink::file_request(&file) {
        // Like Snom's per-model file: nothing of any tenant, no
        // credentials, no attempt charged (fetched at every boot).
        Some(yealink::FileRequest::CommonDefaults) => {
            ([(header::CONTENT_TYPE, TEXT)], yealink::common_defaults()).into_response()
        }
        Some(yealink::FileRequest::Config { mac }) => {
            let served = Served {
                vendor: "yealink",
                content_type: TEXT,
                render: yealink::config_cfg,
            };
            serve_config(&s, &guard, &extensions, &headers, &mac, served).await
        }
        None => unknown_file(&guard, &extensions),
    }
}

async fn fetch_fanvil(
    State(s): State<ApiState>,
    Extension(guard): Extension<Arc<Guard>>,
    Path(file): Path<String>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
) -> Response {
    match fanvil::file_request(&file) {
        Some(fanvil::FileRequest::Config { mac }) => {
            let served = Served {
                vendor: "fanvil",
                content_type: TEXT,
                render: fanvil::config_cfg,
            };
            serve_config(&s, &guard, &extensions, &headers, &mac, served).await
        }
        None => unknown_file(&guard, &extensions),
    }
}

/// How one vendor's configuration file is served.
struct Served {
    vendor: &'static str,
    content_type: &'static str,
    render: fn(&PhoneConfig) -> String,
}

/// The configuration file of the phone `mac`, for a request that proves
/// to be that phone (see [`authenticate`]); records the fetch.
async fn serve_config(
    s: &ApiState,
    guard: &Guard,
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
    mac: &str,
    served: Served,
) -> Response {
    let p = match authenticate(s, guard, extensions, headers, mac, served.vendor) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let body = (served.render)(&phone_config(s, &p, headers));
    if let Err(e) = s.store.phone_provisioned(&p.id, now_ms()).await {
        tracing::warn!(error = %e, mac = %p.mac, "recording a provisioning fetch failed");
    }
    ([(header::CONTENT_TYPE, served.content_type)], body).into_response()
}

/// A file name no vendor uses: 404, charged like a failed attempt (name
/// guessing is enumeration too).
fn unknown_file(guard: &Guard, extensions: &axum::http::Extensions) -> Response {
    let now = Instant::now();
    let source = source_of(extensions);
    if !guard.allows(source, now) {
        return too_many();
    }
    guard.failed(source, now);
    ApiError::not_found("phone").into_response()
}

fn entry_of(c: &orbit_store::ParkedCall) -> ParkedEntry {
    ParkedEntry {
        caller_number: c.caller_number.clone(),
        caller_name: c.caller_name.clone(),
        parked_on: c.parked_on.clone(),
        parked_at_ms: c.parked_at,
        retrieve_number: c.retrieve_number.clone(),
        recalling: c.state == "recalling",
    }
}

/// The calls parked now in the phone's tenant on one of `on`.
fn parked_on(s: &ApiState, tenant_id: &str, on: &[String]) -> Vec<ParkedEntry> {
    s.control
        .parked_calls(tenant_id)
        .iter()
        .filter(|c| c.tenant_id == tenant_id && on.contains(&c.parked_on))
        .map(entry_of)
        .collect()
}

async fn fetch_page(
    State(s): State<ApiState>,
    Extension(guard): Extension<Arc<Guard>>,
    Path((mac, page)): Path<(String, String)>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
) -> Response {
    let mac = mac.to_ascii_lowercase();
    let p = match authenticate(&s, &guard, &extensions, &headers, &mac, "snom") {
        Ok(p) => p,
        Err(r) => return r,
    };
    let now = now_ms();
    let (own, group) = {
        let dir = s.store.directory();
        let own = p
            .extension
            .clone()
            .filter(|e| dir.extension(&p.tenant_id, e).is_some());
        let group = own
            .as_deref()
            .and_then(|e| dir.park_group_of(&p.tenant_id, e));
        (own, group)
    };
    match page.as_str() {
        "park.xml" => match own {
            Some(e) => xml(snom::park_list_page(
                &e,
                &parked_on(&s, &p.tenant_id, std::slice::from_ref(&e)),
                now,
            )),
            None => xml(snom::text_page(
                "Parked calls",
                "This phone has no extension.",
            )),
        },
        "group-park.xml" => match (own, group) {
            (Some(_), Some(g)) => xml(snom::group_park_list_page(
                &g.name,
                &parked_on(&s, &p.tenant_id, &g.members),
                now,
            )),
            (Some(e), None) => xml(snom::text_page(
                "Group park",
                &format!("Extension {e} is in no call park group."),
            )),
            (None, _) => xml(snom::text_page(
                "Group park",
                "This phone has no extension.",
            )),
        },
        other => {
            // park-<ext>.xml: only for an extension one of its keys watches.
            let watched = other
                .strip_prefix("park-")
                .and_then(|r| r.strip_suffix(".xml"))
                .filter(|e| {
                    p.keys.iter().any(|k| {
                        k.kind == PhoneKeyKind::VisualPark && k.target.as_deref() == Some(*e)
                    }) && s.store.directory().extension(&p.tenant_id, e).is_some()
                });
            match watched {
                Some(e) => xml(snom::park_list_page(
                    e,
                    &parked_on(&s, &p.tenant_id, &[e.to_string()]),
                    now,
                )),
                None => ApiError::not_found("page").into_response(),
            }
        }
    }
}
