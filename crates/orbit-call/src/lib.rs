//! Orbit's call layer: every call between extensions is a back-to-back
//! user agent with one dialog per leg and media anchored by Orbit.
//!
//! - [`manager`]: the task that owns all calls and legs, fed SIP events;
//! - [`setup`]: the caller's INVITE (authentication, limits, media) and CANCEL;
//! - `hunt`: which phones ring, in parallel or in turn, and ring timeouts;
//! - `forks`: answers from the rung phones, the first 2xx winning;
//! - `answering`: 2xx resent until the ACK, lost ACKs sent again;
//! - [`indialog`]: BYE, hold and resume, session refresh;
//! - [`transfer`]: blind and attended transfer;
//! - [`replaces`]: Replaces parsing and the INVITE with Replaces;
//! - [`teardown`]: ending calls, what each side hears, RTP timeouts;
//! - [`dialog`], [`sipmsg`]: dialog state and request text, without I/O;
//! - [`park`]: call park, driven by the `orbit-park` engine;
//! - [`records`]: call records and park events written to the store.
//!
//! Above it sits the binary; below it the SIP endpoint, the registrar
//! (who is where), the store (tenants, numbers, records) and the media
//! relay.

mod answering;
pub mod call;
pub mod codes;
mod control;
pub mod dialog;
mod forks;
mod hunt;
mod indialog;
pub mod manager;
pub mod music;
mod onetouch;
pub mod park;
mod parkinfo;
mod presence;
mod recall;
pub mod records;
pub mod replaces;
pub mod setup;
pub mod sipmsg;
mod teardown;
pub mod transfer;

pub use manager::{calls_channel, CallConfig, Calls, CallsInbox, Deps, Manager};
pub use music::MusicLibrary;
pub use setup::ALLOW;
pub use sipmsg::LocalAddr;
