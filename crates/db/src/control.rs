//! The control-plane pool: one sqlx pool per service over the control schemas.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;

use crate::DbError;

/// Pool over the control schemas (`tenancy`, `identity`, `billing`, `audit`).
pub type ControlPool = sqlx::PgPool;

/// Connects the control-plane pool. Connections are recycled after 30
/// minutes so per-relation caches stay bounded with thousands of tenants.
pub async fn connect_control(url: &str, max_connections: u32) -> Result<ControlPool, DbError> {
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(10))
        .max_lifetime(Duration::from_secs(30 * 60))
        .idle_timeout(Duration::from_secs(5 * 60))
        .connect(url)
        .await?)
}
