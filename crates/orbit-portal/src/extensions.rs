//! Tenant admin pages: extensions (with registration status) and ring groups.

use std::collections::HashMap;
use std::fmt::Write;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Form, Router};
use orbit_http::{validate, ApiError, ApiState};
use orbit_store::{RingGroupPatch, RingGroupSpec, Tenant};

use crate::admin::body_of;
use crate::html::{button, esc, form, page, url, Field, Kind};
use crate::session::Session;
use crate::{html, refused, see_other, Fields, Page};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/portal/t/{tenant}/extensions", get(list).post(create))
        .route(
            "/portal/t/{tenant}/extensions/{number}",
            get(edit).post(update),
        )
        .route(
            "/portal/t/{tenant}/extensions/{number}/delete",
            post(delete),
        )
        .route(
            "/portal/t/{tenant}/ring-groups",
            get(rg_list).post(rg_create),
        )
        .route(
            "/portal/t/{tenant}/ring-groups/{number}",
            get(rg_edit).post(rg_update),
        )
        .route(
            "/portal/t/{tenant}/ring-groups/{number}/delete",
            post(rg_delete),
        )
}

pub(crate) fn tpage(title: &str, session: &Session, t: &Tenant, body: &str) -> String {
    page(title, Some(session), Some((&t.id, &t.name)), body)
}

fn list_page(
    s: &ApiState,
    session: &Session,
    t: &Tenant,
    err: Option<&ApiError>,
    f: Option<&Fields>,
) -> String {
    let u = url(&t.id);
    let mut regs: HashMap<String, usize> = HashMap::new();
    for b in s.bindings.tenant_bindings(&t.id) {
        *regs.entry(b.extension).or_default() += 1;
    }
    let exts = s.store.directory().extensions(&t.id);
    let mut b = String::from(r#"<h2 id="new">New extension</h2>"#);

    let v = |n: &str| f.map(|f| f.str(n).to_string()).unwrap_or_default();
    b.push_str(&form(
        &format!("/portal/t/{u}/extensions"),
        &session.csrf,
        "new-extension",
        &[
            Field::new("number", "Number", Kind::Text, v("number")),
            Field::new(
                "display_name",
                "Display name",
                Kind::Text,
                v("display_name"),
            ),
            Field::new("password", "SIP password", Kind::Password, "").hint("8 to 128 characters"),
        ],
        err,
        "Create extension",
    ));
    let _ = write!(
        b,
        r#"<h2>{} extension(s)</h2><p class="note">Open an extension to change its name or password, or to delete it.</p><table id="extensions"><thead><tr><th>Number</th><th>Name</th><th>Registration</th></tr></thead><tbody>"#,
        exts.len()
    );
    for e in &exts {
        let n = regs.get(&e.number).copied().unwrap_or(0);
        let status = if n == 0 {
            r#"<span class="off">not registered</span>"#.to_string()
        } else {
            format!(r#"<span class="on">registered ({n})</span>"#)
        };
        let _ = write!(
            b,
            r#"<tr data-number="{num}"><td><a href="/portal/t/{u}/extensions/{num}">{num}</a></td><td>{name}</td><td>{status}</td></tr>"#,
            num = esc(&e.number),
            name = esc(&e.display_name),
        );
    }
    b.push_str("</tbody></table>");
    b.push_str(r#"<script src="/portal/assets/park.js"></script>"#);
    tpage("Extensions", session, t, &b)
}

async fn list(State(s): State<ApiState>, session: Session, Path(key): Path<String>) -> Page {
    let t = session.tenant(&s, &key)?;
    Ok(html(list_page(&s, &session, &t, None, None)))
}

async fn create(
    State(s): State<ApiState>,
    session: Session,
    Path(key): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    let f = Fields(f);
    session.check_csrf(&f)?;
    let res = async {
        let number = validate::number(f.str("number").trim())?;
        let password = validate::password(f.str("password"))?;
        let display = validate::display_name(f.str("display_name"))?;
        Ok::<_, ApiError>(
            s.store
                .create_extension(&t.id, &number, &display, &password)
                .await?,
        )
    }
    .await;
    match res {
        Ok(_) => Ok(see_other(format!("/portal/t/{}/extensions", url(&t.id)))),
        Err(e) => Err(refused(
            e.status,
            list_page(&s, &session, &t, Some(&e), Some(&f)),
        )),
    }
}

fn edit_page(
    session: &Session,
    t: &Tenant,
    number: &str,
    display: &str,
    err: Option<&ApiError>,
) -> String {
    let b = form(
        &format!("/portal/t/{}/extensions/{}", url(&t.id), url(number)),
        &session.csrf,
        "edit-extension",
        &[
            Field::new("display_name", "Display name", Kind::Text, display),
            Field::new("password", "New SIP password", Kind::Password, "")
                .hint("leave empty to keep the current password"),
        ],
        err,
        "Save",
    );
    let b = format!(
        r#"{b}<p class="actions">{del}</p><script src="/portal/assets/park.js"></script>"#,
        del = button(
            &format!("/portal/t/{}/extensions/{}/delete", url(&t.id), url(number)),
            &session.csrf,
            "Delete extension",
            "danger confirm",
            ""
        )
    );
    tpage(&format!("Extension {number}"), session, t, &b)
}

async fn edit(
    State(s): State<ApiState>,
    session: Session,
    Path((key, number)): Path<(String, String)>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    let e = s
        .store
        .directory()
        .extension(&t.id, &number)
        .ok_or_else(|| crate::not_found(Some(&session)))?;
    Ok(html(edit_page(
        &session,
        &t,
        &e.number,
        &e.display_name,
        None,
    )))
}

async fn update(
    State(s): State<ApiState>,
    session: Session,
    Path((key, number)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    let f = Fields(f);
    session.check_csrf(&f)?;
    let res = async {
        let display = validate::display_name(f.str("display_name"))?;
        let password = f
            .get("password")
            .filter(|p| !p.is_empty())
            .map(validate::password)
            .transpose()?;
        Ok::<_, ApiError>(
            s.store
                .update_extension(&t.id, &number, Some(&display), password.as_deref())
                .await?,
        )
    }
    .await;
    match res {
        Ok(_) => Ok(see_other(format!("/portal/t/{}/extensions", url(&t.id)))),
        Err(e) => Err(refused(
            e.status,
            edit_page(&session, &t, &number, f.str("display_name"), Some(&e)),
        )),
    }
}

async fn delete(
    State(s): State<ApiState>,
    session: Session,
    Path((key, number)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    session.check_csrf(&Fields(f))?;
    if let Err(e) = s.store.delete_extension(&t.id, &number).await {
        let e = ApiError::from(e);
        return Err(refused(
            e.status,
            list_page(&s, &session, &t, Some(&e), None),
        ));
    }
    Ok(see_other(format!("/portal/t/{}/extensions", url(&t.id))))
}

// ---- ring groups ----

const STRATEGIES: &[(&str, &str)] = &[
    ("ring_all", "Ring all at once"),
    ("sequential", "One after another"),
];

/// Members typed as a list separated by commas or spaces.
pub(crate) fn split_members(v: &str) -> Vec<&str> {
    v.split([',', ' ', '\n', '\r', '\t'])
        .filter(|m| !m.is_empty())
        .collect()
}

fn rg_fields<'a>(v: &dyn Fn(&str) -> String, with_number: bool) -> Vec<Field<'a>> {
    let mut out = Vec::new();
    if with_number {
        out.push(Field::new("number", "Number", Kind::Text, v("number")));
    }
    out.extend([
        Field::new("name", "Name", Kind::Text, v("name")),
        Field::new("members", "Members", Kind::Text, v("members"))
            .hint("extension numbers in ring order, separated by commas"),
        Field::new(
            "strategy",
            "Strategy",
            Kind::Select(STRATEGIES),
            v("strategy"),
        ),
        Field::new(
            "ring_time_s",
            "Ring time (s)",
            Kind::Number,
            v("ring_time_s"),
        )
        .hint("5 to 300; per member when one after another"),
        Field::new(
            "no_answer_destination",
            "No answer: go to",
            Kind::Text,
            v("no_answer_destination"),
        )
        .hint("an extension or ring group; empty = hang up"),
    ]);
    out
}

fn rg_list_page(
    s: &ApiState,
    session: &Session,
    t: &Tenant,
    err: Option<&ApiError>,
    f: Option<&Fields>,
) -> String {
    let u = url(&t.id);
    let mut b = String::from(
        r#"<table id="ring-groups"><thead><tr><th>Number</th><th>Name</th><th>Members</th><th>Strategy</th><th></th></tr></thead><tbody>"#,
    );
    for g in s.store.directory().ring_groups(&t.id).iter() {
        let _ = write!(
            b,
            r#"<tr><td>{n}</td><td>{name}</td><td>{m}</td><td>{st}</td><td><a href="/portal/t/{u}/ring-groups/{n}">Edit</a> {del}</td></tr>"#,
            n = esc(&g.number),
            name = esc(&g.name),
            m = esc(&g.members.join(", ")),
            st = g.strategy.as_str(),
            del = button(
                &format!("/portal/t/{u}/ring-groups/{}/delete", url(&g.number)),
                &session.csrf,
                "Delete",
                "danger confirm",
                ""
            )
        );
    }
    b.push_str("</tbody></table><h2>New ring group</h2>");
    let v = |n: &str| {
        f.map(|f| f.str(n).to_string()).unwrap_or_else(|| {
            if n == "ring_time_s" {
                "20".into()
            } else {
                String::new()
            }
        })
    };
    b.push_str(&form(
        &format!("/portal/t/{u}/ring-groups"),
        &session.csrf,
        "new-ring-group",
        &rg_fields(&v, true),
        err,
        "Create ring group",
    ));
    b.push_str(r#"<script src="/portal/assets/park.js"></script>"#);
    tpage("Ring groups", session, t, &b)
}

async fn rg_list(State(s): State<ApiState>, session: Session, Path(key): Path<String>) -> Page {
    let t = session.tenant(&s, &key)?;
    Ok(html(rg_list_page(&s, &session, &t, None, None)))
}

async fn rg_create(
    State(s): State<ApiState>,
    session: Session,
    Path(key): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    let f = Fields(f);
    session.check_csrf(&f)?;
    let res = async {
        let spec = RingGroupSpec {
            number: validate::number(f.str("number").trim())?,
            name: validate::name(f.str("name"))?,
            members: validate::members(&split_members(f.str("members")))?,
            strategy: validate::strategy(f.str("strategy"))?,
            ring_time_s: f
                .int("ring_time_s")?
                .map(validate::ring_time_s)
                .transpose()?
                .unwrap_or(20),
            no_answer_destination: f
                .opt("no_answer_destination")
                .map(validate::destination)
                .transpose()?,
        };
        Ok::<_, ApiError>(s.store.create_ring_group(&t.id, spec).await?)
    }
    .await;
    match res {
        Ok(_) => Ok(see_other(format!("/portal/t/{}/ring-groups", url(&t.id)))),
        Err(e) => Err(refused(
            e.status,
            rg_list_page(&s, &session, &t, Some(&e), Some(&f)),
        )),
    }
}

fn rg_edit_page(
    session: &Session,
    t: &Tenant,
    number: &str,
    v: &dyn Fn(&str) -> String,
    err: Option<&ApiError>,
) -> String {
    let b = form(
        &format!("/portal/t/{}/ring-groups/{}", url(&t.id), url(number)),
        &session.csrf,
        "edit-ring-group",
        &rg_fields(v, false),
        err,
        "Save",
    );
    tpage(&format!("Ring group {number}"), session, t, &b)
}

async fn rg_edit(
    State(s): State<ApiState>,
    session: Session,
    Path((key, number)): Path<(String, String)>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    let g = s
        .store
        .directory()
        .ring_group(&t.id, &number)
        .ok_or_else(|| crate::not_found(Some(&session)))?;
    let v = |n: &str| match n {
        "name" => g.name.clone(),
        "members" => g.members.join(", "),
        "strategy" => g.strategy.as_str().to_string(),
        "ring_time_s" => g.ring_time_s.to_string(),
        "no_answer_destination" => g.no_answer_destination.clone().unwrap_or_default(),
        _ => String::new(),
    };
    Ok(html(rg_edit_page(&session, &t, &number, &v, None)))
}

async fn rg_update(
    State(s): State<ApiState>,
    session: Session,
    Path((key, number)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    let f = Fields(f);
    session.check_csrf(&f)?;
    let res = async {
        let patch = RingGroupPatch {
            name: Some(validate::name(f.str("name"))?),
            members: Some(validate::members(&split_members(f.str("members")))?),
            strategy: Some(validate::strategy(f.str("strategy"))?),
            ring_time_s: f
                .int("ring_time_s")?
                .map(validate::ring_time_s)
                .transpose()?,
            no_answer_destination: Some(
                f.opt("no_answer_destination")
                    .map(validate::destination)
                    .transpose()?,
            ),
        };
        Ok::<_, ApiError>(s.store.update_ring_group(&t.id, &number, patch).await?)
    }
    .await;
    match res {
        Ok(_) => Ok(see_other(format!("/portal/t/{}/ring-groups", url(&t.id)))),
        Err(e) => Err(refused(
            e.status,
            rg_edit_page(&session, &t, &number, &|n| f.str(n).to_string(), Some(&e)),
        )),
    }
}

async fn rg_delete(
    State(s): State<ApiState>,
    session: Session,
    Path((key, number)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    session.check_csrf(&Fields(f))?;
    if let Err(e) = s.store.delete_ring_group(&t.id, &number).await {
        let e = ApiError::from(e);
        let r = html(rg_list_page(&s, &session, &t, Some(&e), None));
        return Err(refused(e.status, body_of(r).await));
    }
    Ok(see_other(format!("/portal/t/{}/ring-groups", url(&t.id))))
}
