//! Users, memberships, invitations, password sign-in, MFA, access tokens and their keys, operator API keys.
#![forbid(unsafe_code)]

pub mod allowlist;
pub mod api_keys;
mod challenges;
mod error;
mod grpc;
mod invitations;
pub mod mfa;
pub mod model;
pub mod operator_keys;
pub mod outbox;
pub mod password;
pub mod secrets;
pub mod security;
mod service;
pub mod sessions;
pub mod sso;
pub mod throttle;
pub mod tokens;

pub use error::{IdentityError, reason};
pub use grpc::IdentityGrpc;
pub use secrets::SecretBox;
pub use service::{
    DEFAULT_ISSUER, DEFAULT_SSO_REDIRECT_URI, IdentityApi, IdentityConfig, LoginOutcome, PgIdentity,
};
