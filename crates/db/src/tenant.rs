//! The tenant data plane: one shared pool, and transactions scoped to one
//! organization's schema with the row-level-security settings in place.
//!
//! Every transaction runs `SET LOCAL ROLE cg_app` (a role without
//! `BYPASSRLS` that owns nothing), points `search_path` at the tenant schema
//! and sets `app.org_id`, `app.user_id` and `app.role`, all transaction-local,
//! so nothing survives into the next use of a pooled connection and
//! PgBouncer in transaction mode works. This is the pattern PostgREST uses:
//! the login role only switches into the application role.

use std::str::FromStr;

use cg_context::TenantContext;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::{NoTls, Transaction};

use crate::DbError;

/// The application role every data-plane transaction runs as.
pub const APP_ROLE: &str = "cg_app";

/// Whether `name` is a tenant schema name we generate: `org_` then lowercase
/// letters, digits and underscores, at most 63 bytes.
pub fn is_valid_schema_name(name: &str) -> bool {
    name.len() <= 63
        && name.len() > 4
        && name.starts_with("org_")
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The shared data-plane pool.
#[derive(Clone)]
pub struct TenantPool {
    pool: Pool,
}

impl std::fmt::Debug for TenantPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantPool")
            .field("status", &self.pool.status())
            .finish()
    }
}

impl TenantPool {
    pub fn connect(url: &str, max_size: usize) -> Result<TenantPool, DbError> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| DbError::Other(format!("invalid database url: {e}")))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(10)))
            .create_timeout(Some(std::time::Duration::from_secs(10)))
            .build()
            .map_err(|e| DbError::Other(e.to_string()))?;
        Ok(TenantPool { pool })
    }

    /// Runs `work` in a transaction scoped to the context's organization and
    /// commits when it returns `Ok`. Dropping or failing rolls back.
    pub async fn in_tenant<T, E>(
        &self,
        ctx: &TenantContext,
        work: impl AsyncFnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<DbError>,
    {
        let tenant = ctx
            .tenant
            .as_ref()
            .ok_or_else(|| DbError::Other("tenant transaction without a tenant".to_owned()))?;
        if !is_valid_schema_name(&tenant.schema) {
            return Err(DbError::Other(format!("invalid schema name {:?}", tenant.schema)).into());
        }
        let mut client = self.pool.get().await.map_err(DbError::from)?;
        let tx = client.transaction().await.map_err(DbError::from)?;
        let user_id = ctx
            .principal
            .owner_id()
            .map(|id| id.to_string())
            .unwrap_or_default();
        tx.execute(
            "SELECT set_config('role', $1, true), set_config('search_path', $2, true), \
             set_config('app.org_id', $3, true), set_config('app.user_id', $4, true), \
             set_config('app.role', $5, true)",
            &[
                &APP_ROLE,
                &format!("\"{}\"", tenant.schema),
                &tenant.org_id.to_string(),
                &user_id,
                &tenant.role.as_str(),
            ],
        )
        .await
        .map_err(DbError::from)?;
        let out = work(&tx).await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid_schema_name;

    #[test]
    fn schema_names_are_checked() {
        assert!(is_valid_schema_name("org_demo_corp"));
        assert!(!is_valid_schema_name("org_"));
        assert!(!is_valid_schema_name("public"));
        assert!(!is_valid_schema_name("org_x\"; drop"));
        assert!(!is_valid_schema_name(&format!("org_{}", "a".repeat(60))));
    }
}
