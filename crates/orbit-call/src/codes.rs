//! Feature codes: what a dialled number (or a REFER target) asks for when it
//! starts with one of the tenant's park codes (PortSIP's defaults: `*68`
//! park, `*58` group park, `*88` retrieve).

/// A tenant's codes. The store guarantees they are distinct and that none
/// is a prefix of another, so at most one matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codes {
    pub park: String,
    pub group_park: String,
    pub retrieve: String,
}

impl Default for Codes {
    fn default() -> Self {
        Codes {
            park: "*68".into(),
            group_park: "*58".into(),
            retrieve: "*88".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feature {
    /// Park on an extension; `None`: the parker's own.
    Park { on: Option<String> },
    /// Park on the first available member of the parker's group.
    GroupPark,
    /// Retrieve the oldest call parked on an extension; `None`: one's own.
    RetrieveOldest { from: Option<String> },
    /// Retrieve one parked call by its id (the per-call retrieve address).
    RetrieveId(u64),
}

/// What `dialled` asks for, if it is a feature code. `#` ends a code
/// (`*68#` is "park on my own extension"); a trailing `#` after digits is
/// allowed too, since some phones send it as the dial key.
pub fn parse(dialled: &str, codes: &Codes) -> Option<Feature> {
    let d = dialled.trim();
    let digits_after = |code: &str| -> Option<Option<String>> {
        let rest = d.strip_prefix(code)?;
        let rest = rest.strip_suffix('#').unwrap_or(rest);
        if rest.is_empty() {
            return Some(None);
        }
        if rest.len() <= 15 && rest.bytes().all(|b| b.is_ascii_digit()) {
            return Some(Some(rest.to_string()));
        }
        None
    };
    // A BLF key on a park resource that has no dialog to replace (or a
    // phone that never sends Replaces) calls the resource it watches:
    // `park-103` means "the oldest call parked on 103".
    if let Some(ext) = d.strip_prefix("park-") {
        if !ext.is_empty() && ext.len() <= 15 && ext.bytes().all(|b| b.is_ascii_digit()) {
            return Some(Feature::RetrieveOldest {
                from: Some(ext.to_string()),
            });
        }
        return None;
    }
    if let Some(rest) = d.strip_prefix(codes.retrieve.as_str()) {
        // `*88*17`: the retrieve address of parked call 17.
        if let Some(id) = rest.strip_prefix('*') {
            return id.parse().ok().map(Feature::RetrieveId);
        }
        return digits_after(&codes.retrieve).map(|from| Feature::RetrieveOldest { from });
    }
    if let Some(on) = digits_after(&codes.park) {
        return Some(Feature::Park { on });
    }
    match digits_after(&codes.group_park) {
        Some(None) => Some(Feature::GroupPark),
        _ => None,
    }
}

/// The number to dial to retrieve parked call `id` (published per call),
/// given the tenant's retrieve code.
pub fn retrieve_address(retrieve_code: &str, id: u64) -> String {
    format!("{retrieve_code}*{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portsip_codes() {
        let c = Codes::default();
        assert_eq!(parse("*68", &c), Some(Feature::Park { on: None }));
        assert_eq!(parse("*68#", &c), Some(Feature::Park { on: None }));
        assert_eq!(
            parse("*68103", &c),
            Some(Feature::Park {
                on: Some("103".into())
            })
        );
        assert_eq!(parse("*58", &c), Some(Feature::GroupPark));
        assert_eq!(parse("*58#", &c), Some(Feature::GroupPark));
        assert_eq!(parse("*58103", &c), None, "group park takes no target");
        assert_eq!(
            parse("*88", &c),
            Some(Feature::RetrieveOldest { from: None })
        );
        assert_eq!(
            parse("*88#", &c),
            Some(Feature::RetrieveOldest { from: None })
        );
        assert_eq!(
            parse("*88103#", &c),
            Some(Feature::RetrieveOldest {
                from: Some("103".into())
            })
        );
        assert_eq!(
            parse(&retrieve_address(&c.retrieve, 17), &c),
            Some(Feature::RetrieveId(17))
        );
        assert_eq!(
            parse("park-103", &c),
            Some(Feature::RetrieveOldest {
                from: Some("103".into())
            }),
            "a press of a Visual Park BLF key that calls what it watches"
        );
        assert_eq!(parse("park-", &c), None);
        assert_eq!(parse("park-10x", &c), None);
        assert_eq!(parse("*88*x", &c), None);
        assert_eq!(parse("*68abc", &c), None);
        assert_eq!(parse("103", &c), None);
        assert_eq!(parse("*6", &c), None);
    }

    #[test]
    fn tenant_codes() {
        let c = Codes {
            park: "#7".into(),
            group_park: "#8".into(),
            retrieve: "#9".into(),
        };
        assert_eq!(parse("#7", &c), Some(Feature::Park { on: None }));
        assert_eq!(
            parse("#9#", &c),
            Some(Feature::RetrieveOldest { from: None })
        );
        assert_eq!(parse("*68", &c), None);
    }
}
