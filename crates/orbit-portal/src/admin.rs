//! System admin pages: tenants (create, rename, delete with confirmation)
//! and each tenant's portal admins. Tenants cannot be suspended: the store
//! has no such state yet.

use std::fmt::Write;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use orbit_http::{validate, ApiError, ApiState};
use orbit_store::Tenant;

use crate::html::{button, esc, form, page, url, Field, Kind};
use crate::session::{hash_async, Session};
use crate::{html, refused, see_other, Fields, Page};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/portal/admin/tenants", get(list).post(create))
        .route("/portal/admin/tenants/{tenant}", get(show).post(rename))
        .route(
            "/portal/admin/tenants/{tenant}/delete",
            get(confirm_delete).post(delete),
        )
        .route("/portal/admin/tenants/{tenant}/admins", post(add_admin))
        .route(
            "/portal/admin/tenants/{tenant}/admins/{id}/delete",
            post(delete_admin),
        )
}

fn list_page(
    s: &ApiState,
    session: &Session,
    err: Option<&ApiError>,
    f: Option<&Fields>,
) -> String {
    let mut b = String::from(
        r#"<table id="tenants"><thead><tr><th>Name</th><th>SIP domain</th><th>Extensions</th><th></th></tr></thead><tbody>"#,
    );
    let mut tenants = s.store.directory().tenants();
    tenants.sort_by_key(|t| t.name.to_lowercase());
    for t in &tenants {
        let n = s.store.directory().extensions(&t.id).len();
        let _ = write!(
            b,
            r#"<tr data-domain="{d}"><td><a href="/portal/admin/tenants/{u}">{name}</a></td><td>{d}</td><td>{n}</td><td><a href="/portal/t/{u}/extensions">Manage</a> · <a href="/portal/admin/tenants/{u}/delete">Delete…</a></td></tr>"#,
            u = url(&t.id),
            name = esc(&t.name),
            d = esc(&t.domain)
        );
    }
    b.push_str("</tbody></table><h2>New tenant</h2>");
    let v = |n: &str| f.map(|f| f.str(n).to_string()).unwrap_or_default();
    b.push_str(&form(
        "/portal/admin/tenants",
        &session.csrf,
        "new-tenant",
        &[
            Field::new("name", "Name", Kind::Text, v("name")),
            Field::new("domain", "SIP domain", Kind::Text, v("domain"))
                .hint("phones register to this domain; a DNS name or an IP address"),
        ],
        err,
        "Create tenant",
    ));
    b.push_str(r#"<p class="note">Suspending a tenant is not available: Orbit has no suspended state for tenants yet.</p>"#);
    page("Tenants", Some(session), None, &b)
}

async fn list(State(s): State<ApiState>, session: Session) -> Page {
    session.require_system_admin()?;
    Ok(html(list_page(&s, &session, None, None)))
}

async fn create(
    State(s): State<ApiState>,
    session: Session,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    session.require_system_admin()?;
    let f = Fields(f);
    session.check_csrf(&f)?;
    let res = async {
        let name = validate::name(f.str("name"))?;
        let domain = validate::domain(f.str("domain"))?;
        Ok::<_, ApiError>(s.store.create_tenant(&name, &domain).await?)
    }
    .await;
    match res {
        Ok(t) => Ok(see_other(format!("/portal/admin/tenants/{}", url(&t.id)))),
        Err(e) => Err(refused(
            e.status,
            list_page(&s, &session, Some(&e), Some(&f)),
        )),
    }
}

fn tenant_of(
    s: &ApiState,
    session: &Session,
    key: &str,
) -> Result<std::sync::Arc<Tenant>, Response> {
    session.require_system_admin()?;
    session.tenant(s, key)
}

async fn show_page(
    s: &ApiState,
    session: &Session,
    t: &Tenant,
    err: Option<&ApiError>,
    admin_err: Option<&ApiError>,
) -> Page {
    let u = url(&t.id);
    let mut b = form(
        &format!("/portal/admin/tenants/{u}"),
        &session.csrf,
        "rename-tenant",
        &[
            Field::new("name", "Name", Kind::Text, t.name.clone()),
            Field::new("domain", "SIP domain", Kind::Text, t.domain.clone())
                .hint("the digest realm stays as created"),
        ],
        err,
        "Save",
    );
    b.push_str(r#"<h2>Tenant admins</h2><table id="admins"><thead><tr><th>Username</th><th></th></tr></thead><tbody>"#);
    let admins = s
        .store
        .portal_users(Some(&t.id))
        .await
        .map_err(crate::internal)?;
    for a in &admins {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(&a.username),
            button(
                &format!("/portal/admin/tenants/{u}/admins/{}/delete", url(&a.id)),
                &session.csrf,
                "Remove",
                "danger",
                ""
            )
        );
    }
    b.push_str("</tbody></table>");
    b.push_str(&form(
        &format!("/portal/admin/tenants/{u}/admins"),
        &session.csrf,
        "new-admin",
        &[
            Field::new("username", "Username", Kind::Text, ""),
            Field::new("password", "Password", Kind::Password, "").hint("8 to 128 characters"),
        ],
        admin_err,
        "Add tenant admin",
    ));
    let _ = write!(
        b,
        r#"<p><a href="/portal/t/{u}/extensions">Manage this tenant</a> · <a href="/portal/admin/tenants/{u}/delete">Delete this tenant…</a></p>"#
    );
    Ok(html(page(
        &format!("Tenant {}", t.name),
        Some(session),
        None,
        &b,
    )))
}

async fn show(State(s): State<ApiState>, session: Session, Path(key): Path<String>) -> Page {
    let t = tenant_of(&s, &session, &key)?;
    show_page(&s, &session, &t, None, None).await
}

async fn rename(
    State(s): State<ApiState>,
    session: Session,
    Path(key): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = tenant_of(&s, &session, &key)?;
    let f = Fields(f);
    session.check_csrf(&f)?;
    let res = async {
        let name = validate::name(f.str("name"))?;
        let domain = validate::domain(f.str("domain"))?;
        Ok::<_, ApiError>(
            s.store
                .update_tenant(&t.id, Some(&name), Some(&domain))
                .await?,
        )
    }
    .await;
    match res {
        Ok(t) => Ok(see_other(format!("/portal/admin/tenants/{}", url(&t.id)))),
        Err(e) => {
            let mut shown = (*t).clone();
            shown.name = f.str("name").to_string();
            shown.domain = f.str("domain").to_string();
            let r = show_page(&s, &session, &shown, Some(&e), None).await?;
            Err(refused(e.status, body_of(r).await))
        }
    }
}

/// The HTML of a rendered page, to send again with another status.
pub(crate) async fn body_of(r: Response) -> String {
    let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

async fn confirm_delete(
    State(s): State<ApiState>,
    session: Session,
    Path(key): Path<String>,
) -> Page {
    let t = tenant_of(&s, &session, &key)?;
    let n = s.store.directory().extensions(&t.id).len();
    let b = format!(
        r#"<p class="warning">Deleting <strong>{name}</strong> ({d}) removes its {n} extension(s), ring groups, call park settings and groups, tokens, portal admins, call records and park events. This cannot be undone.</p><form method="post" action="/portal/admin/tenants/{u}/delete" class="stack narrow" id="delete-tenant"><input type="hidden" name="_csrf" value="{c}"><label for="f-confirm"><span>Type the SIP domain <code>{d}</code> to confirm</span><input type="text" name="confirm" id="f-confirm"></label><button type="submit" class="danger">Delete tenant</button></form>"#,
        name = esc(&t.name),
        d = esc(&t.domain),
        u = url(&t.id),
        c = esc(&session.csrf)
    );
    Ok(html(page("Delete tenant", Some(&session), None, &b)))
}

async fn delete(
    State(s): State<ApiState>,
    session: Session,
    Path(key): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = tenant_of(&s, &session, &key)?;
    let f = Fields(f);
    session.check_csrf(&f)?;
    if f.str("confirm").trim() != t.domain {
        let e = ApiError::invalid("confirm", "type the tenant's SIP domain exactly to confirm");
        let b = format!(
            r#"<form method="post" action="/portal/admin/tenants/{u}/delete" class="stack narrow" id="delete-tenant"><input type="hidden" name="_csrf" value="{c}"><label for="f-confirm"><span>Type the SIP domain <code>{d}</code> to confirm</span><input type="text" name="confirm" id="f-confirm">{err}</label><button type="submit" class="danger">Delete tenant</button></form>"#,
            u = url(&t.id),
            c = esc(&session.csrf),
            d = esc(&t.domain),
            err = crate::html::error_for(Some(&e), "confirm")
        );
        return Err(refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            page("Delete tenant", Some(&session), None, &b),
        ));
    }
    s.store
        .delete_tenant(&t.id)
        .await
        .map_err(crate::internal)?;
    Ok(see_other("/portal/admin/tenants".into()))
}

/// A username: 3 to 64 letters, digits, `.`, `_`, `-` or `@`.
pub fn username(v: &str) -> Result<String, ApiError> {
    let v = v.trim();
    let ok = (3..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if !ok {
        return Err(ApiError::invalid(
            "username",
            "username must be 3 to 64 letters, digits, dots, dashes, underscores or @",
        ));
    }
    Ok(v.to_string())
}

async fn add_admin(
    State(s): State<ApiState>,
    session: Session,
    Path(key): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = tenant_of(&s, &session, &key)?;
    let f = Fields(f);
    session.check_csrf(&f)?;
    let res = async {
        let name = username(f.str("username"))?;
        let password = validate::password(f.str("password"))?;
        let hash = hash_async(password).await;
        Ok::<_, ApiError>(
            s.store
                .create_portal_user(&name, &hash, Some(&t.id))
                .await?,
        )
    }
    .await;
    match res {
        Ok(_) => Ok(see_other(format!("/portal/admin/tenants/{}", url(&t.id)))),
        Err(e) => {
            let r = show_page(&s, &session, &t, None, Some(&e)).await?;
            Err(refused(e.status, body_of(r).await))
        }
    }
}

async fn delete_admin(
    State(s): State<ApiState>,
    session: Session,
    Path((key, id)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = tenant_of(&s, &session, &key)?;
    session.check_csrf(&Fields(f))?;
    let admins = s
        .store
        .portal_users(Some(&t.id))
        .await
        .map_err(crate::internal)?;
    if admins.iter().any(|a| a.id == id) {
        s.store
            .delete_portal_user(&id)
            .await
            .map_err(crate::internal)?;
    }
    Ok(see_other(format!("/portal/admin/tenants/{}", url(&t.id))))
}
