//! Access and refresh tokens of signed-in users.

pub mod claims;
pub mod signing;
