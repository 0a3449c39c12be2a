//! A request that passed the input checks, with the fields every handler needs
//! already decoded.

use crate::frame::Message;
use crate::uri::{NameAddr, SipUri};
use crate::via::Via;

/// The methods Orbit recognises. Anything else is answered 501 before a
/// handler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    Register,
    Options,
    Invite,
    Ack,
    Bye,
    Cancel,
    Subscribe,
    Notify,
    Refer,
    Message,
    Info,
    Update,
    Prack,
    Publish,
}

impl Method {
    pub const ALL: [Method; 14] = [
        Method::Register,
        Method::Options,
        Method::Invite,
        Method::Ack,
        Method::Bye,
        Method::Cancel,
        Method::Subscribe,
        Method::Notify,
        Method::Refer,
        Method::Message,
        Method::Info,
        Method::Update,
        Method::Prack,
        Method::Publish,
    ];

    /// Methods are case-sensitive (RFC 3261 §7.1).
    pub fn from_token(token: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == token)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Publish => "PUBLISH",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub uri: SipUri,
    pub from: NameAddr,
    pub to: NameAddr,
    pub call_id: String,
    pub cseq: u32,
    pub via: Via,
    pub max_forwards: Option<u8>,
    /// The framed message, for any header the fields above do not cover.
    pub message: Message,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.message.header(name)
    }

    /// Every element of a comma-list header across all its fields.
    pub fn header_list(&self, name: &str) -> Vec<&str> {
        self.message
            .header_all(name)
            .flat_map(crate::uri::split_list)
            .collect()
    }
}
