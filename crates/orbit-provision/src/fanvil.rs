//! Fanvil desk phones (X-series): the `<mac>.cfg` file in Fanvil's text
//! format (`<<VOIP CONFIG FILE>>` header, `<... MODULE>` sections,
//! `Name :value` lines, CRLF), its Visual Park keys as BLF memory keys on
//! the park resources. Every setting name used here, and where it is
//! documented, is listed in `docs/phones/fanvil.md`.

use crate::cfg::{clean, host_port, mac_of};
use crate::{Key, PhoneConfig};
use orbit_presence::Resource;

/// Where the provisioning server lives under Orbit's HTTP listener.
pub const PATH_PREFIX: &str = "/provisioning/fanvil";

/// Fanvil's time zone offset (hours from UTC) for UTC+0.
pub const DEFAULT_TIMEZONE: &str = "0";

/// The first line: the phone checks it, padded to 64 bytes with CRLF.
const HEADER: &str = "<<VOIP CONFIG FILE>>Version:2.0000000000";
const HEADER_LEN: usize = 64;
const END: &str = "<<END OF FILE>>";

/// Function key types and memory key suffixes (Fanvil's numbering).
const FKEY_NONE: u32 = 0;
const FKEY_MEMORY: u32 = 1;
const FKEY_LINE: u32 = 2;
/// Memory key subtype: BLF, a press calls the value.
const MEMORY_BLF: &str = "ba";
/// Memory key subtype: speed dial.
const MEMORY_SPEED_DIAL: &str = "f";

/// What a phone asked for, by file name under [`PATH_PREFIX`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRequest {
    /// `<mac>.cfg` (MAC in any case), in stored form.
    Config { mac: String },
}

/// Which file `name` (the last path segment) names, if any.
pub fn file_request(name: &str) -> Option<FileRequest> {
    let stem = name.strip_suffix(".cfg")?;
    mac_of(stem).map(|mac| FileRequest::Config { mac })
}

/// The phone's own configuration file.
pub fn config_url(base_url: &str, mac: &str) -> String {
    format!("{base_url}{PATH_PREFIX}/{mac}.cfg")
}

/// Fanvil's language code for a language name (`English` → `en`).
fn language_code(name: &str) -> String {
    match name {
        "English" => "en".into(),
        "German" | "Deutsch" => "de".into(),
        "French" => "fr".into(),
        "Spanish" => "es".into(),
        "Italian" => "it".into(),
        other => clean(other),
    }
}

/// A file under construction: CRLF lines, every value cleaned.
struct Out(String);

impl Out {
    fn line(&mut self, l: &str) {
        self.0.push_str(l);
        self.0.push_str("\r\n");
    }

    /// `Name<pad>:value`, the name padded as in Fanvil's own exports.
    fn set(&mut self, name: &str, value: &str) {
        self.line(&format!("{name:<19}:{}", clean(value)));
    }

    fn fkey(&mut self, n: usize, kind: u32, value: &str, title: &str) {
        self.set(&format!("Fkey{n} Type"), &kind.to_string());
        self.set(&format!("Fkey{n} Value"), value);
        self.set(&format!("Fkey{n} Title"), title);
    }
}

/// The user part of a resource URI, which a memory key watches at line 1's
/// server (the tenant's domain).
fn resource_user(r: &Resource, domain: &str) -> String {
    let uri = r.uri(domain);
    let user = uri.strip_prefix("sip:").unwrap_or(&uri);
    user.rsplit_once('@').map_or(user, |(u, _)| u).to_string()
}

/// The phone's `<mac>.cfg`.
pub fn config_cfg(c: &PhoneConfig) -> String {
    let mut o = Out(String::new());
    o.line(&format!("{HEADER:<width$}", width = HEADER_LEN - 2));
    o.line(&format!(
        "## Orbit: fanvil {} {}, configuration version {}",
        clean(&c.model),
        c.mac,
        c.config_version
    ));
    o.line("");
    o.line("<GLOBAL CONFIG MODULE>");
    o.set("Enable SNTP", "1");
    o.set("SNTP Server", &c.ntp_server);
    o.set("Time Zone", DEFAULT_TIMEZONE);
    o.set("Default Language", &language_code(&c.language));
    o.line("");
    o.line("<SIP CONFIG MODULE>");
    o.line("--SIP Line List--  :");
    let (proxy_host, proxy_port) = host_port(&c.outbound_proxy);
    match &c.identity {
        Some(id) => {
            o.set("SIP1 Phone Number", &id.user);
            o.set("SIP1 Display Name", &id.display_name);
            o.set("SIP1 Register Addr", &c.domain);
            o.set("SIP1 Register User", &id.user);
            // No `SIP1 Register Pswd`: Orbit only has the HA1; the
            // password set on the phone is kept.
            o.set("SIP1 Proxy Addr", proxy_host);
            o.set("SIP1 Proxy Port", proxy_port.unwrap_or(""));
            o.set("SIP1 Enable Reg", "1");
        }
        None => {
            // The extension is gone: no registration, no identity.
            for name in [
                "SIP1 Phone Number",
                "SIP1 Display Name",
                "SIP1 Register Addr",
                "SIP1 Register User",
                "SIP1 Register Pswd",
                "SIP1 Proxy Addr",
                "SIP1 Proxy Port",
            ] {
                o.set(name, "");
            }
            o.set("SIP1 Enable Reg", "0");
        }
    }
    o.line("");
    o.line("<DSS CONFIG MODULE>");
    // Key 1 stays line 1; Orbit's keys follow from 2.
    o.fkey(1, FKEY_LINE, "SIP1", "");
    let own = c.identity.as_ref().map(|i| i.user.as_str());
    let memory = |user: &str, sub: &str| format!("{user}@1/{sub}");
    for (i, k) in c.keys.iter().enumerate() {
        let n = i + 2;
        match k {
            Key::VisualPark { extension, label } => {
                let shown = crate::visual_park_label(extension, label.as_deref(), own);
                o.fkey(
                    n,
                    FKEY_MEMORY,
                    &memory(
                        &resource_user(&Resource::Park(extension.clone()), &c.domain),
                        MEMORY_BLF,
                    ),
                    &shown,
                );
            }
            Key::VisualGroupPark { group_id, label } => o.fkey(
                n,
                FKEY_MEMORY,
                &memory(
                    &resource_user(&Resource::ParkGroup(group_id.clone()), &c.domain),
                    MEMORY_BLF,
                ),
                label.as_deref().unwrap_or(crate::GROUP_PARK_LABEL),
            ),
            Key::Blf { extension, label } => o.fkey(
                n,
                FKEY_MEMORY,
                &memory(
                    &resource_user(&Resource::Extension(extension.clone()), &c.domain),
                    MEMORY_BLF,
                ),
                label.as_deref().unwrap_or(extension),
            ),
            Key::SpeedDial { number, label } => o.fkey(
                n,
                FKEY_MEMORY,
                &memory(&clean(number), MEMORY_SPEED_DIAL),
                label.as_deref().unwrap_or(number),
            ),
            Key::Unavailable => o.fkey(n, FKEY_NONE, "", ""),
        }
    }
    o.line("");
    o.line(END);
    o.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FeatureCodes, Identity};

    #[test]
    fn file_names() {
        assert_eq!(
            file_request("0C383EA1B2C3.cfg"),
            Some(FileRequest::Config {
                mac: "0c383ea1b2c3".into()
            })
        );
        for bad in [
            "0c383ea1b2c3.xml",
            "0c383ea1b2c.cfg",
            "y000000000028.cfg",
            "../0c383ea1b2c3.cfg",
            "",
        ] {
            assert_eq!(file_request(bad), None, "{bad}");
        }
    }

    #[test]
    fn frame_and_line_breaks() {
        let c = PhoneConfig {
            mac: "0c383ea1b2c3".into(),
            model: "X4U".into(),
            config_version: 1,
            domain: "acme.test".into(),
            outbound_proxy: "pbx.test:5060".into(),
            base_url: "http://pbx.test:8080".into(),
            identity: Some(Identity {
                user: "101".into(),
                display_name: "Eve\r\nSIP1 Register Addr :evil.test".into(),
                ha1_md5: "0f59890edddd08bdb3733814e7d65ac0".into(),
            }),
            keys: vec![Key::SpeedDial {
                number: "1\n<<END OF FILE>>".into(),
                label: None,
            }],
            codes: FeatureCodes::default(),
            in_park_group: false,
            language: crate::DEFAULT_LANGUAGE.into(),
            timezone: crate::DEFAULT_TIMEZONE.into(),
            ntp_server: crate::DEFAULT_NTP_SERVER.into(),
        };
        let f = config_cfg(&c);
        let first = f.split("\r\n").next().unwrap_or_default();
        assert_eq!(first.len() + 2, HEADER_LEN);
        assert!(f.ends_with("<<END OF FILE>>\r\n"));
        assert!(!f.replace("\r\n", "").contains(['\r', '\n']));
        assert_eq!(f.matches("\r\nSIP1 Register Addr ").count(), 1);
        assert_eq!(f.matches("\r\n<<END OF FILE>>").count(), 1);
        assert!(!f.contains("0f59890edddd08bdb3733814e7d65ac0"));
        assert!(!f.contains("Pswd"));
    }
}
