//! Why a SUBSCRIBE or a refresh was refused, and the SIP answer for each.

/// Which bound a subscription would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// [`crate::Limits::max_per_contact`].
    Contact,
    /// [`crate::Limits::max_per_tenant`].
    Tenant,
}

/// A refused SUBSCRIBE or refresh; nothing changed in the table (a refused
/// refresh leaves the subscription as it was, RFC 6665 §4.1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A non-zero `Expires` below the minimum: 423 with `Min-Expires`.
    #[error("subscription too brief; at least {min_s} s")]
    TooBrief {
        /// The `Min-Expires` value.
        min_s: u32,
    },
    /// A bound is reached. Per contact: 403, since the phone's own
    /// configuration asks for too much and retrying cannot help. Per
    /// tenant: 503 with `Retry-After`, since the tenant's total may drop
    /// as other subscriptions end.
    #[error("too many subscriptions per {0:?}")]
    TooMany(Bound),
    /// A refresh of a subscription the table does not hold (ended, or
    /// never existed): 481.
    #[error("no such subscription")]
    NoSuchSubscription,
}

impl Refused {
    /// The SIP status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Refused::TooBrief { .. } => 423,
            Refused::TooMany(Bound::Contact) => 403,
            Refused::TooMany(Bound::Tenant) => 503,
            Refused::NoSuchSubscription => 481,
        }
    }
}
