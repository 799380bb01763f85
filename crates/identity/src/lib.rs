//! Users, memberships, invitations, password sign-in, MFA, access tokens and their keys, operator API keys.
#![forbid(unsafe_code)]

mod error;
mod grpc;
pub mod mfa;
pub mod model;
pub mod operator_keys;
pub mod password;
pub mod secrets;
mod service;
pub mod throttle;
pub mod tokens;

pub use error::IdentityError;
pub use grpc::IdentityGrpc;
pub use secrets::SecretBox;
pub use service::{DEFAULT_ISSUER, IdentityApi, IdentityConfig, PgIdentity};
