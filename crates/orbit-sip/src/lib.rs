//! Orbit's SIP layer: transports (UDP, TCP, TLS), message framing, the input
//! checks every message passes first, and server transactions.
//!
//! It knows nothing of tenants, registrations or calls: requests that pass
//! the checks go to a [`Handler`], once per transaction.

pub mod client;
mod datagram;
pub mod endpoint;
pub mod frame;
pub mod outbound;
pub mod request;
pub mod response;
pub mod sanity;
pub mod transaction;
pub mod transport;
pub mod uri;
pub mod via;

pub use endpoint::{Endpoint, EndpointConfig, Handler, Reply, ServerTx};
pub use outbound::{new_branch, ClientEvent, Outgoing, SendError};
pub use request::{Method, Request};
pub use response::Response;
pub use transport::{Source, Transport};
