//! Users, memberships, login, MFA, SSO, tokens and API keys; operator API keys today.
#![forbid(unsafe_code)]

pub mod mfa;
pub mod operator_keys;

use cg_proto::identity::v1::identity_service_server::IdentityService;

/// The identity gRPC service. Every method answers `UNIMPLEMENTED` until
/// the identity issue builds it.
#[derive(Debug, Default)]
pub struct IdentityGrpc;

impl IdentityService for IdentityGrpc {}
