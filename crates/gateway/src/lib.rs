//! The gRPC gateway: tenant resolution, authentication, policy and forwarding without decoding.
#![forbid(unsafe_code)]

mod authenticate;
mod deadline;
mod forward;
mod metadata;
mod policy;
mod tenant;

pub use forward::{Gateway, GatewayConfig, Upstreams};
pub use policy::PolicyTable;
