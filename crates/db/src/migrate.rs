//! Migration runners for the control schemas and every tenant schema.
//!
//! Migrations are the plain `.sql` files under `migrations/<schema>/`,
//! embedded and checksummed by `sqlx::migrate!`. Each schema keeps its own
//! version record in `<schema>.schema_migrations`, so a tenant schema carries
//! its version with it (and could move to another node, as with Citus
//! schema-based sharding). Each schema migrates in one transaction under an
//! advisory lock: a run that stops half-way leaves every schema either at its
//! old or its new version, and the next run resumes with the schemas left.

use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection, Row};

use crate::{APP_ROLE, ControlPool, DbError, is_valid_schema_name};

static TENANCY: Migrator = sqlx::migrate!("../../migrations/tenancy");
static IDENTITY: Migrator = sqlx::migrate!("../../migrations/identity");
static AUDIT: Migrator = sqlx::migrate!("../../migrations/audit");
/// Tables created in every `org_<code>` schema.
pub static TENANT: Migrator = sqlx::migrate!("../../migrations/tenant");

/// Control schemas in the order they migrate.
const CONTROL_SCHEMAS: &[(&str, &Migrator)] = &[
    ("tenancy", &TENANCY),
    ("identity", &IDENTITY),
    ("audit", &AUDIT),
];

/// The role of the audit retention job: the only one that may delete audit
/// entries, and only those a signed checkpoint covers.
pub const RETENTION_ROLE: &str = "cg_audit_retention";

/// The newest tenant migration version.
pub fn latest_tenant_version() -> i64 {
    TENANT.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Applies the pending migrations of `migrator` to `schema` inside the
/// caller's open transaction. Returns the versions applied.
pub async fn apply_in_transaction(
    conn: &mut PgConnection,
    schema: &str,
    migrator: &Migrator,
) -> Result<Vec<i64>, DbError> {
    let quoted = quote_schema(schema)?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('cg.migrate.' || $1))")
        .bind(schema)
        .execute(&mut *conn)
        .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {quoted}; SET LOCAL search_path TO {quoted}; \
         CREATE TABLE IF NOT EXISTS schema_migrations ( \
             version bigint PRIMARY KEY, description text NOT NULL, \
             checksum bytea NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
    )))
    .execute(&mut *conn)
    .await?;
    let applied: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, checksum FROM schema_migrations")
            .fetch_all(&mut *conn)
            .await?;
    let mut done = Vec::new();
    for migration in migrator.iter() {
        if migration.migration_type.is_down_migration() {
            continue;
        }
        match applied
            .iter()
            .find(|(version, _)| *version == migration.version)
        {
            Some((_, checksum)) if checksum.as_slice() == &*migration.checksum => continue,
            Some(_) => {
                return Err(DbError::Other(format!(
                    "migration {} of schema {schema} changed after it was applied",
                    migration.version
                )));
            }
            None => {}
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(migration.sql.as_str().to_owned()))
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, description, checksum) VALUES ($1, $2, $3)",
        )
        .bind(migration.version)
        .bind(&*migration.description)
        .bind(&*migration.checksum)
        .execute(&mut *conn)
        .await?;
        done.push(migration.version);
    }
    Ok(done)
}

/// Grants the application role what it needs in a tenant schema: data
/// access, never ownership; on the audit tables only reading and appending
/// (and moving the chain head forward). The retention role may read and
/// delete audit entries, which a trigger limits to checkpointed ones.
pub async fn grant_tenant_access(conn: &mut PgConnection, schema: &str) -> Result<(), DbError> {
    let quoted = quote_schema(schema)?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "GRANT USAGE ON SCHEMA {quoted} TO {APP_ROLE}, {RETENTION_ROLE}; \
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {quoted} TO {APP_ROLE}; \
         REVOKE ALL ON {quoted}.schema_migrations FROM {APP_ROLE}; \
         REVOKE UPDATE, DELETE, TRUNCATE ON {quoted}.audit_log, {quoted}.audit_checkpoints FROM {APP_ROLE}; \
         REVOKE DELETE, TRUNCATE ON {quoted}.audit_head FROM {APP_ROLE}; \
         GRANT SELECT, DELETE ON {quoted}.audit_log TO {RETENTION_ROLE}; \
         GRANT SELECT ON {quoted}.audit_checkpoints TO {RETENTION_ROLE}"
    )))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Creates (or migrates) one tenant schema inside the caller's transaction.
pub async fn provision_tenant(conn: &mut PgConnection, schema: &str) -> Result<Vec<i64>, DbError> {
    if !is_valid_schema_name(schema) {
        return Err(DbError::Other(format!(
            "invalid tenant schema name {schema:?}"
        )));
    }
    let applied = apply_in_transaction(conn, schema, &TENANT).await?;
    grant_tenant_access(conn, schema).await?;
    Ok(applied)
}

/// Versions applied to a tenant schema, ascending.
pub async fn tenant_versions(pool: &ControlPool, schema: &str) -> Result<Vec<i64>, DbError> {
    let quoted = quote_schema(schema)?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM {quoted}.schema_migrations ORDER BY version"
    )))
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(|row| row.get::<i64, _>(0)).collect())
}

/// Creates the application and retention roles if they are missing. Neither
/// may log in or bypass row-level security; the migrating user may switch
/// to both.
async fn ensure_roles(conn: &mut PgConnection) -> Result<(), DbError> {
    for role in [APP_ROLE, RETENTION_ROLE] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DO $$ BEGIN \
                 CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; \
             DO $$ BEGIN \
                 EXECUTE format('GRANT {role} TO %I', current_user); \
             EXCEPTION WHEN duplicate_object OR unique_violation OR invalid_grant_operation THEN NULL; END $$;"
        )))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Grants on the platform audit schema: the retention role may read and
/// delete checkpointed entries; the application role gets nothing (only
/// platform components write there, as the migrating user).
async fn grant_platform_audit(conn: &mut PgConnection) -> Result<(), DbError> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "GRANT USAGE ON SCHEMA audit TO {RETENTION_ROLE}; \
         GRANT SELECT, DELETE ON audit.audit_log TO {RETENTION_ROLE}; \
         GRANT SELECT ON audit.audit_checkpoints TO {RETENTION_ROLE}"
    )))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Progress of a migration run, for the command line.
pub trait Progress {
    fn schema_done(&mut self, schema: &str, applied: &[i64], done: usize, total: usize);
}

impl Progress for () {
    fn schema_done(&mut self, _: &str, _: &[i64], _: usize, _: usize) {}
}

/// Migrates the control schemas, then every tenant schema. Idempotent;
/// resumable: each schema commits on its own.
pub async fn migrate_all(pool: &ControlPool, progress: &mut dyn Progress) -> Result<(), DbError> {
    let mut conn = pool.acquire().await?;
    ensure_roles(&mut conn).await?;
    let total_control = CONTROL_SCHEMAS.len();
    for (index, (schema, migrator)) in CONTROL_SCHEMAS.iter().enumerate() {
        let mut tx = conn.begin().await?;
        let applied = apply_in_transaction(&mut tx, schema, migrator).await?;
        tx.commit().await?;
        progress.schema_done(schema, &applied, index + 1, total_control);
    }
    grant_platform_audit(&mut conn).await?;
    let schemas: Vec<String> =
        sqlx::query_scalar("SELECT schema_name FROM tenancy.organizations ORDER BY code")
            .fetch_all(&mut *conn)
            .await?;
    for (index, schema) in schemas.iter().enumerate() {
        let mut tx = conn.begin().await?;
        let applied = provision_tenant(&mut tx, schema).await?;
        tx.commit().await?;
        progress.schema_done(schema, &applied, index + 1, schemas.len());
    }
    Ok(())
}

/// `"schema"` for a schema name of lowercase letters, digits and
/// underscores (what the platform creates); anything else is refused.
pub fn quote_schema(schema: &str) -> Result<String, DbError> {
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(format!("\"{schema}\""))
    } else {
        Err(DbError::Other(format!("invalid schema name {schema:?}")))
    }
}
