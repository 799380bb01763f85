//! Properties, policies, claims, documents and AI usage inside each tenant's own schema.
#![forbid(unsafe_code)]

mod error;
mod grpc;
pub mod model;
mod money;
mod repository;
mod service;

pub use error::ClaimsError;
pub use grpc::ClaimsGrpc;
pub use service::{ClaimsApi, PgClaims};
