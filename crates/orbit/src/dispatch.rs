//! Routes each new SIP transaction to the part of Orbit that owns it.

use std::sync::Arc;

use orbit_registrar::Registrar;
use orbit_sip::{Handler, Method, Reply, Request, Response, Source};

/// Methods Orbit answers today; sent in `Allow`.
pub const ALLOW: &str = "REGISTER, OPTIONS, ACK, BYE, CANCEL";

pub struct Dispatcher {
    pub registrar: Arc<Registrar>,
}

impl Handler for Dispatcher {
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
            // No dialogs exist yet for these to belong to.
            Method::Bye | Method::Cancel => {
                Response::new(481, "Call/Transaction Does Not Exist").into()
            }
            Method::Invite => match offer_problem(req) {
                Some(resp) => resp.into(),
                None => Response::new(501, "Not Implemented")
                    .header("Allow", ALLOW)
                    .into(),
            },
            _ => Response::new(501, "Not Implemented")
                .header("Allow", ALLOW)
                .into(),
        }
    }
}

/// RFC 3261 §8.2.3: a body Orbit cannot read is refused with 415, and a
/// request that accepts no SDP in the answer with 406.
fn offer_problem(req: &Request) -> Option<Response> {
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
