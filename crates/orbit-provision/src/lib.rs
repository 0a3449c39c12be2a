//! Phone provisioning for Orbit: the configuration file a desk phone
//! fetches by MAC, and the XML minibrowser pages its Visual Park keys open.
//! Pure code (no I/O, no clock, no database): the caller resolves the phone
//! record, its tenant and extension into a [`PhoneConfig`] and passes the
//! time in. Snom ([`snom`]), Yealink ([`yealink`]) and Fanvil ([`fanvil`]);
//! see `docs/phones/`.
//!
//! The SIP resources keys watch and the XML escaping are `orbit-presence`'s,
//! so the keys name exactly what the presence side publishes.

pub mod cfg;
pub mod fanvil;
pub mod snom;
pub mod yealink;

/// Vendors Orbit generates files for, by the name the phone record uses.
pub const VENDORS: &[&str] = &["snom", "yealink", "fanvil"];

/// The URL of a phone's own configuration file, or `None` for a vendor
/// Orbit does not provision.
pub fn config_url(vendor: &str, base_url: &str, mac: &str) -> Option<String> {
    match vendor {
        "snom" => Some(snom::config_url(base_url, mac)),
        "yealink" => Some(yealink::config_url(base_url, mac)),
        "fanvil" => Some(fanvil::config_url(base_url, mac)),
        _ => None,
    }
}

pub use orbit_presence::xml::escape;

/// An extension as a phone registers: user, display name and the MD5 HA1
/// Orbit stores (`MD5(user:realm:password)`); Orbit never has the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub display_name: String,
    pub ha1_md5: String,
}

/// One function key, resolved by the caller against the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// LED lit while calls are parked on `extension`; a press lists them.
    VisualPark {
        extension: String,
        label: Option<String>,
    },
    /// LED lit while calls are parked on any member of the group; a press
    /// lists them all.
    VisualGroupPark {
        group_id: String,
        label: Option<String>,
    },
    /// Busy lamp field of another extension.
    Blf {
        extension: String,
        label: Option<String>,
    },
    SpeedDial {
        number: String,
        label: Option<String>,
    },
    /// A key that cannot be set up (its extension or group is gone): the
    /// key is cleared so that the others keep their places.
    Unavailable,
}

/// The label of a Visual Park key the admin left unlabelled: "Park" on
/// the phone's own park, "Park 103" on another extension's.
pub fn visual_park_label(extension: &str, label: Option<&str>, own_user: Option<&str>) -> String {
    match label {
        Some(l) => l.to_string(),
        None if own_user == Some(extension) => "Park".to_string(),
        None => format!("Park {extension}"),
    }
}

/// The label of an unlabelled Visual Group Park key.
pub const GROUP_PARK_LABEL: &str = "Group Park";

/// The feature codes of the tenant's call park settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureCodes {
    pub park: String,
    pub group_park: String,
    pub retrieve: String,
}

impl Default for FeatureCodes {
    fn default() -> Self {
        FeatureCodes {
            park: "*68".into(),
            group_park: "*58".into(),
            retrieve: "*88".into(),
        }
    }
}

/// Time zone and language a phone gets unless told otherwise.
pub const DEFAULT_LANGUAGE: &str = "English";
/// Snom's time zone code for UTC+0 (with British summer time rules);
/// Yealink and Fanvil use their own codes for the same zone
/// ([`yealink::DEFAULT_TIMEZONE`], [`fanvil::DEFAULT_TIMEZONE`]).
pub const DEFAULT_TIMEZONE: &str = "GBR-0";
pub const DEFAULT_NTP_SERVER: &str = "pool.ntp.org";

/// Everything a phone's configuration file is generated from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneConfig {
    /// 12 lower-case hex digits.
    pub mac: String,
    /// e.g. `D785`.
    pub model: String,
    pub config_version: i64,
    /// The tenant's SIP domain: registrar and the host of every SIP URI.
    pub domain: String,
    /// Where the phone sends SIP: Orbit's address, `host:port`.
    pub outbound_proxy: String,
    /// Orbit's HTTP base as the phone reached it, e.g. `http://pbx:8080`
    /// (no trailing slash): minibrowser URLs are built on it.
    pub base_url: String,
    /// `None` when the phone has no extension (it was deleted): the file
    /// then turns the phone's identity off.
    pub identity: Option<Identity>,
    pub keys: Vec<Key>,
    pub codes: FeatureCodes,
    /// Whether the phone's extension is in a call park group (the in-call
    /// Group Park soft key is offered only then).
    pub in_park_group: bool,
    pub language: String,
    pub timezone: String,
    pub ntp_server: String,
}

/// A parked call as a list page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedEntry {
    pub caller_number: String,
    pub caller_name: String,
    /// The extension it is parked on.
    pub parked_on: String,
    /// Unix ms.
    pub parked_at_ms: i64,
    /// What to dial to retrieve this very call.
    pub retrieve_number: String,
    /// A recall is ringing for it.
    pub recalling: bool,
}

/// `m:ss`, or `h:mm:ss` from an hour on, of a non-negative duration.
pub fn duration_text(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration_text(-5), "0:00");
        assert_eq!(duration_text(65_999), "1:05");
        assert_eq!(duration_text(3_600_000 + 61_000), "1:01:01");
    }
}
