//! Server assembly shared by every ClaimGuardian server: health, reflection, tracing, limits, shutdown.
#![forbid(unsafe_code)]

mod server;
mod telemetry;

pub use server::{GrpcServer, ServerLimits, reflection_routes};
pub use telemetry::init_tracing;
