//! The data directory: creating it, recognising a cluster in it, and the
//! files this crate keeps there next to PostgreSQL's own.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::Rng;
use rand::distr::Alphanumeric;

use crate::PgClusterError;
use crate::run_as::{RunAs, ServiceUser};

/// The superuser password, so that a restarted cluster is reused with it.
pub(crate) const PASSWORD_FILE: &str = "cg-superuser.password";
/// Process id of the process that started the server most recently.
pub(crate) const OWNER_FILE: &str = "cg-owner.pid";
/// Server log (pg_ctl -l), appended to by every start.
pub(crate) const LOG_FILE: &str = "server.log";
/// Present in every initialised cluster.
const VERSION_FILE: &str = "PG_VERSION";

const PASSWORD_LEN: usize = 32;

/// Characters pg_ctl cannot pass through its own shell command line
/// (it quotes the data directory and log paths with double quotes).
const UNSAFE_PATH_CHARS: [char; 5] = ['"', '\\', '$', '`', '\n'];

/// What [`prepare`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataDirState {
    /// Missing or empty: needs initdb.
    Fresh,
    /// Holds an initialised cluster.
    Cluster,
}

/// Creates the data directory if missing (mode 0700), checks that it is
/// either empty or holds a cluster, hands it to the service user when one is
/// used, and returns its absolute path.
pub(crate) fn prepare(
    data_dir: &Path,
    run_as: &RunAs,
) -> Result<(PathBuf, DataDirState), PgClusterError> {
    let invalid = |reason: &str| PgClusterError::InvalidDataDir {
        path: data_dir.to_path_buf(),
        reason: reason.to_owned(),
    };
    if data_dir
        .to_string_lossy()
        .contains(|c| UNSAFE_PATH_CHARS.contains(&c))
    {
        return Err(invalid(
            "its path contains a character pg_ctl cannot quote (one of \" \\ $ ` or a newline)",
        ));
    }
    let state = if !data_dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|error| {
                PgClusterError::io(format!("creating {}", data_dir.display()), error)
            })?;
        DataDirState::Fresh
    } else if !data_dir.is_dir() {
        return Err(invalid("it exists and is not a directory"));
    } else if data_dir.join(VERSION_FILE).is_file() {
        DataDirState::Cluster
    } else if is_empty_dir(data_dir)? {
        DataDirState::Fresh
    } else {
        return Err(invalid(
            "it is not empty and holds no PostgreSQL cluster (no PG_VERSION file); \
             use an empty or missing directory",
        ));
    };
    let data_dir = fs::canonicalize(data_dir)
        .map_err(|error| PgClusterError::io(format!("resolving {}", data_dir.display()), error))?;
    if let Some(user) = run_as.service_user() {
        if state == DataDirState::Fresh {
            user.give(&data_dir)?;
        }
        if let Some(parent) = data_dir.parent() {
            user.make_traversable(parent)?;
        }
    }
    Ok((data_dir, state))
}

fn is_empty_dir(dir: &Path) -> Result<bool, PgClusterError> {
    let mut entries = fs::read_dir(dir)
        .map_err(|error| PgClusterError::io(format!("reading {}", dir.display()), error))?;
    Ok(entries.next().is_none())
}

/// A fresh random superuser password: 32 alphanumeric characters, so it can
/// be put into a URL as is.
pub(crate) fn generate_password() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(PASSWORD_LEN)
        .map(char::from)
        .collect()
}

/// Reads the password stored by an earlier start.
pub(crate) fn read_password(data_dir: &Path) -> Result<String, PgClusterError> {
    let path = data_dir.join(PASSWORD_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(PgClusterError::InvalidDataDir {
                path: data_dir.to_path_buf(),
                reason: format!(
                    "it holds a cluster but not the password file {PASSWORD_FILE} (it was not \
                     created by this program, or initialisation was interrupted); delete the \
                     directory to start afresh"
                ),
            });
        }
        Err(error) => {
            return Err(PgClusterError::io(
                format!("reading {}", path.display()),
                error,
            ));
        }
    };
    let password = text.trim();
    if password.is_empty() || !password.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(PgClusterError::InvalidDataDir {
            path: data_dir.to_path_buf(),
            reason: format!("its password file {PASSWORD_FILE} is malformed"),
        });
    }
    Ok(password.to_owned())
}

/// Writes `contents` to `path` with mode 0600, owned by the service user
/// when there is one.
pub(crate) fn write_private_file(
    path: &Path,
    contents: &str,
    owner: Option<&ServiceUser>,
) -> Result<(), PgClusterError> {
    let context = || format!("writing {}", path.display());
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| PgClusterError::io(context(), error))?;
    // `mode` only applies to newly created files.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .and_then(|()| file.write_all(contents.as_bytes()))
        .and_then(|()| file.sync_all())
        .map_err(|error| PgClusterError::io(context(), error))?;
    if let Some(user) = owner {
        user.give(path)?;
    }
    Ok(())
}

/// Current length of the log file (0 when it does not exist yet).
pub(crate) fn log_len(log: &Path) -> u64 {
    fs::metadata(log).map(|meta| meta.len()).unwrap_or(0)
}

/// What the server wrote to `log` after byte `offset`.
pub(crate) fn log_since(log: &Path, offset: u64) -> String {
    let mut bytes = Vec::new();
    let read = fs::File::open(log).and_then(|mut file| {
        file.seek(SeekFrom::Start(offset))?;
        file.read_to_end(&mut bytes)
    });
    match read {
        Ok(_) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(error) => format!("(could not read {}: {error})", log.display()),
    }
}

/// The last `count` non-empty lines of `text`.
pub(crate) fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    if lines.is_empty() {
        return "(the log is empty)".to_owned();
    }
    lines[lines.len().saturating_sub(count)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_32_alphanumerics_and_differ() {
        let first = generate_password();
        let second = generate_password();
        assert_eq!(first.len(), PASSWORD_LEN);
        assert!(first.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(first, second);
    }

    #[test]
    fn password_file_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(PASSWORD_FILE);
        write_private_file(&path, "abc123\n", None).expect("write");
        let mode = fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(read_password(dir.path()).expect("read"), "abc123");
    }

    #[test]
    fn missing_or_bad_password_file_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            read_password(dir.path()),
            Err(PgClusterError::InvalidDataDir { .. })
        ));
        fs::write(dir.path().join(PASSWORD_FILE), "not a password!").expect("write");
        assert!(matches!(
            read_password(dir.path()),
            Err(PgClusterError::InvalidDataDir { .. })
        ));
    }

    #[test]
    fn non_empty_foreign_directory_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("notes.txt"), "hello").expect("write");
        let result = prepare(dir.path(), &RunAs::CurrentUser);
        assert!(
            matches!(result, Err(PgClusterError::InvalidDataDir { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn unquotable_path_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let result = prepare(&dir.path().join("a$b"), &RunAs::CurrentUser);
        assert!(
            matches!(result, Err(PgClusterError::InvalidDataDir { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn missing_directory_is_created_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("a/b/data");
        let (path, state) = prepare(&data, &RunAs::CurrentUser).expect("prepare");
        assert_eq!(state, DataDirState::Fresh);
        assert!(path.is_absolute());
        let mode = fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn log_helpers_return_the_new_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join(LOG_FILE);
        assert_eq!(log_len(&log), 0);
        fs::write(&log, "old line\n").expect("write");
        let offset = log_len(&log);
        fs::write(&log, "old line\nfirst\n\nsecond\nthird\n").expect("write");
        let new = log_since(&log, offset);
        assert_eq!(last_lines(&new, 2), "second\nthird");
        assert_eq!(last_lines("", 2), "(the log is empty)");
    }
}
