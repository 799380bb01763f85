//! Where the platform's data lives: `DATABASE_URL` when set, else a private
//! PostgreSQL cluster started from the local server binaries.

use std::path::Path;

use anyhow::Context as _;
use cg_db::migrate::{self, Progress};
use cg_pgcluster::{ClusterOptions, PgCluster, ServerBinaries};

/// The database the platform runs on.
#[derive(Debug)]
pub enum Database {
    /// A cluster this process started, and stops.
    Embedded { cluster: PgCluster, url: String },
    /// A server someone else runs.
    External { url: String },
}

impl Database {
    /// `DATABASE_URL` when set; otherwise a private cluster in `data_dir`.
    pub async fn open(data_dir: &Path) -> anyhow::Result<Database> {
        if let Ok(url) = std::env::var("DATABASE_URL")
            && !url.trim().is_empty()
        {
            return Ok(Database::External { url });
        }
        let binaries = ServerBinaries::locate()?;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("create the data directory {}", data_dir.display()))?;
        let cluster = PgCluster::start(
            &binaries,
            ClusterOptions::durable(data_dir.join("postgres")),
        )
        .await?;
        let admin = cluster.url("postgres");
        ensure_database(&admin, "claimguardian").await?;
        let url = cluster.url("claimguardian");
        Ok(Database::Embedded { cluster, url })
    }

    pub fn url(&self) -> &str {
        match self {
            Database::Embedded { url, .. } | Database::External { url } => url,
        }
    }

    /// Stops the embedded cluster, if any.
    pub async fn close(self) -> anyhow::Result<()> {
        if let Database::Embedded { cluster, .. } = self {
            cluster.stop().await?;
        }
        Ok(())
    }
}

/// Creates `name` on the server at `admin_url` unless it exists.
pub async fn ensure_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let pool = cg_db::connect_control(admin_url, 1)
        .await
        .context("connect to PostgreSQL")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&pool)
            .await?;
    if !exists {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&pool)
            .await
            .with_context(|| format!("create database {name}"))?;
    }
    pool.close().await;
    Ok(())
}

/// Prints one line per migrated schema.
#[derive(Debug, Default)]
pub struct PrintProgress;

impl Progress for PrintProgress {
    fn schema_done(&mut self, schema: &str, applied: &[i64], done: usize, total: usize) {
        if applied.is_empty() {
            println!("  [{done}/{total}] {schema}: up to date");
        } else {
            println!("  [{done}/{total}] {schema}: applied {applied:?}");
        }
    }
}

/// Migrates the control schemas and every tenant schema.
pub async fn migrate_all(url: &str, progress: &mut dyn Progress) -> anyhow::Result<()> {
    let pool = cg_db::connect_control(url, 2)
        .await
        .context("connect to PostgreSQL")?;
    migrate::migrate_all(&pool, progress)
        .await
        .context("migrate")?;
    pool.close().await;
    Ok(())
}
