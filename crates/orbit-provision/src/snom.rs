//! Snom desk phones (D1xx, D7xx, D8xx; firmware 10.1.204 or later): the
//! XML settings file, the Visual Park keys as XML Definitions, the in-call
//! Park and Group Park soft keys, and the minibrowser pages the keys open.
//! Every setting name used here, and where Snom documents it, is listed in
//! `docs/phones/snom.md`.

use crate::{duration_text, Key, ParkedEntry, PhoneConfig};
use orbit_presence::xml::escape;
use orbit_presence::Resource;

/// Where the provisioning server lives under Orbit's HTTP listener.
pub const PATH_PREFIX: &str = "/provisioning/snom";

/// What a phone asked for, by file name under [`PATH_PREFIX`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRequest {
    /// The phone's own file: `<mac>.xml`, `<mac>.htm`,
    /// `snom<model>-<MAC>.htm` (MAC in any case). The MAC is in stored form.
    Config { mac: String },
    /// The per-model file Snom phones fetch first, `snom<model>.htm`: it
    /// holds nothing of any tenant ([`model_defaults`]).
    ModelDefaults,
}

fn mac_of(s: &str) -> Option<String> {
    let m = s.to_ascii_lowercase();
    (m.len() == 12 && m.bytes().all(|b| b.is_ascii_hexdigit())).then_some(m)
}

/// Which file `name` (the last path segment) names, if any.
pub fn file_request(name: &str) -> Option<FileRequest> {
    let stem = name
        .strip_suffix(".xml")
        .or_else(|| name.strip_suffix(".htm"))?;
    if let Some(mac) = mac_of(stem) {
        return Some(FileRequest::Config { mac });
    }
    let model = stem.strip_prefix("snom")?;
    if let Some((model, mac)) = model.rsplit_once('-') {
        if valid_model(model) {
            return mac_of(mac).map(|mac| FileRequest::Config { mac });
        }
        return None;
    }
    valid_model(model).then_some(FileRequest::ModelDefaults)
}

fn valid_model(m: &str) -> bool {
    !m.is_empty() && m.len() <= 32 && m.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The phone's own configuration file.
pub fn config_url(base_url: &str, mac: &str) -> String {
    format!("{base_url}{PATH_PREFIX}/{mac}.xml")
}

/// The list of calls parked on the phone's extension (Visual Park key).
pub fn park_list_url(base_url: &str, mac: &str) -> String {
    format!("{base_url}{PATH_PREFIX}/{mac}/park.xml")
}

/// The list of calls parked in the phone's call park group.
pub fn group_park_list_url(base_url: &str, mac: &str) -> String {
    format!("{base_url}{PATH_PREFIX}/{mac}/group-park.xml")
}

/// The list of calls parked on another extension (a Visual Park key
/// watching a colleague).
pub fn extension_park_list_url(base_url: &str, mac: &str, extension: &str) -> String {
    format!("{base_url}{PATH_PREFIX}/{mac}/park-{extension}.xml")
}

/// The body served for `snom<model>.htm`: valid settings that change
/// nothing, so the phone goes on to its MAC file.
pub fn model_defaults() -> String {
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<settings>\n  <phone-settings e=\"2\"/>\n</settings>\n"
        .to_string()
}

/// A setting line inside `<phone-settings>`; read-only on the phone
/// (`perm="R"`) so a user's change does not outlive the next provisioning.
fn setting(out: &mut String, name: &str, idx: Option<u32>, value: &str) {
    out.push_str("    <");
    out.push_str(name);
    if let Some(i) = idx {
        out.push_str(&format!(" idx=\"{i}\""));
    }
    out.push_str(" perm=\"R\">");
    out.push_str(&escape(value));
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}

/// An XML Definition for a key that watches `watch` (RFC 4235 dialog
/// events), lights while the resource reports a call parked, and opens
/// `list` in the minibrowser when pressed. Modelled on Snom's documented
/// BLF definition (subscription, NotifyParsingRules) with a `url` action.
fn visual_park_definition(kind: &str, watch: &str, list: &str) -> String {
    format!(
        concat!(
            "<general type=\"{kind}\" identity=\"1\"/>",
            "<initialization><state value=\"initial\"/>",
            "<variable name=\"watch\" value=\"{watch}\"/>",
            "<variable name=\"list\" value=\"{list}\"/></initialization>",
            "<subscription type=\"dialog\" to=\"&lt;$(watch)&gt;\" for=\"$(watch)\"/>",
            "<NotifyParsingRules type=\"applies\">",
            "<level1 translates_to=\"OK\">/dialog-info[@entity=\"$(watch)\"]</level1>",
            "</NotifyParsingRules>",
            "<NotifyParsingRules type=\"state\">",
            "<level1 translates_to=\"PARKED\">/dialog-info/dialog/state[.=\"confirmed\"]</level1>",
            "<level2 translates_to=\"PARKED\">/dialog-info/dialog/state[.=\"early\"]</level2>",
            "<level3 translates_to=\"FREE\"/>",
            "</NotifyParsingRules>",
            "<action><url target=\"$(list)\" when=\"on press\"/></action>",
        ),
        kind = kind,
        watch = escape(watch),
        list = escape(list),
    )
}

/// A call-screen soft key that blind-transfers (REFER) the call to a
/// feature code, e.g. `sip:*68@domain`.
fn transfer_definition(kind: &str, target: &str) -> String {
    format!(
        "<general type=\"{kind}\" identity=\"1\"/><action><refer target=\"{}\" when=\"on press\"/></action>",
        escape(target)
    )
}

fn fkey(out: &mut String, idx: usize, label: &str, value: &str) {
    out.push_str(&format!(
        "    <fkey idx=\"{idx}\" context=\"1\" label=\"{}\" perm=\"R\">{}</fkey>\n",
        escape(label),
        escape(value)
    ));
}

/// The phone's XML settings file.
pub fn config_xml(c: &PhoneConfig) -> String {
    let mut s = String::new();
    s.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    s.push_str(&format!(
        "<!-- Orbit: snom {} {}, configuration version {} -->\n",
        escape(&c.model),
        c.mac,
        c.config_version
    ));
    s.push_str("<settings>\n  <phone-settings e=\"2\">\n");
    setting(&mut s, "language", None, &c.language);
    setting(&mut s, "web_language", None, &c.language);
    setting(&mut s, "timezone", None, &c.timezone);
    setting(&mut s, "ntp_server", None, &c.ntp_server);
    setting(
        &mut s,
        "setting_server",
        None,
        &config_url(&c.base_url, &c.mac),
    );
    match &c.identity {
        Some(id) => {
            setting(&mut s, "user_active", Some(1), "on");
            setting(&mut s, "user_realname", Some(1), &id.display_name);
            setting(&mut s, "user_name", Some(1), &id.user);
            // The MD5 HA1 in place of the password (Snom: user_hash).
            setting(&mut s, "user_pass", Some(1), "");
            setting(&mut s, "user_hash", Some(1), &id.ha1_md5);
            setting(&mut s, "user_host", Some(1), &c.domain);
            setting(&mut s, "user_outbound", Some(1), &c.outbound_proxy);
        }
        None => {
            // The extension is gone: no registration, no credentials.
            setting(&mut s, "user_active", Some(1), "off");
            for name in [
                "user_realname",
                "user_name",
                "user_pass",
                "user_hash",
                "user_host",
                "user_outbound",
            ] {
                setting(&mut s, name, Some(1), "");
            }
        }
    }
    // In-call soft keys: Park (on one's own extension; another extension
    // via Transfer and the park code plus its number) and Group Park.
    setting(&mut s, "quick_transfer", None, "blind");
    let mut soft = vec!["F_HOLD", "F_TRANSFER"];
    if c.identity.is_some() {
        setting(
            &mut s,
            "general_purpose_xml_descriptions",
            Some(0),
            &transfer_definition("Park", &format!("sip:{}@{}", c.codes.park, c.domain)),
        );
        soft.push("GP_XML[0]");
        if c.in_park_group {
            setting(
                &mut s,
                "general_purpose_xml_descriptions",
                Some(1),
                &transfer_definition(
                    "Group Park",
                    &format!("sip:{}@{}", c.codes.group_park, c.domain),
                ),
            );
            soft.push("GP_XML[1]");
        }
    }
    setting(
        &mut s,
        "call_screen_fkeys_on_connected",
        None,
        &soft.join(" "),
    );
    s.push_str("  </phone-settings>\n  <functionKeys e=\"2\">\n");
    let own = c.identity.as_ref().map(|i| i.user.as_str());
    for (i, k) in c.keys.iter().enumerate() {
        match k {
            Key::VisualPark { extension, label } => {
                let mine = own == Some(extension.as_str());
                let list = if mine {
                    park_list_url(&c.base_url, &c.mac)
                } else {
                    extension_park_list_url(&c.base_url, &c.mac, extension)
                };
                let shown = crate::visual_park_label(extension, label.as_deref(), own);
                let def = visual_park_definition(
                    "VisualPark",
                    &Resource::Park(extension.clone()).uri(&c.domain),
                    &list,
                );
                fkey(&mut s, i, &shown, &format!("xml {def}"));
            }
            Key::VisualGroupPark { group_id, label } => {
                let def = visual_park_definition(
                    "VisualGroupPark",
                    &Resource::ParkGroup(group_id.clone()).uri(&c.domain),
                    &group_park_list_url(&c.base_url, &c.mac),
                );
                fkey(
                    &mut s,
                    i,
                    label.as_deref().unwrap_or(crate::GROUP_PARK_LABEL),
                    &format!("xml {def}"),
                );
            }
            Key::Blf { extension, label } => fkey(
                &mut s,
                i,
                label.as_deref().unwrap_or(extension),
                &format!(
                    "blf <{}>",
                    Resource::Extension(extension.clone()).uri(&c.domain)
                ),
            ),
            Key::SpeedDial { number, label } => fkey(
                &mut s,
                i,
                label.as_deref().unwrap_or(number),
                &format!("speed {number}"),
            ),
            Key::Unavailable => fkey(&mut s, i, "", "none"),
        }
    }
    s.push_str("  </functionKeys>\n</settings>\n");
    s
}

/// A `SnomIPPhoneText` page (an empty list, or why there is none).
pub fn text_page(title: &str, text: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<SnomIPPhoneText>\n  <Title>{}</Title>\n  <Text>{}</Text>\n</SnomIPPhoneText>\n",
        escape(title),
        escape(text)
    )
}

/// One list line: who, where, how long (`Carol 0301234 on 101, 1:05`).
fn entry_name(e: &ParkedEntry, now_ms: i64, show_where: bool) -> String {
    let who = if e.caller_name.is_empty() {
        e.caller_number.clone()
    } else {
        format!("{} {}", e.caller_name, e.caller_number)
    };
    let mut line = who;
    if show_where {
        line.push_str(&format!(" on {}", e.parked_on));
    }
    line.push_str(&format!(", {}", duration_text(now_ms - e.parked_at_ms)));
    if e.recalling {
        line.push_str(" (recall)");
    }
    line
}

/// A `SnomIPPhoneDirectory` of parked calls, oldest first: choosing an
/// entry and dialling calls its `Telephone`, the call's own retrieve
/// number, which connects that very call.
fn directory(title: &str, entries: &[ParkedEntry], now_ms: i64, show_where: bool) -> String {
    let mut sorted: Vec<&ParkedEntry> = entries.iter().collect();
    sorted.sort_by_key(|e| e.parked_at_ms);
    let mut s =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<SnomIPPhoneDirectory>\n");
    s.push_str(&format!("  <Title>{}</Title>\n", escape(title)));
    s.push_str("  <Prompt>Retrieve</Prompt>\n");
    for e in sorted {
        s.push_str(&format!(
            "  <DirectoryEntry>\n    <Name>{}</Name>\n    <Telephone>{}</Telephone>\n  </DirectoryEntry>\n",
            escape(&entry_name(e, now_ms, show_where)),
            escape(&e.retrieve_number)
        ));
    }
    s.push_str("</SnomIPPhoneDirectory>\n");
    s
}

/// The calls parked on `extension` (the caller passes only those), or a
/// text page saying there are none.
pub fn park_list_page(extension: &str, entries: &[ParkedEntry], now_ms: i64) -> String {
    if entries.is_empty() {
        return text_page(
            "Parked calls",
            &format!("No calls are parked on {extension}."),
        );
    }
    directory(
        &format!("Parked on {extension} ({})", entries.len()),
        entries,
        now_ms,
        false,
    )
}

/// The calls parked on any member of the group `name`, with the count in
/// the title, or a text page saying there are none.
pub fn group_park_list_page(name: &str, entries: &[ParkedEntry], now_ms: i64) -> String {
    if entries.is_empty() {
        return text_page(
            &format!("{name}: 0 parked"),
            &format!("No calls are parked in group {name}."),
        );
    }
    directory(
        &format!("{name}: {} parked", entries.len()),
        entries,
        now_ms,
        true,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        let cfg = |m: &str| Some(FileRequest::Config { mac: m.to_string() });
        assert_eq!(file_request("000413a1b2c3.xml"), cfg("000413a1b2c3"));
        assert_eq!(file_request("000413A1B2C3.htm"), cfg("000413a1b2c3"));
        assert_eq!(
            file_request("snomD785-000413A1B2C3.htm"),
            cfg("000413a1b2c3")
        );
        assert_eq!(
            file_request("snomD785.htm"),
            Some(FileRequest::ModelDefaults)
        );
        for bad in [
            "000413a1b2c.xml",
            "000413a1b2c3.cfg",
            "snom.htm",
            "snomD785-xyz.htm",
            "snomD-785.htm",
            "../000413a1b2c3.xml",
            "",
        ] {
            assert_eq!(file_request(bad), None, "{bad}");
        }
    }

    #[test]
    fn empty_lists_say_so() {
        let p = park_list_page("101", &[], 0);
        assert!(p.contains("<SnomIPPhoneText>") && p.contains("No calls are parked on 101."));
        let g = group_park_list_page("Sales & Co", &[], 0);
        assert!(g.contains("<Title>Sales &amp; Co: 0 parked</Title>"));
    }
}
