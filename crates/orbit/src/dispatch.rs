//! Routes each new SIP transaction to the part of Orbit that owns it.

use std::sync::Arc;

use orbit_call::Calls;
use orbit_registrar::Registrar;
use orbit_sip::frame::Message;
use orbit_sip::{Handler, Method, Reply, Request, Response, ServerTx, Source};

/// Methods Orbit answers; sent in `Allow`.
pub const ALLOW: &str = orbit_call::ALLOW;

pub struct Dispatcher {
    pub registrar: Arc<Registrar>,
    pub calls: Calls,
}

impl Handler for Dispatcher {
    fn handle_tx(&self, req: &Request, source: &Source, tx: ServerTx) -> Option<Reply> {
        match req.method {
            Method::Invite => match precheck(req) {
                Some(resp) => Some(resp.into()),
                None => self.calls.on_request(tx),
            },
            Method::Bye
            | Method::Cancel
            | Method::Refer
            | Method::Update
            | Method::Info
            | Method::Prack
            | Method::Subscribe => self.calls.on_request(tx),
            // NOTIFY and OPTIONS inside a call's dialog belong to it.
            Method::Notify | Method::Options if req.to.tag().is_some() => self.calls.on_request(tx),
            _ => Some(self.handle(req, source)),
        }
    }

    fn ack(&self, req: &Request, _source: &Source) {
        self.calls.on_ack(req);
    }

    fn stray_response(&self, msg: &Message, _source: &Source) {
        self.calls.on_stray_response(msg);
    }

    fn handle(&self, req: &Request, source: &Source) -> Reply {
        match req.method {
            Method::Register => self.registrar.register(req, source),
            Method::Options => Response::new(200, "OK")
                .header("Allow", ALLOW)
                .header("Accept", "application/sdp")
                .header("Accept-Encoding", "identity")
                .header("Accept-Language", "en")
                .header("Supported", "")
                .into(),
            Method::Notify => Response::new(481, "Subscription Does Not Exist").into(),
            _ => Response::new(501, "Not Implemented")
                .header("Allow", ALLOW)
                .into(),
        }
    }
}

/// What is wrong with a request before the call layer sees it: RFC 3261
/// §8.2.3, a body Orbit cannot read is refused with 415, and a request that
/// accepts no SDP in the answer with 406.
pub fn precheck(req: &Request) -> Option<Response> {
    if req.method != Method::Invite {
        return None;
    }
    let sdp = "application/sdp";
    if !req.message.body.is_empty() {
        let ctype = req.header("content-type").unwrap_or("");
        let base = ctype.split(';').next().unwrap_or("").trim();
        if !base.eq_ignore_ascii_case(sdp) {
            return Some(Response::new(415, "Unsupported Media Type").header("Accept", sdp));
        }
    }
    let accepts = req.header_list("accept");
    if !accepts.is_empty() {
        let ok = accepts.iter().any(|a| {
            let t = a.split(';').next().unwrap_or("").trim();
            t.eq_ignore_ascii_case(sdp) || t == "*/*" || t.eq_ignore_ascii_case("application/*")
        });
        if !ok {
            return Some(Response::new(406, "Not Acceptable").header(
                "Warning",
                "399 orbit \"only application/sdp bodies are supported\"",
            ));
        }
    }
    None
}

#[cfg(test)]
#[path = "torture_tests.rs"]
mod torture_tests;
