//! Advanced Services > Call Park: the tenant's park settings and its call
//! park groups (members added, removed and reordered; per-group recall).

use std::fmt::Write;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Form, Router};
use orbit_http::{validate, ApiError, ApiState};
use orbit_store::{
    ParkGroup, ParkGroupPatch, ParkGroupSpec, ParkSettingsSpec, RecallSettings, Tenant,
    MAX_PARKED_PER_EXTENSION, MAX_RECALL_ATTEMPTS, RECALL_RING_S, RECALL_TIME_S, RETRY_INTERVAL_S,
    RING_GROUP_WAIT_S,
};

use crate::extensions::{split_members, tpage};
use crate::html::{button, error_for, esc, field, form_error, url, Field, Kind};
use crate::session::Session;
use crate::{html, refused, see_other, Fields, Page};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/portal/t/{tenant}/call-park",
            get(settings).post(save_settings),
        )
        .route(
            "/portal/t/{tenant}/call-park/music",
            post(upload_music).layer(axum::extract::DefaultBodyLimit::max(MAX_MUSIC_BODY)),
        )
        .route(
            "/portal/t/{tenant}/call-park/music/reset",
            post(reset_music),
        )
        .route("/portal/t/{tenant}/call-park/groups", post(create_group))
        .route(
            "/portal/t/{tenant}/call-park/groups/{id}",
            get(group).post(save_group),
        )
        .route(
            "/portal/t/{tenant}/call-park/groups/{id}/members",
            post(add_member),
        )
        .route(
            "/portal/t/{tenant}/call-park/groups/{id}/members/{ext}/{op}",
            post(member_op),
        )
        .route(
            "/portal/t/{tenant}/call-park/groups/{id}/recall",
            post(save_group_recall),
        )
        .route(
            "/portal/t/{tenant}/call-park/groups/{id}/delete",
            post(delete_group),
        )
}

/// Largest music-on-hold upload, as the API's.
const MAX_MUSIC_BODY: usize = 16 * 1024 * 1024;

const RECALL_TO: &[(&str, &str)] = &[
    ("PARKER_ONLY", "The parker"),
    ("PARKER_THEN_RING_GROUP", "The parker, then a ring group"),
    ("RING_GROUP_ONLY", "A ring group"),
    ("NUMBER", "A number"),
];

const RECALL_FIELDS: &[&str] = &[
    "recall.recall_time_s",
    "recall.recall_to",
    "recall.ring_group",
    "recall.recall_number",
    "recall.ring_group_wait_s",
    "recall.ring_s",
    "recall.retry_interval_s",
    "recall.max_recall_attempts",
    "recall.final_destination",
    "recall.display_prefix",
];

fn recall_values(r: &RecallSettings) -> impl Fn(&str) -> String + '_ {
    move |n: &str| match n {
        "recall.recall_time_s" => r.recall_time_s.to_string(),
        "recall.recall_to" => r.recall_to.as_str().to_string(),
        "recall.ring_group" => r.ring_group.clone().unwrap_or_default(),
        "recall.recall_number" => r.recall_number.clone().unwrap_or_default(),
        "recall.ring_group_wait_s" => r.ring_group_wait_s.to_string(),
        "recall.ring_s" => r.ring_s.to_string(),
        "recall.retry_interval_s" => r.retry_interval_s.to_string(),
        "recall.max_recall_attempts" => r.max_recall_attempts.to_string(),
        "recall.final_destination" => r.final_destination.clone().unwrap_or_default(),
        "recall.display_prefix" => r.display_prefix.clone(),
        _ => String::new(),
    }
}

fn recall_fields<'a>(v: &dyn Fn(&str) -> String) -> Vec<Field<'a>> {
    vec![
        Field::new(
            "recall.recall_time_s",
            "Recall timer (s)",
            Kind::Number,
            v("recall.recall_time_s"),
        )
        .hint("1 to 900: how long a call stays parked before it recalls"),
        Field::new(
            "recall.recall_to",
            "Recall to",
            Kind::Select(RECALL_TO),
            v("recall.recall_to"),
        ),
        Field::new(
            "recall.ring_group",
            "Recall ring group",
            Kind::Text,
            v("recall.ring_group"),
        )
        .hint("needed by the ring group modes"),
        Field::new(
            "recall.recall_number",
            "Recall number",
            Kind::Text,
            v("recall.recall_number"),
        )
        .hint("needed by \"A number\""),
        Field::new(
            "recall.ring_group_wait_s",
            "Ring group wait (s)",
            Kind::Number,
            v("recall.ring_group_wait_s"),
        )
        .hint("5 to 300"),
        Field::new(
            "recall.ring_s",
            "Ring per attempt (s)",
            Kind::Number,
            v("recall.ring_s"),
        )
        .hint("5 to 300"),
        Field::new(
            "recall.retry_interval_s",
            "Retry interval (s)",
            Kind::Number,
            v("recall.retry_interval_s"),
        )
        .hint("1 to 300"),
        Field::new(
            "recall.max_recall_attempts",
            "Recall attempts",
            Kind::Number,
            v("recall.max_recall_attempts"),
        )
        .hint("1 to 20"),
        Field::new(
            "recall.final_destination",
            "Finally go to",
            Kind::Text,
            v("recall.final_destination"),
        )
        .hint("an extension or ring group; empty = hang up"),
        Field::new(
            "recall.display_prefix",
            "Display prefix",
            Kind::Text,
            v("recall.display_prefix"),
        )
        .hint("shown before the caller's name on a recall"),
    ]
}

/// Recall settings from a form, checked as the API checks its `recall` object.
fn recall_from(f: &Fields) -> Result<RecallSettings, ApiError> {
    let d = RecallSettings::default();
    let int = |field: &str, range, default: u32| -> Result<u32, ApiError> {
        f.int(field)?
            .map(|v| validate::in_range(field, v, range, ""))
            .transpose()
            .map(|v| v.unwrap_or(default))
    };
    let number = |field: &str, what: &str| -> Result<Option<String>, ApiError> {
        f.opt(field)
            .map(|v| validate::number_in(field, v, what))
            .transpose()
    };
    Ok(RecallSettings {
        recall_time_s: int("recall.recall_time_s", &RECALL_TIME_S, d.recall_time_s)?,
        recall_to: f
            .opt("recall.recall_to")
            .map(|v| validate::recall_to("recall.recall_to", v))
            .transpose()?
            .unwrap_or(d.recall_to),
        recall_number: number("recall.recall_number", "an extension or ring group number")?,
        ring_group: number("recall.ring_group", "a ring group number")?,
        ring_group_wait_s: int(
            "recall.ring_group_wait_s",
            &RING_GROUP_WAIT_S,
            d.ring_group_wait_s,
        )?,
        ring_s: int("recall.ring_s", &RECALL_RING_S, d.ring_s)?,
        retry_interval_s: int(
            "recall.retry_interval_s",
            &RETRY_INTERVAL_S,
            d.retry_interval_s,
        )?,
        max_recall_attempts: int(
            "recall.max_recall_attempts",
            &MAX_RECALL_ATTEMPTS,
            d.max_recall_attempts,
        )?,
        final_destination: number(
            "recall.final_destination",
            "an extension or ring group number",
        )?,
        display_prefix: match f.get("recall.display_prefix") {
            Some(v) => validate::display_prefix("recall.display_prefix", v)?,
            None => d.display_prefix,
        },
    })
}

fn fields_html(fields: &[Field], err: Option<&ApiError>) -> String {
    fields.iter().map(|f| field(f, err)).collect()
}

fn settings_page(
    s: &ApiState,
    session: &Session,
    t: &Tenant,
    err: Option<&ApiError>,
    f: Option<&Fields>,
) -> String {
    let u = url(&t.id);
    let cur = s.store.directory().park_settings(&t.id);
    let rv = recall_values(&cur.recall);
    let v = |n: &str| -> String {
        if let Some(f) = f {
            return f.str(n).to_string();
        }
        match n {
            "enabled" => cur.enabled.to_string(),
            "park_code" => cur.park_code.clone(),
            "group_park_code" => cur.group_park_code.clone(),
            "retrieve_code" => cur.retrieve_code.clone(),
            "notify_parker" => cur.notify_parker.to_string(),
            "max_parked_per_extension" => cur.max_parked_per_extension.to_string(),
            n => rv(n),
        }
    };
    let top = [
        Field::new("enabled", "Call park enabled", Kind::Check, v("enabled")),
        Field::new("park_code", "Park code", Kind::Text, v("park_code"))
            .hint("* or # and 1 to 6 digits"),
        Field::new(
            "group_park_code",
            "Group park code",
            Kind::Text,
            v("group_park_code"),
        ),
        Field::new(
            "retrieve_code",
            "Retrieve code",
            Kind::Text,
            v("retrieve_code"),
        ),
        Field::new(
            "notify_parker",
            "Notify the parker",
            Kind::Check,
            v("notify_parker"),
        ),
        Field::new(
            "max_parked_per_extension",
            "Calls parked per extension",
            Kind::Number,
            v("max_parked_per_extension"),
        )
        .hint("1 to 100"),
    ];
    let recall = recall_fields(&v);
    let mut names: Vec<&str> = top.iter().map(|f| f.name).collect();
    names.extend(RECALL_FIELDS);
    let music = s.music.info(&t.id);
    let mut b = String::from(
        r##"<nav class="tabs"><a href="#settings">Settings</a><a href="#groups">Call park groups</a></nav><h2 id="settings">Settings</h2>"##,
    );
    let _ = write!(
        b,
        r#"<form method="post" action="/portal/t/{u}/call-park" id="park-settings" class="stack">{e}<input type="hidden" name="_csrf" value="{c}">{top}<fieldset><legend>Recall</legend>{rec}</fieldset><button type="submit">Save settings</button></form>"#,
        e = form_error(err, &names),
        c = esc(&session.csrf),
        top = fields_html(&top, err),
        rec = fields_html(&recall, err)
    );
    let _ = write!(
        b,
        r#"<h3 id="music">Music on hold</h3><p id="music-source">Playing: <strong>{src}</strong> ({secs:.1} s loop).</p><form id="music-upload" class="stack narrow" data-action="/portal/t/{u}/call-park/music" data-csrf="{c}"><label for="f-music"><span>Upload music (WAV: 8000 Hz, mono, 16-bit PCM, at most 16 MiB)</span><input type="file" id="f-music" name="music" accept=".wav,audio/wav"><span class="error" role="alert" data-field="body" hidden></span></label><button type="submit">Upload</button></form>{reset}"#,
        src = if music.custom {
            "uploaded file"
        } else {
            "built-in music"
        },
        secs = music.seconds,
        c = esc(&session.csrf),
        reset = if music.custom {
            button(
                &format!("/portal/t/{u}/call-park/music/reset"),
                &session.csrf,
                "Use the built-in music",
                "danger",
                "",
            )
        } else {
            String::new()
        }
    );
    b.push_str(r#"<h2 id="groups">Call park groups</h2><table id="park-groups"><thead><tr><th>Name</th><th>Members</th><th>Recall</th><th></th></tr></thead><tbody>"#);
    for g in s.store.directory().park_groups(&t.id).iter() {
        let _ = write!(
            b,
            r#"<tr><td><a href="/portal/t/{u}/call-park/groups/{id}">{name}</a></td><td>{m}</td><td>{r}</td><td>{del}</td></tr>"#,
            id = url(&g.id),
            name = esc(&g.name),
            m = esc(&g.members.join(", ")),
            r = if g.recall.is_some() {
                "own settings"
            } else {
                "tenant settings"
            },
            del = button(
                &format!("/portal/t/{u}/call-park/groups/{}/delete", url(&g.id)),
                &session.csrf,
                "Delete",
                "danger confirm",
                ""
            )
        );
    }
    b.push_str("</tbody></table><h3>New call park group</h3>");
    let gv = |n: &str| f.map(|f| f.str(n).to_string()).unwrap_or_default();
    b.push_str(&crate::html::form(
        &format!("/portal/t/{u}/call-park/groups"),
        &session.csrf,
        "new-park-group",
        &[
            Field::new("name", "Name", Kind::Text, gv("name")).hint("unique in the tenant"),
            Field::new("members", "Members", Kind::Text, gv("members")).hint("extensions in hunting order, separated by commas; an extension is in at most one group"),
        ],
        err.filter(|e| matches!(e.field.as_deref(), Some("name") | Some("members"))),
        "Create group",
    ));
    b.push_str(r#"<script src="/portal/assets/park.js"></script>"#);
    tpage("Call Park", session, t, &b)
}

async fn settings(State(s): State<ApiState>, session: Session, Path(key): Path<String>) -> Page {
    let t = session.tenant(&s, &key)?;
    Ok(html(settings_page(&s, &session, &t, None, None)))
}

async fn save_settings(
    State(s): State<ApiState>,
    session: Session,
    Path(key): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    let f = Fields(f);
    session.check_csrf(&f)?;
    let res = async {
        let code = |field: &str| validate::feature_code(field, f.str(field).trim());
        let spec = ParkSettingsSpec {
            enabled: f.flag("enabled"),
            park_code: code("park_code")?,
            group_park_code: code("group_park_code")?,
            retrieve_code: code("retrieve_code")?,
            notify_parker: f.flag("notify_parker"),
            max_parked_per_extension: validate::in_range(
                "max_parked_per_extension",
                f.int("max_parked_per_extension")?.ok_or_else(|| {
                    ApiError::invalid(
                        "max_parked_per_extension",
                        "max_parked_per_extension is required",
                    )
                })?,
                &MAX_PARKED_PER_EXTENSION,
                "",
            )?,
            recall: recall_from(&f)?,
        };
        Ok::<_, ApiError>(s.store.put_park_settings(&t.id, spec).await?)
    }
    .await;
    match res {
        Ok(_) => Ok(see_other(format!(
            "/portal/t/{}/call-park?saved=1",
            url(&t.id)
        ))),
        // The group form's fields are not in this form: keep them out of its values.
        Err(e) => Err(refused(
            e.status,
            settings_page(&s, &session, &t, Some(&e), Some(&f)),
        )),
    }
}

async fn create_group(
    State(s): State<ApiState>,
    session: Session,
    Path(key): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    let f = Fields(f);
    session.check_csrf(&f)?;
    let res = async {
        let spec = ParkGroupSpec {
            name: validate::park_group_name(f.str("name"))?,
            members: validate::park_members(&split_members(f.str("members")))?,
            recall: None,
        };
        Ok::<_, ApiError>(s.store.create_park_group(&t.id, spec).await?)
    }
    .await;
    match res {
        Ok(g) => Ok(see_other(format!(
            "/portal/t/{}/call-park/groups/{}",
            url(&t.id),
            url(&g.id)
        ))),
        Err(e) => {
            // Re-render with the settings as stored and the group form as typed.
            let mut body = settings_page(&s, &session, &t, None, None);
            let typed = crate::html::form(
                &format!("/portal/t/{}/call-park/groups", url(&t.id)),
                &session.csrf,
                "new-park-group",
                &[
                    Field::new("name", "Name", Kind::Text, f.str("name")).hint("unique in the tenant"),
                    Field::new("members", "Members", Kind::Text, f.str("members")).hint("extensions in hunting order, separated by commas; an extension is in at most one group"),
                ],
                Some(&e),
                "Create group",
            );
            // Swap the empty group form for the typed one.
            if let Some(start) = body
                .rfind("<form method=\"post\" action=\"/portal/t/")
                .filter(|i| body[*i..].contains("id=\"new-park-group\""))
            {
                if let Some(end) = body[start..].find("</form>") {
                    body.replace_range(start..start + end + "</form>".len(), &typed);
                }
            }
            Err(refused(e.status, body))
        }
    }
}

fn group_of(
    s: &ApiState,
    session: &Session,
    t: &Tenant,
    id: &str,
) -> Result<std::sync::Arc<ParkGroup>, axum::response::Response> {
    s.store
        .directory()
        .park_group(&t.id, id)
        .ok_or_else(|| crate::not_found(Some(session)))
}

fn group_page(
    s: &ApiState,
    session: &Session,
    t: &Tenant,
    g: &ParkGroup,
    err: Option<&ApiError>,
    f: Option<&Fields>,
) -> String {
    let base = format!("/portal/t/{}/call-park/groups/{}", url(&t.id), url(&g.id));
    let c = &session.csrf;
    let mut b = String::from(
        r##"<nav class="tabs"><a href="#general">General</a><a href="#members">Members</a><a href="#recall">Recall</a></nav><h2 id="general">General</h2>"##,
    );
    let name_v = f.and_then(|f| f.get("name")).unwrap_or(&g.name).to_string();
    b.push_str(&crate::html::form(
        &base,
        c,
        "group-name",
        &[Field::new("name", "Name", Kind::Text, name_v)],
        err.filter(|e| e.field.as_deref() == Some("name")),
        "Rename",
    ));
    b.push_str(r#"<h2 id="members">Members</h2><p>Calls parked with the group park code go to the first member, in this order, that is registered and holds no parked call.</p><ol id="members-list">"#);
    let n = g.members.len();
    for (i, m) in g.members.iter().enumerate() {
        let name = s
            .store
            .directory()
            .extension(&t.id, m)
            .map(|e| e.display_name.clone())
            .unwrap_or_default();
        let mu = url(m);
        let _ = write!(
            b,
            r#"<li data-member="{me}"><span class="member">{me}</span> <span class="muted">{name}</span> "#,
            me = esc(m),
            name = esc(&name)
        );
        if i > 0 {
            b.push_str(&button(
                &format!("{base}/members/{mu}/up"),
                c,
                "↑",
                "small up",
                "",
            ));
        }
        if i + 1 < n {
            b.push_str(&button(
                &format!("{base}/members/{mu}/down"),
                c,
                "↓",
                "small down",
                "",
            ));
        }
        b.push_str(&button(
            &format!("{base}/members/{mu}/remove"),
            c,
            "Remove",
            "small danger remove",
            "",
        ));
        b.push_str("</li>");
    }
    let add_v = f.and_then(|f| f.get("member")).unwrap_or("");
    let members_err = err.filter(|e| e.field.as_deref() == Some("members"));
    let _ = write!(
        b,
        r#"</ol><form method="post" action="{base}/members" id="add-member" class="stack narrow"><input type="hidden" name="_csrf" value="{c}"><label for="f-member"><span>Add extension</span><input type="text" name="member" id="f-member" value="{v}">{e}</label><button type="submit">Add member</button></form>"#,
        c = esc(c),
        v = esc(add_v),
        e = error_for(members_err, "members")
    );
    b.push_str(r#"<h2 id="recall">Recall</h2>"#);
    // Typed values are shown again only when the recall form was the one sent.
    let f_recall = f.filter(|f| f.get("override").is_some());
    let overridden = f_recall
        .map(|f| f.flag("override"))
        .unwrap_or(g.recall.is_some());
    let tenant_recall = s.store.directory().park_settings(&t.id).recall.clone();
    let shown = g.recall.clone().unwrap_or(tenant_recall);
    let rv = recall_values(&shown);
    let v = |n: &str| {
        f_recall
            .map(|f| f.str(n).to_string())
            .unwrap_or_else(|| rv(n))
    };
    let recall_err = err.filter(|e| e.field.as_deref().is_some_and(|x| x.starts_with("recall")));
    let _ = write!(
        b,
        r#"<form method="post" action="{base}/recall" id="group-recall" class="stack">{fe}<input type="hidden" name="_csrf" value="{c}"><label for="f-override"><span>Use these recall settings for this group (otherwise the tenant's apply)</span><input type="hidden" name="override" value="false"><input type="checkbox" name="override" id="f-override" value="true"{chk}></label>{fields}<button type="submit">Save recall settings</button></form>"#,
        fe = form_error(recall_err, RECALL_FIELDS),
        c = esc(c),
        chk = if overridden { " checked" } else { "" },
        fields = fields_html(&recall_fields(&v), recall_err)
    );
    b.push_str(&format!(r#"<p><a href="/portal/t/{}/call-park#groups">Back to call park groups</a></p><script src="/portal/assets/park.js"></script>"#, url(&t.id)));
    tpage(&format!("Call park group {}", g.name), session, t, &b)
}

async fn group(
    State(s): State<ApiState>,
    session: Session,
    Path((key, id)): Path<(String, String)>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    let g = group_of(&s, &session, &t, &id)?;
    Ok(html(group_page(&s, &session, &t, &g, None, None)))
}

/// Apply `patch`, or re-render the group page with the error next to its field.
async fn patch_group(
    s: &ApiState,
    session: &Session,
    t: &Tenant,
    g: &ParkGroup,
    patch: Result<ParkGroupPatch, ApiError>,
    f: &Fields,
    anchor: &str,
) -> Page {
    let res = match patch {
        Ok(p) => s
            .store
            .update_park_group(&t.id, &g.id, p)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match res {
        Ok(_) => Ok(see_other(format!(
            "/portal/t/{}/call-park/groups/{}{anchor}",
            url(&t.id),
            url(&g.id)
        ))),
        Err(e) => Err(refused(
            e.status,
            group_page(s, session, t, g, Some(&e), Some(f)),
        )),
    }
}

fn no_patch() -> ParkGroupPatch {
    ParkGroupPatch {
        name: None,
        members: None,
        recall: None,
    }
}

async fn save_group(
    State(s): State<ApiState>,
    session: Session,
    Path((key, id)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    let g = group_of(&s, &session, &t, &id)?;
    let f = Fields(f);
    session.check_csrf(&f)?;
    let patch = validate::park_group_name(f.str("name")).map(|n| ParkGroupPatch {
        name: Some(n),
        ..no_patch()
    });
    patch_group(&s, &session, &t, &g, patch, &f, "").await
}

async fn add_member(
    State(s): State<ApiState>,
    session: Session,
    Path((key, id)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    let g = group_of(&s, &session, &t, &id)?;
    let f = Fields(f);
    session.check_csrf(&f)?;
    let mut members: Vec<&str> = g.members.iter().map(String::as_str).collect();
    members.extend(split_members(f.str("member")));
    let patch = validate::park_members(&members).map(|m| ParkGroupPatch {
        members: Some(m),
        ..no_patch()
    });
    patch_group(&s, &session, &t, &g, patch, &f, "#members").await
}

async fn member_op(
    State(s): State<ApiState>,
    session: Session,
    Path((key, id, ext, op)): Path<(String, String, String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    let g = group_of(&s, &session, &t, &id)?;
    let f = Fields(f);
    session.check_csrf(&f)?;
    let mut members = g.members.clone();
    let i = members
        .iter()
        .position(|m| *m == ext)
        .ok_or_else(|| crate::not_found(Some(&session)))?;
    match op.as_str() {
        "up" if i > 0 => members.swap(i, i - 1),
        "down" if i + 1 < members.len() => members.swap(i, i + 1),
        "remove" => {
            members.remove(i);
        }
        "up" | "down" => {}
        _ => return Err(crate::not_found(Some(&session))),
    }
    let patch = Ok(ParkGroupPatch {
        members: Some(members),
        ..no_patch()
    });
    patch_group(&s, &session, &t, &g, patch, &f, "#members").await
}

async fn save_group_recall(
    State(s): State<ApiState>,
    session: Session,
    Path((key, id)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    let g = group_of(&s, &session, &t, &id)?;
    let f = Fields(f);
    session.check_csrf(&f)?;
    let patch = if f.flag("override") {
        recall_from(&f).map(|r| ParkGroupPatch {
            recall: Some(Some(r)),
            ..no_patch()
        })
    } else {
        Ok(ParkGroupPatch {
            recall: Some(None),
            ..no_patch()
        })
    };
    patch_group(&s, &session, &t, &g, patch, &f, "#recall").await
}

async fn delete_group(
    State(s): State<ApiState>,
    session: Session,
    Path((key, id)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    session.check_csrf(&Fields(f))?;
    s.store.delete_park_group(&t.id, &id).await.map_err(|e| {
        let e = ApiError::from(e);
        refused(e.status, settings_page(&s, &session, &t, Some(&e), None))
    })?;
    Ok(see_other(format!(
        "/portal/t/{}/call-park#groups",
        url(&t.id)
    )))
}

/// The WAV file itself as the body (sent by park.js with the CSRF token in
/// `X-CSRF-Token`); checked by the media side as the API's upload is.
async fn upload_music(
    State(s): State<ApiState>,
    session: Session,
    Path(key): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<axum::response::Response, axum::response::Response> {
    use axum::response::IntoResponse;
    let t = session.tenant(&s, &key)?;
    session.check_csrf_header(&headers)?;
    let reply = |status: axum::http::StatusCode, msg: String| {
        (
            status,
            axum::Json(serde_json::json!({"field": "body", "message": msg})),
        )
            .into_response()
    };
    if body.is_empty() {
        return Ok(reply(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "choose a WAV file first".into(),
        ));
    }
    let music = s.music.clone();
    let id = t.id.clone();
    match tokio::task::spawn_blocking(move || music.replace(&id, &body)).await {
        Ok(Ok(info)) => Ok(reply(
            axum::http::StatusCode::OK,
            format!("uploaded: {:.1} s", info.seconds),
        )),
        Ok(Err(why)) => Ok(reply(axum::http::StatusCode::UNPROCESSABLE_ENTITY, why)),
        Err(_) => Ok(reply(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "upload failed".into(),
        )),
    }
}

async fn reset_music(
    State(s): State<ApiState>,
    session: Session,
    Path(key): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> Page {
    let t = session.tenant(&s, &key)?;
    session.check_csrf(&Fields(f))?;
    if let Err(why) = s.music.reset(&t.id) {
        tracing::error!(error = %why, "music reset");
    }
    Ok(see_other(format!(
        "/portal/t/{}/call-park#music",
        url(&t.id)
    )))
}
