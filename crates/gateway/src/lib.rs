//! The gRPC gateway: tenant resolution, authentication, policy and forwarding without decoding.
#![forbid(unsafe_code)]

pub mod access_token;
mod authenticate;
mod client;
mod deadline;
mod forward;
mod identity_jwks;
mod metadata;
mod observe;
mod policy;
mod rate_limit;
mod security_log;
mod tenant;

pub use forward::{Gateway, GatewayConfig, Upstreams};
pub use policy::PolicyTable;
pub use rate_limit::{Limit, Period, RateLimits, tier_quota};
