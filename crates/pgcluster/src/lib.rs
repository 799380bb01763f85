//! A private PostgreSQL cluster started from the local server binaries.
//!
//! [`ServerBinaries::locate`] finds `initdb`, `pg_ctl` and `postgres`;
//! [`PgCluster::start`] initialises a data directory (or reuses the cluster
//! already in it) and starts a server that listens on 127.0.0.1 only, on a
//! free port, with its Unix socket in the data directory, superuser
//! `postgres` and a random password kept in the data directory.
//!
//! When this process runs as root (CI), the server programs run as the
//! unprivileged `postgres` system user (`runuser -u postgres -- ...`): the
//! data directory is given to that user and each directory above it gets
//! the search (execute) bit that user needs, where missing (so a cluster can
//! live in a 0700 `tempfile::tempdir()`). Nothing is ever made readable.
//!
//! The server never outlives the process that started it: a watchdog child
//! process stops it once that process is gone, however it ended (see
//! `src/watchdog.rs` for why and how).
//!
//! ```no_run
//! # async fn demo() -> Result<(), cg_pgcluster::PgClusterError> {
//! use cg_pgcluster::{ClusterOptions, PgCluster, ServerBinaries};
//!
//! let binaries = ServerBinaries::locate()?;
//! let cluster = PgCluster::start(&binaries, ClusterOptions::ephemeral("/tmp/cg-test-db")).await?;
//! let url = cluster.url("postgres");
//! # let _ = url;
//! cluster.stop().await?;
//! # Ok(())
//! # }
//! ```

mod binaries;
mod cluster;
mod control;
mod data_dir;
mod error;
mod port;
mod run_as;
mod settings;
mod watchdog;

pub use binaries::ServerBinaries;
pub use cluster::{ClusterOptions, PgCluster};
pub use error::PgClusterError;
