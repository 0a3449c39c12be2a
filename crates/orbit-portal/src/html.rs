//! HTML building: escaping, the page layout, forms whose errors sit next
//! to their field.

use std::fmt::Write;

use orbit_http::ApiError;

use crate::session::Session;

/// Escape text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encode a path segment or query value.
pub fn url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Unix ms as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn time(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    let s = humantime::format_rfc3339_seconds(t).to_string();
    s.trim_end_matches('Z').replacen('T', " ", 1)
}

/// The whole page: header with navigation for the signed-in user, then `body`.
pub fn page(
    title: &str,
    session: Option<&Session>,
    tenant: Option<(&str, &str)>,
    body: &str,
) -> String {
    let mut nav = String::new();
    if let Some(s) = session {
        if s.is_system_admin() {
            nav.push_str(r#"<a href="/portal/admin/tenants">Tenants</a>"#);
        }
        if let Some((key, name)) = tenant {
            let k = url(key);
            let _ = write!(
                nav,
                r#"<span class="tenant">{name}</span><a href="/portal/t/{k}/extensions">Extensions</a><a href="/portal/t/{k}/ring-groups">Ring groups</a><a href="/portal/t/{k}/call-park">Advanced Services &gt; Call Park</a><a href="/portal/t/{k}/phones">Phones</a><a href="/portal/t/{k}/live">Live</a><a href="/portal/t/{k}/log">Event log</a>"#,
                name = esc(name)
            );
        }
        let _ = write!(
            nav,
            r#"<form method="post" action="/portal/logout" class="logout"><input type="hidden" name="_csrf" value="{csrf}"><a class="who" href="/portal/account" title="Account">{user}</a><button type="submit" id="logout">Sign out</button></form>"#,
            csrf = esc(&s.csrf),
            user = esc(&s.username)
        );
    }
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{t} · Orbit</title><link rel="stylesheet" href="/portal/assets/style.css"></head><body><header><a class="brand" href="/portal/">Orbit</a><nav>{nav}</nav></header><main><h1>{t}</h1>{body}</main></body></html>"#,
        t = esc(title)
    )
}

/// How a form field is entered.
pub enum Kind<'a> {
    Text,
    Password,
    Number,
    Check,
    Select(&'a [(&'a str, &'a str)]),
}

/// One input: API field name (also the form name), label, kind, current value.
pub struct Field<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub kind: Kind<'a>,
    pub value: String,
    pub hint: &'a str,
}

impl<'a> Field<'a> {
    pub fn new(name: &'a str, label: &'a str, kind: Kind<'a>, value: impl Into<String>) -> Self {
        Field {
            name,
            label,
            kind,
            value: value.into(),
            hint: "",
        }
    }
    pub fn hint(mut self, hint: &'a str) -> Self {
        self.hint = hint;
        self
    }
}

/// The error's message next to the field it names, if it names this one.
pub fn error_for(err: Option<&ApiError>, name: &str) -> String {
    match err {
        Some(e) if e.field.as_deref() == Some(name) => {
            format!(
                r#"<span class="error" role="alert" data-field="{n}">{m}</span>"#,
                n = esc(name),
                m = esc(&e.message)
            )
        }
        _ => String::new(),
    }
}

/// An error that names none of `fields` is shown above the form.
pub fn form_error(err: Option<&ApiError>, fields: &[&str]) -> String {
    match err {
        Some(e) if !e.field.as_deref().is_some_and(|f| fields.contains(&f)) => {
            format!(
                r#"<p class="error banner" role="alert">{}</p>"#,
                esc(&e.message)
            )
        }
        _ => String::new(),
    }
}

/// A POST form with the CSRF token, the fields and their errors.
pub fn form(
    action: &str,
    csrf: &str,
    id: &str,
    fields: &[Field],
    err: Option<&ApiError>,
    submit: &str,
) -> String {
    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
    let mut s = format!(
        r#"<form method="post" action="{a}" id="{id}" class="stack">{e}<input type="hidden" name="_csrf" value="{c}">"#,
        a = esc(action),
        c = esc(csrf),
        e = form_error(err, &names)
    );
    for f in fields {
        s.push_str(&field(f, err));
    }
    let _ = write!(
        s,
        r#"<button type="submit">{}</button></form>"#,
        esc(submit)
    );
    s
}

pub fn field(f: &Field, err: Option<&ApiError>) -> String {
    let n = esc(f.name);
    let v = esc(&f.value);
    let input = match &f.kind {
        Kind::Text => format!(r#"<input type="text" name="{n}" id="f-{n}" value="{v}">"#),
        Kind::Password => {
            format!(r#"<input type="password" name="{n}" id="f-{n}" autocomplete="new-password">"#)
        }
        Kind::Number => format!(r#"<input type="number" name="{n}" id="f-{n}" value="{v}">"#),
        Kind::Check => format!(
            r#"<input type="hidden" name="{n}" value="false"><input type="checkbox" name="{n}" id="f-{n}" value="true"{c}>"#,
            c = if f.value == "true" { " checked" } else { "" }
        ),
        Kind::Select(opts) => {
            let mut s = format!(r#"<select name="{n}" id="f-{n}">"#);
            for (val, label) in opts.iter() {
                let sel = if *val == f.value { " selected" } else { "" };
                let _ = write!(
                    s,
                    r#"<option value="{}"{sel}>{}</option>"#,
                    esc(val),
                    esc(label)
                );
            }
            s.push_str("</select>");
            s
        }
    };
    let hint = if f.hint.is_empty() {
        String::new()
    } else {
        format!(r#"<small>{}</small>"#, esc(f.hint))
    };
    format!(
        r#"<label for="f-{n}"><span>{l}</span>{input}{hint}{e}</label>"#,
        l = esc(f.label),
        e = error_for(err, f.name)
    )
}

/// A one-button POST form (delete, move up...), with the CSRF token.
pub fn button(action: &str, csrf: &str, label: &str, class: &str, extra: &str) -> String {
    format!(
        r#"<form method="post" action="{a}" class="inline"><input type="hidden" name="_csrf" value="{c}">{extra}<button type="submit" class="{class}">{l}</button></form>"#,
        a = esc(action),
        c = esc(csrf),
        l = esc(label)
    )
}
