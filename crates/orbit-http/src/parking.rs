//! Live call park over the API: the calls parked now, parking a call,
//! retrieving one to an extension, hanging one up, and the park events as
//! server-sent events. The call layer answers through
//! [`orbit_store::CallControl`].

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use futures_util::stream::{self, Stream};
use orbit_store::{CallCommand, CommandError, ParkEventRecord, ParkedCall};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::Body;
use crate::routes::{items, tenant_for, time};
use crate::validate;
use crate::ApiState;

pub const PATHS: &[&str] = &[
    "/api/v1/tenants/{tenant}/parked-calls",
    "/api/v1/tenants/{tenant}/parked-calls/{id}",
    "/api/v1/tenants/{tenant}/parked-calls/{id}/retrieve",
    "/api/v1/tenants/{tenant}/calls/{id}/park",
    "/api/v1/tenants/{tenant}/events",
];

/// How long the API waits for the call layer to take a command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(PATHS[0], get(list_parked))
        .route(PATHS[1], delete(hang_up_parked))
        .route(PATHS[2], post(retrieve_parked))
        .route(PATHS[3], post(park_call))
        .route(PATHS[4], get(events))
}

pub(crate) fn parked_json(p: &ParkedCall) -> Value {
    json!({
        "id": p.id, "call_id": p.call_id, "parked_on": p.parked_on, "parked_by": p.parked_by,
        "caller": {"number": p.caller_number, "name": p.caller_name},
        "parked_at": time(p.parked_at), "recall_at": p.recall_at.map(time),
        "state": p.state, "recalling": p.recalling, "retrieve_number": p.retrieve_number,
    })
}

pub(crate) fn event_json(e: &ParkEventRecord) -> Value {
    json!({
        "id": e.id, "tenant_id": e.tenant_id, "at": time(e.at_ms), "kind": e.kind,
        "park_id": e.park_id, "extension": e.extension, "call_id": e.call_id,
        "parker": e.parker, "parked_number": e.parked_number, "parked_name": e.parked_name,
        "detail": e.detail,
    })
}

async fn list_parked(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let list: Vec<Value> = s
        .control
        .parked_calls(&t.id)
        .iter()
        .filter(|p| p.tenant_id == t.id)
        .map(parked_json)
        .collect();
    Ok(items(list))
}

/// Hand a command to the call layer and wait (bounded) for its answer.
pub async fn run_command(s: &ApiState, cmd: CallCommand) -> Result<(), ApiError> {
    let rx = s.control.command(cmd);
    match tokio::time::timeout(COMMAND_TIMEOUT, rx).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(match e {
            CommandError::NotFound(what) => ApiError::not_found(what),
            CommandError::Conflict { field, message } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message).with_field(field)
            }
            CommandError::Invalid { field, message } => ApiError::invalid(field, message),
            CommandError::Unavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the call layer is not running",
            ),
        }),
        _ => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the call layer did not answer in time",
        )),
    }
}

fn extension_field(b: &Body, field: &str) -> Result<Option<String>, ApiError> {
    b.string(field)?
        .map(|v| {
            validate::number(v).map_err(|_| {
                ApiError::invalid(field, format!("{field} must be an extension number"))
            })
        })
        .transpose()
}

async fn park_call(
    State(s): State<ApiState>,
    caller: Caller,
    Path((key, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let b = Body::parse(&body, &["on", "group"])?;
    let on = extension_field(&b, "on")?;
    let group = b.boolean("group")?.unwrap_or(false);
    if group && on.is_some() {
        return Err(ApiError::invalid("on", "give either on or group, not both"));
    }
    if !group && on.is_none() {
        return Err(ApiError::invalid(
            "on",
            "on (an extension) or group: true is required",
        ));
    }
    run_command(
        &s,
        CallCommand::Park {
            tenant_id: t.id.clone(),
            call_id: id,
            on,
            group,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn retrieve_parked(
    State(s): State<ApiState>,
    caller: Caller,
    Path((key, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let b = Body::parse(&body, &["to"])?;
    let Some(to) = extension_field(&b, "to")? else {
        return Err(b.missing("to"));
    };
    run_command(
        &s,
        CallCommand::Retrieve {
            tenant_id: t.id.clone(),
            park_id: id,
            to: to.clone(),
        },
    )
    .await?;
    // Accepted: `to` is ringing; the parked call moves when it answers.
    Ok((StatusCode::ACCEPTED, Json(json!({ "ringing": to }))))
}

async fn hang_up_parked(
    State(s): State<ApiState>,
    caller: Caller,
    Path((key, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    run_command(
        &s,
        CallCommand::HangUp {
            tenant_id: t.id.clone(),
            park_id: id,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Park events of the tenant as server-sent events (`event: park`, JSON
/// data as in the park event log). A reader that falls behind is told how
/// many it missed (`event: lagged`) and goes on.
async fn events(
    State(s): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let t = tenant_for(&s, &caller, &key)?;
    let rx = s.control.park_events();
    let tenant = t.id.clone();
    let stream = stream::unfold((rx, tenant), |(mut rx, tenant)| async move {
        loop {
            match rx.recv().await {
                Ok(e) if e.tenant_id == tenant => {
                    let ev = Event::default()
                        .event("park")
                        .id(e.id.clone())
                        .data(event_json(&e).to_string());
                    return Some((Ok(ev), (rx, tenant)));
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let ev = Event::default().event("lagged").data(n.to_string());
                    return Some((Ok(ev), (rx, tenant)));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
