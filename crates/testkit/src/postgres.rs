//! One PostgreSQL server per test process (`DATABASE_URL`, or a private
//! cluster from the local server binaries), one migrated template database,
//! and a fresh clone of it per test so tests run in parallel.

use std::path::PathBuf;

use anyhow::Context as _;
use cg_pgcluster::{ClusterOptions, PgCluster, ServerBinaries};
use sqlx::{Connection, PgConnection};
use tokio::sync::OnceCell;

struct Server {
    /// URL of the server's maintenance database, `{db}` in place of its name.
    url_template: String,
    template_db: String,
    /// Kept alive for the life of the process; its watchdog stops the
    /// cluster when the process exits.
    _cluster: Option<PgCluster>,
}

static SERVER: OnceCell<Server> = OnceCell::const_new();

/// A database of its own for one test.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl Server {
    fn url(&self, database: &str) -> String {
        self.url_template.replace("{db}", database)
    }
}

fn url_template_from(url: &str) -> anyhow::Result<String> {
    // Replace the path (database name) of a postgres:// URL, keep the query.
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base
        .find("://")
        .context("DATABASE_URL must be a postgres:// URL")?
        + 3;
    let path_start = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{{db}}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

fn data_dir_root() -> PathBuf {
    std::env::temp_dir()
}

/// Removes cluster directories left by test processes that no longer exist.
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(data_dir_root()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("cg-testkit-")) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !PathBuf::from(format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

async fn start_server() -> anyhow::Result<Server> {
    let pid = std::process::id();
    let (url_template, cluster) = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => (url_template_from(&url)?, None),
        _ => {
            remove_stale_clusters();
            let binaries = ServerBinaries::locate()?;
            let dir = data_dir_root().join(format!("cg-testkit-{pid}"));
            let cluster = PgCluster::start(&binaries, ClusterOptions::ephemeral(dir)).await?;
            (url_template_from(&cluster.url("postgres"))?, Some(cluster))
        }
    };
    let template_db = format!("cg_template_{pid}");
    let server = Server {
        url_template,
        template_db,
        _cluster: cluster,
    };
    let mut admin = PgConnection::connect(&server.url("postgres"))
        .await
        .context("connect to the test PostgreSQL")?;
    for statement in [
        format!("DROP DATABASE IF EXISTS \"{}\"", server.template_db),
        format!("CREATE DATABASE \"{}\"", server.template_db),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut admin)
            .await
            .context("create the template database")?;
    }
    claimguardian::database::migrate_all(&server.url(&server.template_db), &mut ())
        .await
        .context("migrate the template database")?;
    admin.close().await?;
    Ok(server)
}

/// A fresh, migrated database for one test.
pub async fn test_database() -> TestDatabase {
    let server = SERVER
        .get_or_try_init(start_server)
        .await
        .unwrap_or_else(|error| panic!("test PostgreSQL: {error:#}"));
    let name = format!("cg_test_{}", uuid::Uuid::now_v7().simple());
    let mut admin = PgConnection::connect(&server.url("postgres"))
        .await
        .unwrap_or_else(|error| panic!("connect to the test PostgreSQL: {error}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE \"{name}\" TEMPLATE \"{}\"",
        server.template_db
    )))
    .execute(&mut admin)
    .await
    .unwrap_or_else(|error| panic!("clone the template database: {error}"));
    let _ = admin.close().await;
    TestDatabase {
        url: server.url(&name),
        name,
    }
}

#[cfg(test)]
mod tests {
    use super::url_template_from;

    #[test]
    fn database_names_are_replaced_in_urls() {
        assert_eq!(
            url_template_from("postgres://u:p@127.0.0.1:5432/postgres").expect("valid"),
            "postgres://u:p@127.0.0.1:5432/{db}"
        );
        assert_eq!(
            url_template_from("postgres://u@localhost/x?sslmode=disable").expect("valid"),
            "postgres://u@localhost/{db}?sslmode=disable"
        );
        assert_eq!(
            url_template_from("postgres://h:1").expect("valid"),
            "postgres://h:1/{db}"
        );
    }
}
