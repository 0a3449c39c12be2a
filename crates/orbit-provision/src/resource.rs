//! The SIP resources phones watch (RFC 4235 `dialog` subscriptions). The
//! presence side publishes exactly these; keys of every vendor use them.
//!
//! - an extension's calls (classic BLF): `sip:<ext>@<domain>`
//! - the calls parked on an extension: `sip:park-<ext>@<domain>`
//! - the calls parked on any member of a call park group:
//!   `sip:parkgroup-<group id>@<domain>`

/// BLF of an extension's calls.
pub fn extension_uri(extension: &str, domain: &str) -> String {
    format!("sip:{extension}@{domain}")
}

/// The calls parked on an extension (what a Visual Park key watches).
pub fn park_uri(extension: &str, domain: &str) -> String {
    format!("sip:park-{extension}@{domain}")
}

/// The calls parked on any member of a call park group.
pub fn park_group_uri(group_id: &str, domain: &str) -> String {
    format!("sip:parkgroup-{group_id}@{domain}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn uris() {
        assert_eq!(
            super::extension_uri("102", "acme.test"),
            "sip:102@acme.test"
        );
        assert_eq!(
            super::park_uri("101", "acme.test"),
            "sip:park-101@acme.test"
        );
        assert_eq!(
            super::park_group_uri("9f0c", "acme.test"),
            "sip:parkgroup-9f0c@acme.test"
        );
    }
}
