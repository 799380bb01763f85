//! Running the server programs on one data directory: initdb, and pg_ctl
//! status/start/stop.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::data_dir::{self, PASSWORD_FILE};
use crate::run_as::RunAs;
use crate::settings::ServerSettings;
use crate::{PgClusterError, ServerBinaries};

/// The superuser initdb creates.
pub(crate) const SUPERUSER: &str = "postgres";

/// How long `pg_ctl start -w` waits for the server (crash recovery included).
const START_TIMEOUT_SECS: &str = "120";
/// How long `pg_ctl stop -w` waits for the server to go away.
const STOP_TIMEOUT_SECS: &str = "60";

/// pg_ctl shutdown modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShutdownMode {
    /// Roll back open transactions, disconnect clients, checkpoint.
    Fast,
    /// Kill everything at once; crash recovery on the next start.
    Immediate,
}

impl ShutdownMode {
    fn as_str(self) -> &'static str {
        match self {
            ShutdownMode::Fast => "fast",
            ShutdownMode::Immediate => "immediate",
        }
    }
}

/// The server programs, the user running them and the data directory.
#[derive(Debug, Clone)]
pub(crate) struct Control {
    pub(crate) binaries: ServerBinaries,
    pub(crate) run_as: RunAs,
    pub(crate) data_dir: PathBuf,
}

impl Control {
    /// Initialises the (empty) data directory with superuser `postgres`,
    /// scram-sha-256 authentication and a new random password, which is
    /// stored in the data directory and returned.
    pub(crate) fn initdb(&self, ephemeral: bool) -> Result<String, PgClusterError> {
        let password = data_dir::generate_password();
        // initdb wants the password in a file, and the data directory must
        // be empty, so it goes to a private temporary file (mode 0600)
        // readable by the user running initdb; it is deleted afterwards.
        let mut pwfile = tempfile::Builder::new()
            .prefix("cg-pgcluster-pwfile-")
            .tempfile()
            .map_err(|error| PgClusterError::io("creating a temporary password file", error))?;
        pwfile
            .write_all(password.as_bytes())
            .and_then(|()| pwfile.write_all(b"\n"))
            .and_then(|()| pwfile.flush())
            .map_err(|error| PgClusterError::io("writing the temporary password file", error))?;
        if let Some(user) = self.run_as.service_user() {
            user.give(pwfile.path())?;
            if let Some(parent) = pwfile.path().parent() {
                user.make_traversable(parent)?;
            }
        }

        let mut command = self.run_as.command(&self.binaries.initdb());
        command
            .arg("--pgdata")
            .arg(&self.data_dir)
            .arg("--username")
            .arg(SUPERUSER)
            .arg("--pwfile")
            .arg(pwfile.path())
            .arg("--auth=scram-sha-256")
            .arg("--encoding=UTF8")
            .arg("--locale=C");
        if ephemeral {
            command.arg("--no-sync");
        }
        run(command)?;
        drop(pwfile);

        data_dir::write_private_file(
            &self.data_dir.join(PASSWORD_FILE),
            &format!("{password}\n"),
            self.run_as.service_user(),
        )?;
        Ok(password)
    }

    /// Whether a server is running on the data directory (`pg_ctl status`).
    pub(crate) fn is_running(&self) -> Result<bool, PgClusterError> {
        let mut command = self.pg_ctl();
        command.arg("status").arg("-D").arg(&self.data_dir);
        let description = describe(&command);
        let output = command
            .output()
            .map_err(|error| PgClusterError::io(format!("running `{description}`"), error))?;
        match output.status.code() {
            Some(0) => Ok(true),
            // 3: not running; 4: no accessible data directory.
            Some(3 | 4) => Ok(false),
            _ => Err(failed(description, &output)),
        }
    }

    /// `pg_ctl start -w`; returns pg_ctl's output whatever its exit status
    /// (the caller looks at the log when it failed).
    pub(crate) fn start(
        &self,
        settings: &ServerSettings<'_>,
        log: &Path,
    ) -> Result<Output, PgClusterError> {
        let mut command = self.pg_ctl();
        command
            .arg("start")
            .arg("--wait")
            .arg("--timeout")
            .arg(START_TIMEOUT_SECS)
            .arg("-D")
            .arg(&self.data_dir)
            .arg("--log")
            .arg(log)
            .arg("-o")
            .arg(settings.postgres_options());
        let description = describe(&command);
        command
            .output()
            .map_err(|error| PgClusterError::io(format!("running `{description}`"), error))
    }

    /// `pg_ctl stop -w -m <mode>`.
    pub(crate) fn stop(&self, mode: ShutdownMode) -> Result<(), PgClusterError> {
        let mut command = self.pg_ctl();
        command.args(self.stop_args(mode));
        run(command).map(drop)
    }

    /// The full argument vector of [`Control::stop`], for the watchdog.
    pub(crate) fn stop_argv(&self, mode: ShutdownMode) -> Vec<OsString> {
        let mut argv = self.run_as.argv(&self.binaries.pg_ctl());
        argv.extend(self.stop_args(mode));
        argv
    }

    fn stop_args(&self, mode: ShutdownMode) -> Vec<OsString> {
        vec![
            "stop".into(),
            "--wait".into(),
            "--timeout".into(),
            STOP_TIMEOUT_SECS.into(),
            "-D".into(),
            self.data_dir.clone().into(),
            "-m".into(),
            mode.as_str().into(),
        ]
    }

    fn pg_ctl(&self) -> Command {
        self.run_as.command(&self.binaries.pg_ctl())
    }
}

/// Runs `command` to completion; a non-zero exit is an error carrying its
/// output.
fn run(mut command: Command) -> Result<Output, PgClusterError> {
    let description = describe(&command);
    let output = command
        .output()
        .map_err(|error| PgClusterError::io(format!("running `{description}`"), error))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(failed(description, &output))
    }
}

fn failed(command: String, output: &Output) -> PgClusterError {
    PgClusterError::CommandFailed {
        command,
        status: output.status.to_string(),
        output: output_text(output),
    }
}

/// stdout and stderr of a finished program, trimmed.
pub(crate) fn output_text(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let text = [stdout.trim(), stderr.trim()]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    if text.is_empty() {
        "(no output)".to_owned()
    } else {
        text
    }
}

/// The command line, for messages.
fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
