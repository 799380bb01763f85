//! Logging set-up: `RUST_LOG`-style filtering, human-readable output.

use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber once; later calls are no-ops.
/// `CG_LOG` (or `RUST_LOG`) filters, defaulting to `info`.
pub fn init_tracing() {
    let filter = std::env::var("CG_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_target(false)
        .try_init();
}
