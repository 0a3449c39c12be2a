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
            Method::Bye | Method::Cancel => Response::new(481, "Call/Transaction Does Not Exist").into(),
            _ => Response::new(501, "Not Implemented").header("Allow", ALLOW).into(),
        }
    }
}
