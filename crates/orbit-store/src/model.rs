#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub domain: String,
    pub realm: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An extension as the directory holds it: HA1 values, never a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub tenant_id: String,
    pub number: String,
    pub display_name: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One registered contact of an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub tenant_id: String,
    pub extension: String,
    pub contact: String,
    /// Header parameters of the Contact other than `expires`, e.g. `;q=0.5;+sip.instance="<urn:...>"`.
    pub contact_params: String,
    pub expires_at: i64,
    pub call_id: String,
    pub cseq: i64,
    /// `transport:ip:port` the REGISTER arrived from.
    pub source: String,
    pub transport: String,
    pub user_agent: String,
    pub registered_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub created_at: i64,
}
