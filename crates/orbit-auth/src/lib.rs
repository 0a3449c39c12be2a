//! Server-side digest authentication for SIP and the brute-force guard.
//!
//! Pure functions and state machines: no sockets, no clock reads (time is
//! passed in), no storage. Passwords are never kept; only HA1 values are.

pub mod digest;
pub mod guard;
pub mod nonce;
pub mod replay;

pub use digest::{Algorithm, Credentials};
pub use guard::{Guard, GuardConfig, Verdict};
pub use nonce::{NonceCheck, NonceKey};
pub use replay::ReplayTable;
