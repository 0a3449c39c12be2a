//! Yealink desk phones (SIP-T3x, T4x, T5x): the MAC-oriented `<mac>.cfg`
//! file (`name = value` lines), its Visual Park keys as BLF line keys on
//! the park resources, and the in-call Park and Group Park of Yealink's
//! call park feature. Every setting name used here, and where it is
//! documented, is listed in `docs/phones/yealink.md`.

use crate::cfg::{clean, host_port, mac_of};
use crate::{Key, PhoneConfig};
use orbit_presence::Resource;

/// Where the provisioning server lives under Orbit's HTTP listener.
pub const PATH_PREFIX: &str = "/provisioning/yealink";

/// Yealink's time zone offset and name for UTC+0 with British summer time
/// (the counterpart of Snom's `GBR-0`).
pub const DEFAULT_TIMEZONE: &str = "0";
pub const DEFAULT_TIMEZONE_NAME: &str = "United Kingdom(London)";

/// Yealink's placeholder that empties a setting.
const NULL: &str = "%NULL%";

/// Line key types (Yealink's numbering).
const KEY_NONE: u32 = 0;
const KEY_SPEED_DIAL: u32 = 13;
const KEY_LINE: u32 = 15;
const KEY_BLF: u32 = 16;

/// What a phone asked for, by file name under [`PATH_PREFIX`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRequest {
    /// `<mac>.cfg` (MAC in any case), in stored form.
    Config { mac: String },
    /// The common file `y0000000000xx.cfg` (`xx` names the model family),
    /// which Yealink phones fetch before their MAC file: it holds nothing
    /// of any tenant ([`common_defaults`]).
    CommonDefaults,
}

/// Which file `name` (the last path segment) names, if any.
pub fn file_request(name: &str) -> Option<FileRequest> {
    let stem = name.strip_suffix(".cfg")?;
    if let Some(mac) = mac_of(stem) {
        return Some(FileRequest::Config { mac });
    }
    let family = stem.strip_prefix("y0000000000")?;
    (family.len() == 2 && family.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some(FileRequest::CommonDefaults)
}

/// The phone's own configuration file.
pub fn config_url(base_url: &str, mac: &str) -> String {
    format!("{base_url}{PATH_PREFIX}/{mac}.cfg")
}

/// The body served for `y0000000000xx.cfg`: the mandatory header and no
/// setting, so the phone goes on to its MAC file.
pub fn common_defaults() -> String {
    "#!version:1.0.0.1\n".to_string()
}

/// One `name = value` line; an empty value is written as `%NULL%` so the
/// phone clears what an earlier file set.
fn set(out: &mut String, name: &str, value: &str) {
    let v = clean(value);
    out.push_str(name);
    out.push_str(" = ");
    out.push_str(if v.is_empty() { NULL } else { &v });
    out.push('\n');
}

/// Line key `n` (from 1) with all of its fields, so nothing of an earlier
/// layout survives on it.
fn linekey(out: &mut String, n: usize, kind: u32, value: &str, label: &str, extension: &str) {
    let p = format!("linekey.{n}");
    set(out, &format!("{p}.type"), &kind.to_string());
    set(
        out,
        &format!("{p}.line"),
        if kind == KEY_NONE { "" } else { "1" },
    );
    set(out, &format!("{p}.value"), value);
    set(out, &format!("{p}.label"), label);
    set(out, &format!("{p}.extension"), extension);
}

/// The user part of a park resource, which a BLF key watches at the
/// account's server (the tenant's domain): `park-101` →
/// `sip:park-101@<domain>`.
fn resource_user(r: &Resource, domain: &str) -> String {
    let uri = r.uri(domain);
    let user = uri.strip_prefix("sip:").unwrap_or(&uri);
    user.rsplit_once('@').map_or(user, |(u, _)| u).to_string()
}

/// The phone's `<mac>.cfg`.
pub fn config_cfg(c: &PhoneConfig) -> String {
    let mut s = String::from("#!version:1.0.0.1\n");
    s.push_str(&format!(
        "## Orbit: yealink {} {}, configuration version {}\n",
        clean(&c.model),
        c.mac,
        c.config_version
    ));
    set(&mut s, "lang.gui", &c.language);
    set(&mut s, "lang.wui", &c.language);
    set(&mut s, "local_time.time_zone", DEFAULT_TIMEZONE);
    set(&mut s, "local_time.time_zone_name", DEFAULT_TIMEZONE_NAME);
    set(&mut s, "local_time.ntp_server1", &c.ntp_server);
    // Later fetches go straight to Orbit.
    set(
        &mut s,
        "static.auto_provision.server.url",
        &format!("{}{PATH_PREFIX}/", c.base_url),
    );
    // A check-sync NOTIFY re-fetches the file; it reboots only when the
    // NOTIFY says `reboot=true` (Yealink's default, 1, always reboots).
    set(&mut s, "sip.notify_reboot_enable", "0");
    let (proxy_host, proxy_port) = host_port(&c.outbound_proxy);
    match &c.identity {
        Some(id) => {
            set(&mut s, "account.1.enable", "1");
            set(&mut s, "account.1.label", &id.user);
            set(&mut s, "account.1.display_name", &id.display_name);
            set(&mut s, "account.1.auth_name", &id.user);
            set(&mut s, "account.1.user_name", &id.user);
            // No `account.1.password`: Orbit only has the HA1, which
            // Yealink cannot use; the password set on the phone is kept.
            set(&mut s, "account.1.sip_server.1.address", &c.domain);
            set(
                &mut s,
                "account.1.outbound_proxy_enable",
                if proxy_host.is_empty() { "0" } else { "1" },
            );
            set(&mut s, "account.1.outbound_proxy.1.address", proxy_host);
            set(
                &mut s,
                "account.1.outbound_proxy.1.port",
                proxy_port.unwrap_or(""),
            );
        }
        None => {
            // The extension is gone: no registration, no identity.
            set(&mut s, "account.1.enable", "0");
            for name in [
                "account.1.label",
                "account.1.display_name",
                "account.1.auth_name",
                "account.1.user_name",
                "account.1.password",
                "account.1.sip_server.1.address",
                "account.1.outbound_proxy.1.address",
                "account.1.outbound_proxy.1.port",
            ] {
                set(&mut s, name, "");
            }
            set(&mut s, "account.1.outbound_proxy_enable", "0");
        }
    }
    // In-call Park / Group Park: Yealink's call park feature dials the
    // tenant's feature codes.
    let park = c.identity.is_some();
    set(
        &mut s,
        "features.call_park.enable",
        if park { "1" } else { "0" },
    );
    set(&mut s, "features.call_park.park_code", &c.codes.park);
    set(
        &mut s,
        "features.call_park.park_retrieve_code",
        &c.codes.retrieve,
    );
    let group = park && c.in_park_group;
    set(
        &mut s,
        "features.call_park.group_enable",
        if group { "1" } else { "0" },
    );
    set(
        &mut s,
        "features.call_park.group_park_code",
        if group { &c.codes.group_park } else { "" },
    );
    // Line key 1 stays the account's line; Orbit's keys follow from 2.
    linekey(&mut s, 1, KEY_LINE, "", "", "");
    let own = c.identity.as_ref().map(|i| i.user.as_str());
    for (i, k) in c.keys.iter().enumerate() {
        let n = i + 2;
        match k {
            Key::VisualPark { extension, label } => {
                let shown = crate::visual_park_label(extension, label.as_deref(), own);
                // Lit while the park resource reports a call; a press
                // dials the retrieve code for that extension.
                linekey(
                    &mut s,
                    n,
                    KEY_BLF,
                    &resource_user(&Resource::Park(extension.clone()), &c.domain),
                    &shown,
                    &format!("{}{extension}", c.codes.retrieve),
                );
            }
            Key::VisualGroupPark { group_id, label } => linekey(
                &mut s,
                n,
                KEY_BLF,
                &resource_user(&Resource::ParkGroup(group_id.clone()), &c.domain),
                label.as_deref().unwrap_or(crate::GROUP_PARK_LABEL),
                // No single number retrieves "the group's" call.
                "",
            ),
            Key::Blf { extension, label } => linekey(
                &mut s,
                n,
                KEY_BLF,
                &resource_user(&Resource::Extension(extension.clone()), &c.domain),
                label.as_deref().unwrap_or(extension),
                "",
            ),
            Key::SpeedDial { number, label } => linekey(
                &mut s,
                n,
                KEY_SPEED_DIAL,
                number,
                label.as_deref().unwrap_or(number),
                "",
            ),
            Key::Unavailable => linekey(&mut s, n, KEY_NONE, "", "", ""),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FeatureCodes, Identity};

    #[test]
    fn file_names() {
        let cfg = |m: &str| Some(FileRequest::Config { mac: m.to_string() });
        assert_eq!(file_request("805ec0a1b2c3.cfg"), cfg("805ec0a1b2c3"));
        assert_eq!(file_request("805EC0A1B2C3.cfg"), cfg("805ec0a1b2c3"));
        assert_eq!(
            file_request("y000000000028.cfg"),
            Some(FileRequest::CommonDefaults)
        );
        for bad in [
            "805ec0a1b2c3.xml",
            "805ec0a1b2c.cfg",
            "y00000000002.cfg",
            "y0000000000288.cfg",
            "y0000000000-1.cfg",
            "805ec0a1b2c3-local.cfg",
            "../805ec0a1b2c3.cfg",
            "",
        ] {
            assert_eq!(file_request(bad), None, "{bad}");
        }
    }

    fn config() -> PhoneConfig {
        PhoneConfig {
            mac: "805ec0a1b2c3".into(),
            model: "T54W".into(),
            config_version: 1,
            domain: "acme.test".into(),
            outbound_proxy: "pbx.test:5060".into(),
            base_url: "http://pbx.test:8080".into(),
            identity: Some(Identity {
                user: "101".into(),
                display_name: "Alice".into(),
                ha1_md5: "0f59890edddd08bdb3733814e7d65ac0".into(),
            }),
            keys: vec![],
            codes: FeatureCodes::default(),
            in_park_group: false,
            language: crate::DEFAULT_LANGUAGE.into(),
            timezone: crate::DEFAULT_TIMEZONE.into(),
            ntp_server: crate::DEFAULT_NTP_SERVER.into(),
        }
    }

    #[test]
    fn no_value_can_start_a_setting_of_its_own() {
        let mut c = config();
        c.identity = Some(Identity {
            user: "101".into(),
            display_name: "Eve\r\naccount.1.sip_server.1.address = evil.test".into(),
            ha1_md5: String::new(),
        });
        c.keys = vec![Key::SpeedDial {
            number: "123".into(),
            label: Some("x\nlinekey.9.type = 16".into()),
        }];
        let f = config_cfg(&c);
        for line in f.lines() {
            assert!(
                line.starts_with('#') || line.split_once(" = ").is_some(),
                "{line}"
            );
        }
        assert!(!f.contains('\r'));
        assert!(!f.lines().any(|l| l.starts_with("linekey.9")));
        assert!(
            f.contains("account.1.display_name = Eveaccount.1.sip_server.1.address = evil.test\n")
        );
        assert_eq!(
            f.matches("account.1.sip_server.1.address = ").count(),
            2,
            "one setting, and the harmless text inside the display name"
        );
    }

    #[test]
    fn no_password_and_no_hash_travel() {
        let f = config_cfg(&config());
        assert!(!f.contains("password"));
        assert!(!f.contains("0f59890edddd08bdb3733814e7d65ac0"));
        assert!(f.contains("features.call_park.group_enable = 0\n"));
        assert!(f.contains("features.call_park.group_park_code = %NULL%\n"));
    }
}
