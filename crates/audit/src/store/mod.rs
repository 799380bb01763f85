//! The audit log in PostgreSQL: each organization's chain in its own schema
//! (`org_<code>.audit_log`, `audit_head`, `audit_checkpoints`), the
//! platform's in the `audit` schema, same tables.

mod append;
pub mod checkpointer;
mod read;
pub mod retention;
mod row;

pub use append::{append, append_in_tenant};
pub use read::{
    AuditFilter, chain_head, checkpoints_between, entries_between, first_sequence, list_entries,
    sequence_range,
};

/// The schema of the platform chain.
pub const PLATFORM_SCHEMA: &str = "audit";

/// `"schema".` for schema-qualified statements.
fn qualified(schema: &str) -> Result<String, cg_db::DbError> {
    Ok(format!("{}.", cg_db::migrate::quote_schema(schema)?))
}
