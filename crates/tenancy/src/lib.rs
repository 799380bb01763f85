//! Organizations, the tier catalog, state configurations, feature access and tenant schema provisioning.
#![forbid(unsafe_code)]

pub mod directory;
mod error;
pub mod feature_override;
mod grpc;
pub mod model;
mod repository;
mod service;
pub mod states;

pub use error::TenancyError;
pub use grpc::TenancyGrpc;
pub use service::{PgTenancy, TenancyApi};
