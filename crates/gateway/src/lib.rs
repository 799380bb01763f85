//! The gRPC gateway: tenant resolution, authentication, policy and forwarding without decoding.
#![forbid(unsafe_code)]

pub mod access_cache;
pub mod access_token;
mod authenticate;
mod background;
mod client;
mod deadline;
mod forward;
mod identity_jwks;
mod metadata;
mod observe;
mod policy;
mod rate_limit;
mod security_log;
mod send;
mod tenant;
mod upstream;

pub use forward::{Gateway, GatewayConfig};
pub use policy::PolicyTable;
pub use rate_limit::{
    Limit, Period, RateLimitStore, RateLimits, RedisStore, redis_key, tier_quota,
};
pub use upstream::{Health, Upstreams};
