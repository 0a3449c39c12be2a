//! Orbit's call layer: every call between extensions is a back-to-back
//! user agent with one dialog per leg and media anchored by Orbit.
//!
//! - [`manager`]: the task that owns all calls and legs, fed SIP events;
//! - [`setup`]: the caller's INVITE, ringing phones in parallel or in turn,
//!   answer, CANCEL, ring timeouts;
//! - [`indialog`]: BYE, hold and resume, session refresh;
//! - [`transfer`]: blind and attended transfer, INVITE with Replaces;
//! - [`teardown`]: ending calls, what each side hears, RTP timeouts;
//! - [`dialog`], [`sipmsg`]: dialog state and request text, without I/O;
//! - [`records`]: call records written to the store.
//!
//! Above it sits the binary; below it the SIP endpoint, the registrar
//! (who is where), the store (tenants, numbers, records) and the media
//! relay.

pub mod call;
pub mod dialog;
mod indialog;
pub mod manager;
pub mod music;
pub mod records;
pub mod setup;
pub mod sipmsg;
mod teardown;
pub mod transfer;

pub use music::MusicLibrary;
pub use manager::{calls_channel, CallConfig, Calls, CallsInbox, Deps, Manager};
pub use setup::ALLOW;
pub use sipmsg::LocalAddr;
