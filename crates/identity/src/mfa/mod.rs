//! Second factor: TOTP (RFC 6238) and recovery codes.
//!
//! Everything here is pure: no database, no clock, no network. The caller
//! passes the current time in, stores what these functions return (the TOTP
//! secret encrypted at rest, the last accepted step, the recovery-code
//! hashes) and makes "accept once" atomic in its own transaction. Keeping the
//! time an argument is what lets the RFC vectors and the window tests run
//! without sleeping or mocking a clock.

pub mod recovery;
pub mod store;
pub mod totp;
