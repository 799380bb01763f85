//! Server assembly shared by every ClaimGuardian server: health, reflection, tracing, metrics, limits, shutdown.
#![forbid(unsafe_code)]

mod metrics_endpoint;
mod server;
mod telemetry;
pub mod trace_context;

pub use metrics_endpoint::serve_metrics;
pub use server::{GrpcServer, ServerLimits, reflection_routes};
pub use telemetry::Telemetry;
