//! The Live page: calls parked now (who parked whom where, a running timer
//! to recall), registrations and calls in progress, kept current by a
//! server-sent event stream of snapshots: one on connect, then one whenever
//! what the page shows changed, looked at after each of the tenant's park
//! events and every [`TICK`] (registrations and calls have no event
//! stream). Actions go through the same
//! [`CallCommand`]s as the API.

use std::convert::Infallible;
use std::fmt::Write;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Form, Router};
use futures_util::stream::{self, Stream};
use orbit_http::{ApiError, ApiState};
use orbit_store::{now_ms, CallCommand, ParkedCall, Tenant};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::extensions::tpage;
use crate::html::{esc, url};
use crate::session::Session;
use crate::{html, see_other, Fields, Page};

/// How often the stream sends a snapshot when no park event comes.
pub const TICK: Duration = Duration::from_secs(2);
/// An unchanged snapshot is sent again after this long.
pub const RESEND: Duration = Duration::from_secs(30);

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/portal/t/{tenant}/live", get(live))
        .route("/portal/t/{tenant}/live/events", get(events))
        .route(
            "/portal/t/{tenant}/live/parked/{id}/retrieve",
            post(retrieve),
        )
        .route("/portal/t/{tenant}/live/parked/{id}/hangup", post(hang_up))
}

fn parked(s: &ApiState, t: &Tenant) -> Vec<ParkedCall> {
    s.control
        .parked_calls(&t.id)
        .into_iter()
        .filter(|p| p.tenant_id == t.id)
        .collect()
}

/// Everything the Live page shows, as JSON (times in Unix ms; `now` lets
/// the browser correct its clock).
pub fn snapshot(s: &ApiState, t: &Tenant) -> Value {
    let now = now_ms();
    let parked: Vec<Value> = parked(s, t)
        .iter()
        .map(|p| {
            json!({"id": p.id, "parked_on": p.parked_on, "parked_by": p.parked_by,
                   "caller_number": p.caller_number, "caller_name": p.caller_name,
                   "parked_at": p.parked_at, "recall_at": p.recall_at, "state": p.state,
                   "recalling": p.recalling, "retrieve_number": p.retrieve_number})
        })
        .collect();
    let mut regs = s.bindings.tenant_bindings(&t.id);
    regs.sort_by(|a, b| a.extension.cmp(&b.extension));
    let regs: Vec<Value> = regs
        .iter()
        .map(|b| json!({"extension": b.extension, "contact": b.contact, "source": b.source, "transport": b.transport, "user_agent": b.user_agent, "expires_at": b.expires_at}))
        .collect();
    let mut calls: Vec<_> = s
        .calls
        .active_calls(&t.id)
        .into_iter()
        .filter(|c| c.tenant_id == t.id)
        .collect();
    calls.sort_by_key(|c| c.started_at);
    let calls: Vec<Value> = calls
        .iter()
        .map(|c| json!({"id": c.id, "caller": c.caller, "callee": c.callee, "answered_by": c.answered_by, "state": c.state, "started_at": c.started_at}))
        .collect();
    json!({"now": now, "parked": parked, "registrations": regs, "calls": calls})
}

fn secs(ms: i64) -> String {
    let s = (ms.max(0) + 999) / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}

fn parked_rows(s: &ApiState, t: &Tenant, csrf: &str) -> String {
    let now = now_ms();
    let mut b = String::new();
    for p in parked(s, t) {
        let base = format!("/portal/t/{}/live/parked/{}", url(&t.id), url(&p.id));
        let timer = match p.recall_at {
            Some(at) => secs(at - now),
            None => format!("recalling {}", p.recalling.as_deref().unwrap_or("")),
        };
        let _ = write!(
            b,
            r#"<tr data-id="{id}" data-recall-at="{ra}"><td>{cn} {cname}</td><td>{by}</td><td>{on}</td><td class="state">{st}</td><td class="timer">{timer}</td><td>{rn}</td><td><form method="post" action="{base}/retrieve" class="inline"><input type="hidden" name="_csrf" value="{c}"><input type="text" name="to" placeholder="ext." size="5" aria-label="retrieve to extension"><button type="submit">Retrieve</button></form><form method="post" action="{base}/hangup" class="inline"><input type="hidden" name="_csrf" value="{c}"><button type="submit" class="danger">Hang up</button></form></td></tr>"#,
            id = esc(&p.id),
            ra = p.recall_at.map(|v| v.to_string()).unwrap_or_default(),
            cn = esc(&p.caller_number),
            cname = esc(&p.caller_name),
            by = esc(&p.parked_by),
            on = esc(&p.parked_on),
            st = esc(&p.state),
            rn = esc(&p.retrieve_number),
            c = esc(csrf)
        );
    }
    b
}

#[derive(serde::Deserialize)]
struct Msg {
    ok: Option<String>,
    error: Option<String>,
}

async fn live(
    State(s): State<ApiState>,
    session: Session,
    Path(key): Path<String>,
    Query(m): Query<Msg>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    let snap = snapshot(&s, &t);
    let mut b = String::new();
    if let Some(ok) = m.ok {
        let _ = write!(b, r#"<p class="ok banner" role="status">{}</p>"#, esc(&ok));
    }
    if let Some(e) = m.error {
        let _ = write!(
            b,
            r#"<p class="error banner" role="alert" id="action-error">{}</p>"#,
            esc(&e)
        );
    }
    let _ = write!(
        b,
        r#"<p id="live-status" class="status connecting">connecting…</p><h2>Parked calls</h2><table id="parked" data-tenant="{u}" data-csrf="{c}"><thead><tr><th>Caller</th><th>Parked by</th><th>Parked on</th><th>State</th><th>Recall in</th><th>Retrieve with</th><th></th></tr></thead><tbody>{rows}</tbody></table><h2>Registrations</h2><table id="registrations"><thead><tr><th>Extension</th><th>Contact</th><th>From</th><th>Phone</th></tr></thead><tbody>"#,
        u = esc(&t.id),
        c = esc(&session.csrf),
        rows = parked_rows(&s, &t, &session.csrf)
    );
    for r in snap["registrations"].as_array().into_iter().flatten() {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td></tr>",
            esc(r["extension"].as_str().unwrap_or("")),
            esc(r["contact"].as_str().unwrap_or("")),
            esc(r["transport"].as_str().unwrap_or("")),
            esc(r["source"].as_str().unwrap_or("")),
            esc(r["user_agent"].as_str().unwrap_or(""))
        );
    }
    b.push_str(r#"</tbody></table><h2>Calls in progress</h2><table id="calls"><thead><tr><th>Caller</th><th>Number</th><th>Answered by</th><th>State</th><th>Since</th></tr></thead><tbody>"#);
    for c in snap["calls"].as_array().into_iter().flatten() {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(c["caller"].as_str().unwrap_or("")),
            esc(c["callee"].as_str().unwrap_or("")),
            esc(c["answered_by"].as_str().unwrap_or("")),
            esc(c["state"].as_str().unwrap_or("")),
            crate::html::time(c["started_at"].as_i64().unwrap_or(0))
        );
    }
    b.push_str(r#"</tbody></table><script src="/portal/assets/live.js"></script>"#);
    Ok(html(tpage("Live", &session, &t, &b)))
}

/// `event: snapshot` with [`snapshot`] as data, on connect, after each of the
/// tenant's park events and every [`TICK`].
async fn events(
    State(s): State<ApiState>,
    session: Session,
    Path(key): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, axum::response::Response> {
    let t = session.tenant(&s, &key)?;
    let rx = s.control.park_events();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first snapshot goes at once; later ones only when something
    // changed (or every [`RESEND`], so the page's clock stays corrected).
    let state = (s, t, rx, tick, None::<Value>, tokio::time::Instant::now());
    let stream = stream::unfold(
        state,
        |(s, t, mut rx, mut tick, last, mut sent)| async move {
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    e = rx.recv() => match e {
                        Ok(e) if e.tenant_id != t.id => continue,
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        // No call layer (or it stopped): snapshots on the tick only.
                        Err(broadcast::error::RecvError::Closed) => { tick.tick().await; }
                    },
                }
                let mut snap = snapshot(&s, &t);
                let now = snap
                    .as_object_mut()
                    .and_then(|o| o.remove("now"))
                    .unwrap_or_default();
                if last.as_ref() == Some(&snap) && sent.elapsed() < RESEND {
                    continue;
                }
                sent = tokio::time::Instant::now();
                let mut data = snap.clone();
                data["now"] = now;
                let ev = Event::default().event("snapshot").data(data.to_string());
                return Some((Ok(ev), (s, t, rx, tick, Some(snap), sent)));
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn back(t: &Tenant, res: Result<String, ApiError>) -> Page {
    let q = match res {
        Ok(ok) => format!("ok={}", url(&ok)),
        Err(e) => format!("error={}", url(&e.message)),
    };
    Ok(see_other(format!("/portal/t/{}/live?{q}", url(&t.id))))
}

async fn retrieve(
    State(s): State<ApiState>,
    session: Session,
    Path((key, id)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    let f = Fields(f);
    session.check_csrf(&f)?;
    let to = f.str("to").trim().to_string();
    let res = match orbit_http::validate::number_in("to", &to, "an extension number") {
        Err(_) => Err(ApiError::invalid(
            "to",
            "retrieve to: type an extension number",
        )),
        Ok(to) => orbit_http::run_command(
            &s,
            CallCommand::Retrieve {
                tenant_id: t.id.clone(),
                park_id: id,
                to: to.clone(),
            },
        )
        .await
        .map(|_| format!("{to} is ringing; the call moves there when it answers")),
    };
    back(&t, res)
}

async fn hang_up(
    State(s): State<ApiState>,
    session: Session,
    Path((key, id)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    session.check_csrf(&Fields(f))?;
    let res = orbit_http::run_command(
        &s,
        CallCommand::HangUp {
            tenant_id: t.id.clone(),
            park_id: id,
        },
    )
    .await
    .map(|_| "The parked call was hung up".to_string());
    back(&t, res)
}
