//! The event log: park events and call records, filtered by extension and
//! time (the API's filters), shown as tables or exported as one CSV file.

use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use orbit_http::{validate, ApiError, ApiState};
use orbit_store::{CallRecord, ParkEventRecord, Tenant};

use crate::extensions::tpage;
use crate::html::{error_for, esc, form_error, time, url};
use crate::session::Session;
use crate::{html, refused, Page};

/// Rows of each list shown on the page (the CSV has up to 1,000 of each).
const SHOWN: usize = 200;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/portal/t/{tenant}/log", get(log))
        .route("/portal/t/{tenant}/log.csv", get(csv))
}

/// The filters as the API takes them: blank ones dropped, and a
/// `datetime-local` value (`2024-05-01T12:00`) read as UTC.
fn api_pairs(q: &[(String, String)]) -> Vec<(String, String)> {
    q.iter()
        .filter(|(k, v)| {
            matches!(k.as_str(), "extension" | "since" | "until") && !v.trim().is_empty()
        })
        .map(|(k, v)| {
            let v = v.trim();
            let v = if (k == "since" || k == "until") && v.len() == 16 && v.as_bytes()[10] == b'T' {
                format!("{v}:00Z")
            } else if (k == "since" || k == "until") && v.len() == 19 && v.as_bytes()[10] == b'T' {
                format!("{v}Z")
            } else {
                v.to_string()
            };
            (k.clone(), v)
        })
        .collect()
}

async fn load(
    s: &ApiState,
    t: &Tenant,
    q: &[(String, String)],
) -> Result<(Vec<ParkEventRecord>, Vec<CallRecord>), ApiError> {
    let pairs = api_pairs(q);
    let mut pq = validate::park_event_query(&pairs)?;
    pq.limit = 1000;
    let mut cq = validate::call_record_query(&pairs)?;
    cq.limit = 1000;
    Ok((
        s.store.park_events(&t.id, &pq).await?,
        s.store.call_records(&t.id, &cq).await?,
    ))
}

fn param<'a>(q: &'a [(String, String)], k: &str) -> &'a str {
    q.iter()
        .rev()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

async fn log(
    State(s): State<ApiState>,
    session: Session,
    Path(key): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    let res = load(&s, &t, &q).await;
    let err = res.as_ref().err();
    let u = url(&t.id);
    let mut b = format!(
        r#"<form method="get" action="/portal/t/{u}/log" id="log-filter" class="row">{fe}<label for="f-extension"><span>Extension</span><input type="text" name="extension" id="f-extension" value="{e}">{ee}</label><label for="f-since"><span>From (UTC)</span><input type="datetime-local" name="since" id="f-since" value="{si}">{se}</label><label for="f-until"><span>Until (UTC)</span><input type="datetime-local" name="until" id="f-until" value="{un}">{ue}</label><button type="submit">Filter</button></form>"#,
        fe = form_error(err, &["extension", "since", "until"]),
        e = esc(param(&q, "extension")),
        ee = error_for(err, "extension"),
        si = esc(param(&q, "since")),
        se = error_for(err, "since"),
        un = esc(param(&q, "until")),
        ue = error_for(err, "until"),
    );
    let qs: String = api_pairs(&q)
        .iter()
        .map(|(k, v)| format!("{k}={}", url(v)))
        .collect::<Vec<_>>()
        .join("&");
    let _ = write!(
        b,
        r#"<p><a href="/portal/t/{u}/log.csv?{qs}" id="csv" download>Export CSV</a></p>"#
    );
    let (events, records) = match res {
        Ok(v) => v,
        Err(e) => return Err(refused(e.status, tpage("Event log", &session, &t, &b))),
    };
    if events.len() > SHOWN || records.len() > SHOWN {
        let _ = write!(
            b,
            r#"<p class="note" id="truncated">Showing the newest {SHOWN} of each list; narrow the filter, or export CSV (up to 1,000 of each).</p>"#
        );
    }
    let events = &events[..events.len().min(SHOWN)];
    let records = &records[..records.len().min(SHOWN)];
    b.push_str(r#"<h2>Park events</h2><table id="park-events"><thead><tr><th>Time (UTC)</th><th>Event</th><th>Extension</th><th>Parker</th><th>Caller</th><th>Detail</th></tr></thead><tbody>"#);
    for e in events {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td></tr>",
            time(e.at_ms),
            esc(&e.kind),
            esc(&e.extension),
            esc(&e.parker),
            esc(&e.parked_number),
            esc(&e.parked_name),
            esc(&e.detail)
        );
    }
    b.push_str(r#"</tbody></table><h2>Call records</h2><table id="call-records"><thead><tr><th>Started (UTC)</th><th>Caller</th><th>Number</th><th>Answered by</th><th>Ended</th><th>Reason</th></tr></thead><tbody>"#);
    for r in records {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            time(r.started_at),
            esc(&r.caller),
            esc(&r.caller_name),
            esc(&r.callee),
            esc(r.answered_by.as_deref().unwrap_or("")),
            time(r.ended_at),
            esc(&r.end_reason)
        );
    }
    b.push_str("</tbody></table>");
    Ok(html(tpage("Event log", &session, &t, &b)))
}

fn cell(v: &str) -> String {
    // Quote always; double quotes inside; a leading formula character is
    // defused so spreadsheets do not run it.
    let v = if v.starts_with(['=', '+', '-', '@']) {
        format!("'{v}")
    } else {
        v.to_string()
    };
    format!("\"{}\"", v.replace('"', "\"\""))
}

fn iso(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

async fn csv(
    State(s): State<ApiState>,
    session: Session,
    Path(key): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, Response> {
    let t = session.tenant(&s, &key)?;
    let (events, records) = load(&s, &t, &q)
        .await
        .map_err(|e| (e.status, e.message).into_response())?;
    let mut out = String::from(
        "type,time,kind,extension,parker,caller,caller_name,callee,answered_by,ended_at,detail\r\n",
    );
    for e in &events {
        let row = [
            "park_event".to_string(),
            iso(e.at_ms),
            e.kind.clone(),
            e.extension.clone(),
            e.parker.clone(),
            e.parked_number.clone(),
            e.parked_name.clone(),
            String::new(),
            String::new(),
            String::new(),
            e.detail.clone(),
        ];
        out.push_str(&row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    for r in &records {
        let row = [
            "call_record".to_string(),
            iso(r.started_at),
            String::new(),
            String::new(),
            String::new(),
            r.caller.clone(),
            r.caller_name.clone(),
            r.callee.clone(),
            r.answered_by.clone().unwrap_or_default(),
            iso(r.ended_at),
            r.end_reason.clone(),
        ];
        out.push_str(&row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"orbit-{}-log.csv\"",
                    t.domain.replace('"', "")
                ),
            ),
        ],
        out,
    )
        .into_response())
}
