//! Starting, describing and stopping a private cluster.

use std::fmt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::control::{Control, SUPERUSER, ShutdownMode, output_text};
use crate::data_dir::{self, DataDirState, LOG_FILE, OWNER_FILE};
use crate::run_as::RunAs;
use crate::settings::{ServerSettings, socket_dir_for};
use crate::watchdog::Watchdog;
use crate::{PgClusterError, ServerBinaries};

/// How many ports are tried when the server cannot bind the one picked.
const START_ATTEMPTS: u32 = 5;
/// Log lines quoted when the server does not start.
const LOG_TAIL_LINES: usize = 20;

/// How to set up and run a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    /// Created and initialised (initdb) when empty or missing; reused when
    /// it already holds a cluster.
    pub data_dir: PathBuf,
    /// Throwaway cluster (tests): fsync, synchronous_commit and
    /// full_page_writes off, `initdb --no-sync`.
    pub ephemeral: bool,
    /// The server's `max_connections` (e.g. 300 for tests).
    pub max_connections: u32,
}

impl ClusterOptions {
    /// A durable cluster in `data_dir` with PostgreSQL's default 100 connections.
    pub fn durable(data_dir: impl Into<PathBuf>) -> ClusterOptions {
        ClusterOptions {
            data_dir: data_dir.into(),
            ephemeral: false,
            max_connections: 100,
        }
    }

    /// A throwaway cluster for tests in `data_dir`, with 300 connections.
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> ClusterOptions {
        ClusterOptions {
            data_dir: data_dir.into(),
            ephemeral: true,
            max_connections: 300,
        }
    }
}

/// A running private cluster: listens on 127.0.0.1 only, on a port of its
/// own, with superuser `postgres` and a random password.
///
/// Stop it with [`PgCluster::stop`]; dropping it stops it immediately, and
/// a watchdog process stops it if this process ends without either.
pub struct PgCluster {
    control: Control,
    port: u16,
    password: String,
    socket_dir: Option<PathBuf>,
    running: bool,
    /// Declared last: dropped (disarmed) after `Drop` has stopped the server.
    _watchdog: Watchdog,
}

impl fmt::Debug for PgCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgCluster")
            .field("data_dir", &self.control.data_dir)
            .field("port", &self.port)
            .field("password", &"<redacted>")
            .field("socket_dir", &self.socket_dir)
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

impl PgCluster {
    /// Initialises the data directory if needed and starts the server; see
    /// [`PgCluster::start_blocking`].
    pub async fn start(
        binaries: &ServerBinaries,
        options: ClusterOptions,
    ) -> Result<PgCluster, PgClusterError> {
        let binaries = binaries.clone();
        tokio::task::spawn_blocking(move || PgCluster::start_blocking(&binaries, options))
            .await
            .map_err(|error| PgClusterError::Task(error.to_string()))?
    }

    /// Blocking form of [`PgCluster::start`], for callers outside a runtime.
    ///
    /// When the data directory already holds a running server: if the
    /// process that started it is gone (a crash whose watchdog did not get
    /// to run), that server is stopped and replaced; otherwise this fails
    /// with [`PgClusterError::ClusterInUse`].
    pub fn start_blocking(
        binaries: &ServerBinaries,
        options: ClusterOptions,
    ) -> Result<PgCluster, PgClusterError> {
        let run_as = RunAs::detect()?;
        let (data_dir, state) = data_dir::prepare(&options.data_dir, &run_as)?;
        let control = Control {
            binaries: binaries.clone(),
            run_as,
            data_dir,
        };
        let password = match state {
            DataDirState::Fresh => control.initdb(options.ephemeral)?,
            DataDirState::Cluster => {
                let password = data_dir::read_password(&control.data_dir)?;
                stop_leftover_server(&control)?;
                password
            }
        };

        // Armed before the server exists, so that even dying during the
        // start leaves nothing running.
        let watchdog = Watchdog::arm(&control.stop_argv(ShutdownMode::Immediate))?;
        data_dir::write_private_file(
            &control.data_dir.join(OWNER_FILE),
            &format!("{}\n", std::process::id()),
            control.run_as.service_user(),
        )?;

        let socket_dir = socket_dir_for(&control.data_dir).map(PathBuf::from);
        if socket_dir.is_none() {
            tracing::info!(
                data_dir = %control.data_dir.display(),
                "data directory path too long or unusual for a Unix socket: TCP only"
            );
        }
        let port = start_server(&control, &options, socket_dir.as_deref())?;
        tracing::info!(
            data_dir = %control.data_dir.display(),
            port,
            "private PostgreSQL cluster started"
        );
        Ok(PgCluster {
            control,
            port,
            password,
            socket_dir,
            running: true,
            _watchdog: watchdog,
        })
    }

    /// `postgres://USER:PASSWORD@127.0.0.1:PORT/DATABASE`
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// The TCP port the server listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host to connect to: always `127.0.0.1`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The superuser name, `postgres`.
    pub fn user(&self) -> &'static str {
        SUPERUSER
    }

    /// The superuser password (also stored in the data directory).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The absolute data directory.
    pub fn data_dir(&self) -> &Path {
        &self.control.data_dir
    }

    /// The directory holding the server's Unix socket (the data directory),
    /// or `None` when its path is too long for a socket and only TCP is used.
    pub fn socket_dir(&self) -> Option<&Path> {
        self.socket_dir.as_deref()
    }

    /// The server log file.
    pub fn log_file(&self) -> PathBuf {
        self.control.data_dir.join(LOG_FILE)
    }

    /// Fast shutdown (pg_ctl stop -m fast), waits for it.
    pub async fn stop(self) -> Result<(), PgClusterError> {
        tokio::task::spawn_blocking(move || self.stop_blocking())
            .await
            .map_err(|error| PgClusterError::Task(error.to_string()))?
    }

    /// Blocking form of [`PgCluster::stop`].
    ///
    /// A server that is already gone (stopped or crashed behind our back)
    /// counts as stopped. On failure the server is stopped immediately when
    /// `self` is dropped.
    pub fn stop_blocking(mut self) -> Result<(), PgClusterError> {
        match self.control.stop(ShutdownMode::Fast) {
            Ok(()) => {}
            Err(error) => {
                if self.control.is_running()? {
                    return Err(error);
                }
                tracing::warn!(
                    data_dir = %self.control.data_dir.display(),
                    "PostgreSQL cluster was no longer running when asked to stop"
                );
            }
        }
        self.running = false;
        tracing::info!(
            data_dir = %self.control.data_dir.display(),
            "private PostgreSQL cluster stopped"
        );
        Ok(())
    }
}

impl Drop for PgCluster {
    /// If not stopped: immediate stop, synchronously, best effort.
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        if let Err(error) = self.control.stop(ShutdownMode::Immediate) {
            tracing::warn!(
                data_dir = %self.control.data_dir.display(),
                %error,
                "could not stop the private PostgreSQL cluster"
            );
        }
    }
}

/// Starts the server on a fresh free port, retrying with another port when
/// the one picked was taken in the meantime. Returns the port.
fn start_server(
    control: &Control,
    options: &ClusterOptions,
    socket_dir: Option<&Path>,
) -> Result<u16, PgClusterError> {
    let log = control.data_dir.join(LOG_FILE);
    let socket_dir = socket_dir.and_then(Path::to_str);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let port = crate::port::free_port()?;
        let settings = ServerSettings {
            port,
            socket_dir,
            max_connections: options.max_connections,
            ephemeral: options.ephemeral,
        };
        let log_offset = data_dir::log_len(&log);
        let output = control.start(&settings, &log)?;
        if output.status.success() {
            return Ok(port);
        }
        let written = data_dir::log_since(&log, log_offset);
        // pg_ctl gives up after its timeout while the server may still be
        // coming up: make sure nothing is left running.
        let _ = control.stop(ShutdownMode::Immediate);
        if attempt < START_ATTEMPTS && port_was_taken(&written) {
            tracing::warn!(
                port,
                attempt,
                "port taken before the server bound it; retrying"
            );
            continue;
        }
        return Err(PgClusterError::StartFailed {
            data_dir: control.data_dir.clone(),
            reason: output_text(&output).replace('\n', " "),
            log,
            log_tail: data_dir::last_lines(&written, LOG_TAIL_LINES),
        });
    }
}

fn port_was_taken(log: &str) -> bool {
    log.contains("Address already in use") || log.contains("could not create any TCP/IP sockets")
}

/// Deals with a server already running on the data directory: one whose
/// starting process is gone is stopped; any other is reported.
fn stop_leftover_server(control: &Control) -> Result<(), PgClusterError> {
    if !control.is_running()? {
        return Ok(());
    }
    let in_use = |owner: String| PgClusterError::ClusterInUse {
        data_dir: control.data_dir.clone(),
        owner,
    };
    let owner = std::fs::read_to_string(control.data_dir.join(OWNER_FILE))
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok())
        .filter(|pid| *pid > 0);
    let Some(owner) = owner else {
        return Err(in_use("not started by this program".to_owned()));
    };
    if process_exists(owner) {
        return Err(in_use(format!(
            "started by process {owner}, which is still running"
        )));
    }
    tracing::warn!(
        data_dir = %control.data_dir.display(),
        owner,
        "stopping a PostgreSQL server left running by a process that is gone"
    );
    control.stop(ShutdownMode::Fast).or_else(|error| {
        // Its watchdog may have stopped it in the meantime.
        if control.is_running()? {
            Err(error)
        } else {
            Ok(())
        }
    })
}

/// Whether a process with this id exists (signal 0; EPERM means it does,
/// but belongs to someone else).
fn process_exists(pid: i32) -> bool {
    match kill(Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(errno) => errno == Errno::EPERM,
    }
}
