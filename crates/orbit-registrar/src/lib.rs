//! Authentication of requests from users and the registrar.
//!
//! The registrar keeps bindings in memory (the SIP path never waits for the
//! database) and writes every change through to the store in batches, so
//! they survive a restart.

pub mod authenticator;
pub mod bindings;
pub mod registrar;

pub use authenticator::{AuthConfig, AuthOutcome, Authenticator};
pub use registrar::{Registrar, RegistrarConfig};
