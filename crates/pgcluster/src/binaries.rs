//! Locating the PostgreSQL server binaries (initdb, pg_ctl, postgres).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::PgClusterError;

/// The programs a directory must hold to run a cluster.
const SERVER_PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

/// Where Debian installs each major version: `<root>/<N>/bin`.
const DEBIAN_VERSIONS_ROOT: &str = "/usr/lib/postgresql";

/// A directory holding the PostgreSQL server programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerBinaries {
    /// Directory holding `initdb`, `pg_ctl` and `postgres`.
    pub bin_dir: PathBuf,
}

impl ServerBinaries {
    /// initdb/pg_ctl/postgres found on PATH, else in the directory printed by
    /// `pg_config --bindir`, else the newest /usr/lib/postgresql/<N>/bin.
    ///
    /// When the programs on PATH are symlinks into one real directory (Debian
    /// links some of them into /usr/local/bin or /usr/bin), that real
    /// directory is used, since it also holds the client tools such as psql.
    pub fn locate() -> Result<ServerBinaries, PgClusterError> {
        let path_var = std::env::var_os("PATH");
        locate_with(
            path_var.as_deref(),
            pg_config_bindir,
            Path::new(DEBIAN_VERSIONS_ROOT),
        )
        .map(|bin_dir| ServerBinaries { bin_dir })
        .ok_or(PgClusterError::BinariesNotFound)
    }

    /// Uses the given directory, which must hold all server programs.
    pub fn from_dir(dir: impl Into<PathBuf>) -> Result<ServerBinaries, PgClusterError> {
        let dir = dir.into();
        if holds_server_programs(&dir) {
            Ok(ServerBinaries { bin_dir: dir })
        } else {
            Err(PgClusterError::NotABinDir { dir })
        }
    }

    /// Path of `initdb`.
    pub fn initdb(&self) -> PathBuf {
        self.bin_dir.join("initdb")
    }

    /// Path of `pg_ctl`.
    pub fn pg_ctl(&self) -> PathBuf {
        self.bin_dir.join("pg_ctl")
    }

    /// Path of `postgres`.
    pub fn postgres(&self) -> PathBuf {
        self.bin_dir.join("postgres")
    }

    /// The `psql` client next to the server programs, else the one on PATH.
    pub fn psql(&self) -> Option<PathBuf> {
        let beside = self.bin_dir.join("psql");
        if is_executable(&beside) {
            return Some(beside);
        }
        let path_var = std::env::var_os("PATH")?;
        std::env::split_paths(&path_var)
            .map(|dir| dir.join("psql"))
            .find(|candidate| is_executable(candidate))
    }
}

/// The search behind [`ServerBinaries::locate`], with its inputs injectable.
fn locate_with(
    path_var: Option<&OsStr>,
    pg_config: impl FnOnce() -> Option<PathBuf>,
    versions_root: &Path,
) -> Option<PathBuf> {
    if let Some(dir) = path_var.and_then(on_path) {
        return Some(dir);
    }
    if let Some(dir) = pg_config().filter(|dir| holds_server_programs(dir)) {
        return Some(dir);
    }
    newest_versioned(versions_root)
}

/// The first PATH entry holding all server programs.
fn on_path(path_var: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path_var)
        .filter(|dir| dir.is_absolute())
        .find(|dir| holds_server_programs(dir))
        .map(|dir| resolve_symlinked_dir(&dir))
}

/// The directory `pg_ctl` really lives in, if that holds all server programs.
fn resolve_symlinked_dir(dir: &Path) -> PathBuf {
    fs::canonicalize(dir.join("pg_ctl"))
        .ok()
        .and_then(|real| real.parent().map(Path::to_path_buf))
        .filter(|real_dir| holds_server_programs(real_dir))
        .unwrap_or_else(|| dir.to_path_buf())
}

/// What `pg_config --bindir` prints, if pg_config is installed.
fn pg_config_bindir() -> Option<PathBuf> {
    let output = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let dir = text.trim();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// The `bin` directory of the highest version under `root` that is complete.
fn newest_versioned(root: &Path) -> Option<PathBuf> {
    fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = parse_version(entry.file_name().to_str()?)?;
            let bin = entry.path().join("bin");
            holds_server_programs(&bin).then_some((version, bin))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bin)| bin)
}

/// "15" -> [15], "9.6" -> [9, 6]; anything else is not a version directory.
fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

fn holds_server_programs(dir: &Path) -> bool {
    SERVER_PROGRAMS
        .iter()
        .all(|program| is_executable(&dir.join(program)))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_bin_dir(dir: &Path, programs: &[&str]) {
        fs::create_dir_all(dir).expect("create fake bin dir");
        for program in programs {
            let path = dir.join(program);
            fs::write(&path, "#!/bin/sh\n").expect("write fake program");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
    }

    #[test]
    fn path_wins_over_pg_config_and_versions() {
        let root = tempfile::tempdir().expect("tempdir");
        let on_path = root.path().join("path-bin");
        fake_bin_dir(&on_path, &SERVER_PROGRAMS);
        let versions = root.path().join("versions");
        fake_bin_dir(&versions.join("15/bin"), &SERVER_PROGRAMS);
        let path_var =
            std::env::join_paths([root.path().join("empty"), on_path.clone()]).expect("join paths");

        let found = locate_with(Some(&path_var), || None, &versions);
        assert_eq!(found, Some(on_path));
    }

    #[test]
    fn symlinks_on_path_resolve_to_the_real_directory() {
        let root = tempfile::tempdir().expect("tempdir");
        let real = root.path().join("real");
        fake_bin_dir(&real, &["initdb", "pg_ctl", "postgres", "psql"]);
        let links = root.path().join("links");
        fs::create_dir_all(&links).expect("mkdir");
        for program in SERVER_PROGRAMS {
            std::os::unix::fs::symlink(real.join(program), links.join(program)).expect("symlink");
        }
        let path_var = links.clone().into_os_string();

        let found = locate_with(Some(&path_var), || None, root.path());
        assert_eq!(found, Some(fs::canonicalize(&real).expect("canonicalize")));
    }

    #[test]
    fn incomplete_path_entries_fall_back_to_pg_config() {
        let root = tempfile::tempdir().expect("tempdir");
        let partial = root.path().join("partial");
        fake_bin_dir(&partial, &["pg_ctl"]);
        let from_pg_config = root.path().join("pgconfig");
        fake_bin_dir(&from_pg_config, &SERVER_PROGRAMS);
        let path_var = partial.into_os_string();

        let expected = from_pg_config.clone();
        let found = locate_with(Some(&path_var), || Some(from_pg_config), root.path());
        assert_eq!(found, Some(expected));
    }

    #[test]
    fn newest_complete_version_is_chosen() {
        let root = tempfile::tempdir().expect("tempdir");
        fake_bin_dir(&root.path().join("9.6/bin"), &SERVER_PROGRAMS);
        fake_bin_dir(&root.path().join("13/bin"), &SERVER_PROGRAMS);
        fake_bin_dir(&root.path().join("16/bin"), &["initdb", "pg_ctl"]);
        fake_bin_dir(&root.path().join("notes/bin"), &SERVER_PROGRAMS);

        let found = locate_with(None, || None, root.path());
        assert_eq!(found, Some(root.path().join("13/bin")));
    }

    #[test]
    fn nothing_found_is_a_one_line_instruction() {
        let root = tempfile::tempdir().expect("tempdir");
        assert_eq!(locate_with(None, || None, &root.path().join("none")), None);

        let message = PgClusterError::BinariesNotFound.to_string();
        assert!(!message.contains('\n'), "{message}");
        assert!(message.contains("apt-get install postgresql"), "{message}");
        assert!(message.contains("DATABASE_URL"), "{message}");
    }

    #[test]
    fn from_dir_checks_the_programs() {
        let root = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            ServerBinaries::from_dir(root.path()),
            Err(PgClusterError::NotABinDir { .. })
        ));
        fake_bin_dir(root.path(), &SERVER_PROGRAMS);
        let binaries = ServerBinaries::from_dir(root.path()).expect("complete dir");
        assert_eq!(binaries.pg_ctl(), root.path().join("pg_ctl"));
    }
}
