//! Phones: MAC, vendor, model, extension, label and key layout (Visual
//! Park, Visual Group Park, BLF, speed dial), Reprovision, a new
//! provisioning password, and the link to the generated configuration.
//! The store checks every field, as for the API.

use std::fmt::Write;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Form, Router};
use orbit_http::{ApiError, ApiState};
use orbit_store::{
    normalize_mac, CallCommand, Phone, PhoneKey, PhoneKeyKind, PhonePatch, PhoneSpec, Tenant,
    PHONE_VENDORS,
};

use crate::extensions::tpage;
use crate::html::{button, esc, form, time, url, Field, Kind};
use crate::session::Session;
use crate::{html, refused, see_other, Fields, Page};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/portal/t/{tenant}/phones", get(list).post(create))
        .route("/portal/t/{tenant}/phones/{id}", get(edit).post(update))
        .route(
            "/portal/t/{tenant}/phones/{id}/reprovision",
            post(reprovision),
        )
        .route(
            "/portal/t/{tenant}/phones/{id}/password",
            post(new_password),
        )
        .route("/portal/t/{tenant}/phones/{id}/delete", post(delete))
}

const KEYS_HINT: &str = "one key per line: type, target, label; types visual_park, visual_group_park, blf, speed_dial; target - for none (own extension). Example: visual_park 103 Park 103";

/// Keys typed one per line: `type [target|-] [label...]`.
fn keys_from(v: &str) -> Result<Vec<PhoneKey>, ApiError> {
    let mut out = Vec::new();
    for (i, line) in v
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let mut parts = line.splitn(3, char::is_whitespace);
        let kind = parts.next().unwrap_or("");
        let kind = PhoneKeyKind::parse(kind).ok_or_else(|| {
            ApiError::invalid("keys", format!("keys line {}: {kind:?} is not visual_park, visual_group_park, blf or speed_dial", i + 1))
        })?;
        let target = parts
            .next()
            .map(str::trim)
            .filter(|t| !t.is_empty() && *t != "-")
            .map(str::to_string);
        let label = parts
            .next()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string);
        out.push(PhoneKey {
            kind,
            target,
            label,
        });
    }
    Ok(out)
}

fn keys_text(keys: &[PhoneKey]) -> String {
    keys.iter()
        .map(|k| {
            let mut l = format!("{} {}", k.kind.as_str(), k.target.as_deref().unwrap_or("-"));
            if let Some(label) = &k.label {
                l.push(' ');
                l.push_str(label);
            }
            l
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `http://<Host>` as the browser reached Orbit, for the configuration link.
use orbit_http::base_url;

fn vendors() -> Vec<(&'static str, &'static str)> {
    PHONE_VENDORS.iter().map(|v| (*v, *v)).collect()
}

fn phone_fields<'a>(
    v: &dyn Fn(&str) -> String,
    vendors: &'a [(&'a str, &'a str)],
    new: bool,
) -> Vec<Field<'a>> {
    let mut f = Vec::new();
    if new {
        f.push(
            Field::new("mac", "MAC address", Kind::Text, v("mac"))
                .hint("12 hex digits, such as 00:04:13:a1:b2:c3"),
        );
        f.push(Field::new(
            "vendor",
            "Vendor",
            Kind::Select(vendors),
            v("vendor"),
        ));
    }
    f.push(Field::new("model", "Model", Kind::Text, v("model")).hint("such as D785"));
    f.push(
        Field::new("extension", "Extension", Kind::Text, v("extension"))
            .hint("the extension it registers as; empty = none"),
    );
    f.push(Field::new("label", "Label", Kind::Text, v("label")));
    f
}

fn keys_area(value: &str, err: Option<&ApiError>) -> String {
    format!(
        r#"<label for="f-keys"><span>Keys</span><textarea name="keys" id="f-keys" rows="6" cols="60">{v}</textarea><small>{h}</small>{e}</label>"#,
        v = esc(value),
        h = esc(KEYS_HINT),
        e = crate::html::error_for(err, "keys")
    )
}

/// A form with the phone fields and the keys text area.
fn phone_form(
    action: &str,
    csrf: &str,
    id: &str,
    fields: &[Field],
    keys: &str,
    err: Option<&ApiError>,
    submit: &str,
) -> String {
    let keys_err = err.filter(|e| e.field.as_deref() == Some("keys"));
    let mut s = form(
        action,
        csrf,
        id,
        fields,
        err.filter(|_| keys_err.is_none()),
        submit,
    );
    let at = s.rfind("<button").unwrap_or(s.len());
    s.insert_str(at, &keys_area(keys, keys_err));
    s
}

fn list_page(
    s: &ApiState,
    session: &Session,
    t: &Tenant,
    err: Option<&ApiError>,
    f: Option<&Fields>,
) -> String {
    let u = url(&t.id);
    let mut b = String::from(
        r#"<table id="phones"><thead><tr><th>MAC</th><th>Vendor / model</th><th>Extension</th><th>Label</th><th>Keys</th><th>Config version</th><th>Last fetched</th><th></th></tr></thead><tbody>"#,
    );
    for p in s.store.directory().phones(&t.id).iter() {
        let _ = write!(
            b,
            r#"<tr data-mac="{mac}"><td><a href="/portal/t/{u}/phones/{id}">{mac}</a></td><td>{vendor} {model}</td><td>{ext}</td><td>{label}</td><td>{keys}</td><td>{ver}</td><td>{at}</td><td>{rep}</td></tr>"#,
            mac = esc(&p.mac),
            id = url(&p.id),
            vendor = esc(&p.vendor),
            model = esc(&p.model),
            ext = esc(p.extension.as_deref().unwrap_or("—")),
            label = esc(&p.label),
            keys = p.keys.len(),
            ver = p.config_version,
            at = p.provisioned_at.map(time).unwrap_or_else(|| "never".into()),
            rep = button(
                &format!("/portal/t/{u}/phones/{}/reprovision", url(&p.id)),
                &session.csrf,
                "Reprovision",
                "small",
                ""
            )
        );
    }
    b.push_str("</tbody></table><h2>New phone</h2>");
    let v = |n: &str| {
        f.map(|f| f.str(n).to_string()).unwrap_or_else(|| {
            if n == "vendor" {
                "snom".into()
            } else {
                String::new()
            }
        })
    };
    let vendors = vendors();
    let keys = f
        .map(|f| f.str("keys").to_string())
        .unwrap_or_else(|| "visual_park - Park\nvisual_group_park - Group park".into());
    b.push_str(&phone_form(
        &format!("/portal/t/{u}/phones"),
        &session.csrf,
        "new-phone",
        &phone_fields(&v, &vendors, true),
        &keys,
        err,
        "Add phone",
    ));
    b.push_str(r#"<script src="/portal/assets/park.js"></script>"#);
    tpage("Phones", session, t, &b)
}

async fn list(State(s): State<ApiState>, session: Session, Path(key): Path<String>) -> Page {
    let t = session.tenant(&s, &key)?;
    Ok(html(list_page(&s, &session, &t, None, None)))
}

fn extension_of(f: &Fields) -> Result<Option<String>, ApiError> {
    f.opt("extension")
        .map(|e| orbit_http::validate::number_in("extension", e, "an extension number"))
        .transpose()
}

/// The phone page, with the provisioning password when one was just made.
fn phone_page(
    session: &Session,
    t: &Tenant,
    p: &Phone,
    headers: &HeaderMap,
    password: Option<&str>,
    err: Option<&ApiError>,
    f: Option<&Fields>,
) -> String {
    let u = url(&t.id);
    let base = format!("/portal/t/{u}/phones/{}", url(&p.id));
    let config =
        orbit_provision::config_url(&p.vendor, &base_url(headers), &p.mac).unwrap_or_default();
    let mut b = String::new();
    if let Some(pw) = password {
        let _ = write!(
            b,
            r#"<div class="ok banner" id="provisioning-password"><p>Provisioning password (shown only now): <code>{pw}</code></p><p>Set the phone's setting URL to <code>{c}</code> with user <code>{mac}</code> and this password.</p></div>"#,
            pw = esc(pw),
            c = esc(&config),
            mac = esc(&p.mac)
        );
    }
    let _ = write!(
        b,
        r#"<p>MAC <strong>{mac}</strong> · {vendor} · configuration version {ver} · last fetched {at} · <a href="{c}" id="config-link">generated configuration</a> (asks for the phone's credentials)</p>"#,
        mac = esc(&p.mac),
        vendor = esc(&p.vendor),
        ver = p.config_version,
        at = p.provisioned_at.map(time).unwrap_or_else(|| "never".into()),
        c = esc(&config)
    );
    let v = |n: &str| match f {
        Some(f) => f.str(n).to_string(),
        None => match n {
            "model" => p.model.clone(),
            "extension" => p.extension.clone().unwrap_or_default(),
            "label" => p.label.clone(),
            _ => String::new(),
        },
    };
    let keys = f
        .map(|f| f.str("keys").to_string())
        .unwrap_or_else(|| keys_text(&p.keys));
    b.push_str(&phone_form(
        &base,
        &session.csrf,
        "edit-phone",
        &phone_fields(&v, &[], false),
        &keys,
        err,
        "Save",
    ));
    let _ = write!(
        b,
        r#"<p class="actions">{rep} {pw} {del}</p><script src="/portal/assets/park.js"></script>"#,
        rep = button(
            &format!("{base}/reprovision"),
            &session.csrf,
            "Reprovision",
            "",
            ""
        ),
        pw = button(
            &format!("{base}/password"),
            &session.csrf,
            "New provisioning password",
            "",
            ""
        ),
        del = button(
            &format!("{base}/delete"),
            &session.csrf,
            "Delete",
            "danger confirm",
            ""
        )
    );
    tpage(&format!("Phone {}", p.mac), session, t, &b)
}

async fn create(
    State(s): State<ApiState>,
    session: Session,
    Path(key): Path<String>,
    headers: HeaderMap,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    let f = Fields(f);
    session.check_csrf(&f)?;
    let res = async {
        let mac = normalize_mac(f.str("mac")).ok_or_else(|| {
            ApiError::invalid(
                "mac",
                "mac must be 12 hexadecimal digits, such as 00:04:13:a1:b2:c3",
            )
        })?;
        let spec = PhoneSpec {
            mac,
            vendor: f.str("vendor").to_string(),
            model: f.str("model").trim().to_string(),
            extension: extension_of(&f)?,
            label: f.str("label").trim().to_string(),
            keys: keys_from(f.str("keys"))?,
        };
        Ok::<_, ApiError>(s.store.create_phone(&t.id, spec).await?)
    }
    .await;
    match res {
        Ok((p, password)) => Ok(html(phone_page(
            &session,
            &t,
            &p,
            &headers,
            Some(&password),
            None,
            None,
        ))),
        Err(e) => Err(refused(
            e.status,
            list_page(&s, &session, &t, Some(&e), Some(&f)),
        )),
    }
}

fn phone_of(
    s: &ApiState,
    session: &Session,
    t: &Tenant,
    id: &str,
) -> Result<std::sync::Arc<Phone>, axum::response::Response> {
    s.store
        .directory()
        .phone(&t.id, id)
        .ok_or_else(|| crate::not_found(Some(session)))
}

async fn edit(
    State(s): State<ApiState>,
    session: Session,
    Path((key, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Page {
    let t = session.tenant(&s, &key)?;
    let p = phone_of(&s, &session, &t, &id)?;
    Ok(html(phone_page(
        &session, &t, &p, &headers, None, None, None,
    )))
}

async fn update(
    State(s): State<ApiState>,
    session: Session,
    Path((key, id)): Path<(String, String)>,
    headers: HeaderMap,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    let p = phone_of(&s, &session, &t, &id)?;
    let f = Fields(f);
    session.check_csrf(&f)?;
    let res = async {
        let patch = PhonePatch {
            model: Some(f.str("model").trim().to_string()),
            extension: Some(extension_of(&f)?),
            label: Some(f.str("label").trim().to_string()),
            keys: Some(keys_from(f.str("keys"))?),
        };
        Ok::<_, ApiError>(s.store.update_phone(&t.id, &p.id, patch).await?)
    }
    .await;
    match res {
        Ok(p) => Ok(see_other(format!(
            "/portal/t/{}/phones/{}",
            url(&t.id),
            url(&p.id)
        ))),
        Err(e) => Err(refused(
            e.status,
            phone_page(&session, &t, &p, &headers, None, Some(&e), Some(&f)),
        )),
    }
}

async fn reprovision(
    State(s): State<ApiState>,
    session: Session,
    Path((key, id)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    let p = phone_of(&s, &session, &t, &id)?;
    session.check_csrf(&Fields(f))?;
    let p = s
        .store
        .reprovision_phone(&t.id, &p.id)
        .await
        .map_err(|e| crate::store_failure(&session, e))?;
    // As the API does: a registered phone is told to fetch at once.
    if let Some(ext) = &p.extension {
        // Fire and forget: the answer (a oneshot receiver) is not awaited.
        drop(s.control.command(CallCommand::CheckSync {
            tenant_id: t.id.clone(),
            extension: ext.clone(),
        }));
    }
    Ok(see_other(format!(
        "/portal/t/{}/phones/{}",
        url(&t.id),
        url(&p.id)
    )))
}

async fn new_password(
    State(s): State<ApiState>,
    session: Session,
    Path((key, id)): Path<(String, String)>,
    headers: HeaderMap,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    let p = phone_of(&s, &session, &t, &id)?;
    session.check_csrf(&Fields(f))?;
    let (p, password) = s
        .store
        .reset_phone_password(&t.id, &p.id)
        .await
        .map_err(|e| crate::store_failure(&session, e))?;
    Ok(html(phone_page(
        &session,
        &t,
        &p,
        &headers,
        Some(&password),
        None,
        None,
    )))
}

async fn delete(
    State(s): State<ApiState>,
    session: Session,
    Path((key, id)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    let p = phone_of(&s, &session, &t, &id)?;
    session.check_csrf(&Fields(f))?;
    s.store
        .delete_phone(&t.id, &p.id)
        .await
        .map_err(|e| crate::store_failure(&session, e))?;
    Ok(see_other(format!("/portal/t/{}/phones", url(&t.id))))
}
