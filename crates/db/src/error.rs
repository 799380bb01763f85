//! Database errors as the domain crates see them: a closed set, with SQLSTATE
//! mapped in one place.

/// SQLSTATE codes the platform branches on.
pub mod sqlstate {
    pub const UNIQUE_VIOLATION: &str = "23505";
    pub const FOREIGN_KEY_VIOLATION: &str = "23503";
    pub const CHECK_VIOLATION: &str = "23514";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const SERIALIZATION_FAILURE: &str = "40001";
    pub const INVALID_SCHEMA_NAME: &str = "3F000";
}

/// What went wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A unique constraint refused the row; carries the constraint name.
    #[error("unique constraint `{0}` violated")]
    UniqueViolation(String),
    /// A referenced row does not exist (or is invisible to this tenant).
    #[error("foreign key `{0}` violated")]
    ForeignKeyViolation(String),
    /// The tenant schema is missing.
    #[error("tenant schema missing")]
    SchemaMissing,
    /// No connection could be had in time.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else; the text is for logs, never for callers.
    #[error("database error: {0}")]
    Other(String),
}

impl DbError {
    fn from_code(code: Option<&str>, constraint: Option<&str>, text: String) -> DbError {
        let constraint = constraint.unwrap_or_default().to_owned();
        match code {
            Some(sqlstate::UNIQUE_VIOLATION) => DbError::UniqueViolation(constraint),
            Some(sqlstate::FOREIGN_KEY_VIOLATION) => DbError::ForeignKeyViolation(constraint),
            Some(sqlstate::INVALID_SCHEMA_NAME) => DbError::SchemaMissing,
            _ => DbError::Other(text),
        }
    }
}

impl From<sqlx::Error> for DbError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) => {
                DbError::from_code(db.code().as_deref(), db.constraint(), error.to_string())
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                DbError::Unavailable(error.to_string())
            }
            _ => DbError::Other(error.to_string()),
        }
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(error: tokio_postgres::Error) -> Self {
        match error.as_db_error() {
            Some(db) => {
                DbError::from_code(Some(db.code().code()), db.constraint(), error.to_string())
            }
            None if error.is_closed() => DbError::Unavailable(error.to_string()),
            None => DbError::Other(error.to_string()),
        }
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        match error {
            deadpool_postgres::PoolError::Backend(error) => error.into(),
            other => DbError::Unavailable(other.to_string()),
        }
    }
}
