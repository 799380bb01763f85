//! Which operating-system user runs the server programs.
//!
//! PostgreSQL refuses to run as root (`initdb: cannot be run as root`), and CI
//! runs as root. So when the effective uid is 0 every server program (initdb,
//! pg_ctl and, through pg_ctl, postgres) is run as the unprivileged `postgres`
//! system user via `runuser -u postgres -- ...`; the data directory is owned
//! by that user and the directories above it are made traversable for it.
//! As any other user the programs run directly.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::unistd::{Gid, Uid, User, geteuid};

use crate::PgClusterError;

/// The system user PostgreSQL runs as when we are root.
const SERVICE_USER: &str = "postgres";

/// Where `runuser` lives when it is not on PATH (it usually is in sbin).
const RUNUSER_FALLBACKS: [&str; 4] = [
    "/usr/sbin/runuser",
    "/sbin/runuser",
    "/usr/bin/runuser",
    "/bin/runuser",
];

/// Client/server environment variables that would otherwise leak into the
/// server programs and change what they do.
const PG_ENVIRONMENT: [&str; 12] = [
    "PGDATA",
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGDATABASE",
    "PGOPTIONS",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGCTLTIMEOUT",
];

/// Who runs initdb, pg_ctl and postgres.
#[derive(Debug, Clone)]
pub(crate) enum RunAs {
    /// Not root: run the programs directly.
    CurrentUser,
    /// Root: run them as the `postgres` system user.
    ServiceUser(ServiceUser),
}

/// The unprivileged user the server runs as when we are root.
#[derive(Debug, Clone)]
pub(crate) struct ServiceUser {
    name: String,
    uid: Uid,
    gid: Gid,
    runuser: PathBuf,
}

impl RunAs {
    /// Decides from the effective uid of this process.
    pub(crate) fn detect() -> Result<RunAs, PgClusterError> {
        if !geteuid().is_root() {
            return Ok(RunAs::CurrentUser);
        }
        let unavailable = |reason: String| PgClusterError::ServiceUserUnavailable { reason };
        let user = User::from_name(SERVICE_USER)
            .map_err(|error| unavailable(format!("looking it up failed ({error})")))?
            .ok_or_else(|| unavailable("no such user exists".to_owned()))?;
        if user.uid.is_root() {
            return Err(unavailable("it has uid 0".to_owned()));
        }
        let runuser = find_runuser().ok_or_else(|| {
            unavailable("the `runuser` program (util-linux) is missing".to_owned())
        })?;
        Ok(RunAs::ServiceUser(ServiceUser {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
            runuser,
        }))
    }

    /// The full argument vector (program first) that runs `program` as the
    /// right user; used where a `Command` cannot be passed (the watchdog).
    pub(crate) fn argv(&self, program: &Path) -> Vec<OsString> {
        match self {
            RunAs::CurrentUser => vec![program.into()],
            RunAs::ServiceUser(user) => vec![
                user.runuser.clone().into(),
                "-u".into(),
                user.name.clone().into(),
                "--".into(),
                program.into(),
            ],
        }
    }

    /// A command running `program` as the right user, from `/` (the current
    /// directory may be unreadable for the service user, which makes the
    /// PostgreSQL programs fail to find themselves), with PG* variables
    /// removed and stdin closed.
    pub(crate) fn command(&self, program: &Path) -> Command {
        let mut command = match self {
            RunAs::CurrentUser => Command::new(program),
            RunAs::ServiceUser(user) => {
                let mut command = Command::new(&user.runuser);
                command.arg("-u").arg(&user.name).arg("--").arg(program);
                command
            }
        };
        command.current_dir("/").stdin(Stdio::null());
        for variable in PG_ENVIRONMENT {
            command.env_remove(variable);
        }
        command
    }

    /// The service user, when the programs do not run as ourselves.
    pub(crate) fn service_user(&self) -> Option<&ServiceUser> {
        match self {
            RunAs::CurrentUser => None,
            RunAs::ServiceUser(user) => Some(user),
        }
    }
}

impl ServiceUser {
    /// Makes `path` (not recursively) owned by the service user.
    pub(crate) fn give(&self, path: &Path) -> Result<(), PgClusterError> {
        std::os::unix::fs::chown(path, Some(self.uid.as_raw()), Some(self.gid.as_raw())).map_err(
            |error| {
                PgClusterError::io(
                    format!("giving {} to user {}", path.display(), self.name),
                    error,
                )
            },
        )
    }

    /// Makes every directory from `dir` up to `/` traversable by the service
    /// user, so that it can reach the data directory below it.
    ///
    /// Only the search (execute) bit of the class the user falls into (owner,
    /// group or others) is added, and only where missing; read permission is
    /// never granted, so the names of other entries stay private. This is
    /// what lets a cluster live in a `tempfile::tempdir()` (mode 0700).
    pub(crate) fn make_traversable(&self, dir: &Path) -> Result<(), PgClusterError> {
        for ancestor in dir.ancestors() {
            let meta = fs::metadata(ancestor).map_err(|error| {
                PgClusterError::io(format!("inspecting {}", ancestor.display()), error)
            })?;
            let mode = meta.permissions().mode();
            let search_bit = if meta.uid() == self.uid.as_raw() {
                0o100
            } else if meta.gid() == self.gid.as_raw() {
                0o010
            } else {
                0o001
            };
            if mode & search_bit != 0 {
                continue;
            }
            let new_mode = (mode | search_bit) & 0o7777;
            fs::set_permissions(ancestor, fs::Permissions::from_mode(new_mode)).map_err(
                |error| {
                    PgClusterError::io(
                        format!("letting user {} traverse {}", self.name, ancestor.display()),
                        error,
                    )
                },
            )?;
            tracing::info!(
                directory = %ancestor.display(),
                mode = format_args!("{new_mode:o}"),
                user = %self.name,
                "made directory traversable for the PostgreSQL service user"
            );
        }
        Ok(())
    }
}

fn find_runuser() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path_var| {
        std::env::split_paths(&path_var)
            .map(|dir| dir.join("runuser"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| {
        RUNUSER_FALLBACKS
            .iter()
            .map(PathBuf::from)
            .find(|candidate| candidate.is_file())
    })
}
