//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while locating, initialising, starting or
/// stopping a private cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgClusterError {
    /// No directory holding `initdb`, `pg_ctl` and `postgres` was found.
    #[error(
        "PostgreSQL server binaries not found (looked on PATH, in `pg_config --bindir` and \
         /usr/lib/postgresql/*/bin): install them (Debian: apt-get install postgresql) or set \
         DATABASE_URL to an existing server"
    )]
    BinariesNotFound,

    /// An explicitly given directory lacks one of the server programs.
    #[error(
        "{} does not hold the PostgreSQL server programs initdb, pg_ctl and postgres",
        .dir.display()
    )]
    NotABinDir {
        /// The directory that was given.
        dir: PathBuf,
    },

    /// Running as root, but the unprivileged `postgres` user cannot be used.
    #[error(
        "running as root, so PostgreSQL must run as the unprivileged `postgres` system user, but \
         {reason}: create that user (Debian: apt-get install postgresql) or run as a non-root user"
    )]
    ServiceUserUnavailable {
        /// What is wrong.
        reason: String,
    },

    /// The data directory cannot hold (or does not hold a usable) cluster.
    #[error("cannot use {} as a PostgreSQL data directory: {reason}", .path.display())]
    InvalidDataDir {
        /// The data directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A server is already running on the data directory and is not ours to stop.
    #[error(
        "the PostgreSQL cluster in {} is already running ({owner}): stop it first, e.g. \
         `pg_ctl stop -D {}`",
        .data_dir.display(),
        .data_dir.display()
    )]
    ClusterInUse {
        /// The data directory.
        data_dir: PathBuf,
        /// Who started it, as far as known.
        owner: String,
    },

    /// A file-system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A server program (initdb, pg_ctl) exited unsuccessfully.
    #[error("`{command}` failed ({status}): {output}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// Its output (stdout and stderr).
        output: String,
    },

    /// `pg_ctl start` failed; carries the end of the server log.
    #[error(
        "PostgreSQL server in {} did not start: {reason}; last lines of {}:\n{log_tail}",
        .data_dir.display(),
        .log.display()
    )]
    StartFailed {
        /// The data directory.
        data_dir: PathBuf,
        /// What pg_ctl reported.
        reason: String,
        /// The server log file.
        log: PathBuf,
        /// The last lines the server wrote during this attempt.
        log_tail: String,
    },

    /// The blocking task doing the work panicked or was cancelled.
    #[error("PostgreSQL cluster task failed: {0}")]
    Task(String),
}

impl PgClusterError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        PgClusterError::Io {
            context: context.into(),
            source,
        }
    }
}
