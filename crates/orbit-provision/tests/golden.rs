//! Golden files: the generated XML, byte for byte. Regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p orbit-provision` and review the diff.

use std::path::PathBuf;

use orbit_provision::{fanvil, snom, yealink};
use orbit_provision::{FeatureCodes, Identity, Key, ParkedEntry, PhoneConfig};

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(actual, expected, "{name} differs from its golden file");
}

/// A D785 on extension 101 with Visual Park, Visual Group Park, the BLF
/// of colleague 102 and a speed dial.
fn d785() -> PhoneConfig {
    PhoneConfig {
        mac: "000413a1b2c3".into(),
        model: "D785".into(),
        config_version: 3,
        domain: "acme.test".into(),
        outbound_proxy: "192.0.2.10:5060".into(),
        base_url: "http://192.0.2.10:8080".into(),
        identity: Some(Identity {
            user: "101".into(),
            display_name: "Alice & Co".into(),
            ha1_md5: "0f59890edddd08bdb3733814e7d65ac0".into(),
        }),
        keys: vec![
            Key::VisualPark {
                extension: "101".into(),
                label: None,
            },
            Key::VisualGroupPark {
                group_id: "4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e".into(),
                label: None,
            },
            Key::Blf {
                extension: "102".into(),
                label: Some("Bob".into()),
            },
            Key::SpeedDial {
                number: "+4930123456".into(),
                label: Some("Hotline".into()),
            },
            Key::VisualPark {
                extension: "103".into(),
                label: None,
            },
            Key::Unavailable,
        ],
        codes: FeatureCodes::default(),
        in_park_group: true,
        language: orbit_provision::DEFAULT_LANGUAGE.into(),
        timezone: orbit_provision::DEFAULT_TIMEZONE.into(),
        ntp_server: orbit_provision::DEFAULT_NTP_SERVER.into(),
    }
}

#[test]
fn d785_with_park_keys_blf_and_speed_dial() {
    golden("snom_d785.xml", &snom::config_xml(&d785()));
}

#[test]
fn d785_whose_extension_was_deleted_has_no_identity() {
    let mut c = d785();
    c.identity = None;
    c.in_park_group = false;
    c.keys = vec![
        Key::Unavailable,
        Key::Blf {
            extension: "102".into(),
            label: None,
        },
    ];
    c.config_version = 4;
    golden("snom_d785_no_identity.xml", &snom::config_xml(&c));
}

fn entries() -> Vec<ParkedEntry> {
    vec![
        ParkedEntry {
            caller_number: "0301234".into(),
            caller_name: "Carol <C>".into(),
            parked_on: "101".into(),
            parked_at_ms: 1_700_000_000_000,
            retrieve_number: "*88101*1".into(),
            recalling: false,
        },
        ParkedEntry {
            caller_number: "106".into(),
            caller_name: String::new(),
            parked_on: "102".into(),
            parked_at_ms: 1_699_999_990_000,
            retrieve_number: "*88102*2".into(),
            recalling: true,
        },
    ]
}

#[test]
fn park_list_pages() {
    let now = 1_700_000_065_000;
    let own: Vec<ParkedEntry> = entries()
        .into_iter()
        .filter(|e| e.parked_on == "101")
        .collect();
    golden(
        "snom_park_list.xml",
        &snom::park_list_page("101", &own, now),
    );
    golden(
        "snom_group_park_list.xml",
        &snom::group_park_list_page("Front desk", &entries(), now),
    );
    golden(
        "snom_park_list_empty.xml",
        &snom::park_list_page("101", &[], now),
    );
}

#[test]
fn model_file_is_empty_settings() {
    golden("snom_model_defaults.htm", &snom::model_defaults());
}

/// The same phone as a Yealink T54W and a Fanvil X4U: the same keys, each
/// in its vendor's format.
fn as_vendor(mac: &str, model: &str) -> PhoneConfig {
    let mut c = d785();
    c.mac = mac.into();
    c.model = model.into();
    c
}

fn without_identity(mut c: PhoneConfig) -> PhoneConfig {
    c.identity = None;
    c.in_park_group = false;
    c.keys = vec![
        Key::Unavailable,
        Key::Blf {
            extension: "102".into(),
            label: None,
        },
    ];
    c.config_version = 4;
    c
}

#[test]
fn yealink_t54w_with_park_keys_blf_and_speed_dial() {
    golden(
        "yealink_t54w.cfg",
        &yealink::config_cfg(&as_vendor("805ec0a1b2c3", "T54W")),
    );
}

#[test]
fn yealink_whose_extension_was_deleted_has_no_identity() {
    golden(
        "yealink_t54w_no_identity.cfg",
        &yealink::config_cfg(&without_identity(as_vendor("805ec0a1b2c3", "T54W"))),
    );
}

#[test]
fn yealink_common_file_is_empty() {
    golden("yealink_common.cfg", &yealink::common_defaults());
}

#[test]
fn fanvil_x4u_with_park_keys_blf_and_speed_dial() {
    golden(
        "fanvil_x4u.cfg",
        &fanvil::config_cfg(&as_vendor("0c383ea1b2c3", "X4U")),
    );
}

#[test]
fn fanvil_whose_extension_was_deleted_has_no_identity() {
    golden(
        "fanvil_x4u_no_identity.cfg",
        &fanvil::config_cfg(&without_identity(as_vendor("0c383ea1b2c3", "X4U"))),
    );
}
