//! PostgreSQL access: the control-plane pool, tenant-scoped transactions, migrations and SQLSTATE mapping.
#![forbid(unsafe_code)]

mod control;
mod error;
pub mod migrate;
pub mod paging;
mod tenant;

pub use control::{ControlPool, connect_control};
pub use error::{DbError, sqlstate};
pub use tenant::{APP_ROLE, TenantPool, is_valid_schema_name};
